"""What each RTL arithmetic unit must compute, on bit patterns: the npu.hw.numerics function it
implements. Used by the RTL tests (tests/test_rtl_numerics.py) and by the synthesis flow, which
checks the gate-level netlist's outputs against the same references (npu.synth.activity).

NaN outputs of the fp32 units are compared as a class: numerics' own float32 adds and
multiplies return whatever NaN payload the host CPU makes, the RTL always the canonical NaN
(the bf16 encoder's NaN is compared exactly).
"""

from __future__ import annotations

import numpy as np

from npu.hw import numerics


def f32(bits: np.ndarray) -> np.ndarray:
    """uint bit patterns -> float32 values."""
    return np.asarray(bits, dtype=np.uint64).astype(np.uint32).view(np.float32)


def bits32(x: np.ndarray) -> np.ndarray:
    """float32 values -> uint64 bit patterns."""
    return np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)


def _with_quiet_errors(fn):
    def wrapped(*args):
        with np.errstate(all="ignore"):
            return fn(*args)
    return wrapped


REFERENCES = {
    "bf16_to_fp32": lambda a: bits32(numerics.decode(a.astype(np.uint16), "bf16")),
    "fp32_to_bf16": lambda a: numerics.encode(f32(a), "bf16").astype(np.uint64),
    "fp32_add": _with_quiet_errors(lambda a, b: bits32(f32(a) + f32(b))),
    "fp32_mul": _with_quiet_errors(lambda a, b: bits32(f32(a) * f32(b))),
    "fp32_exp": lambda a: bits32(numerics.hw_exp(f32(a))),
    "fp32_recip": lambda a: bits32(numerics.hw_recip(f32(a))),
    "fp32_rsqrt": lambda a: bits32(numerics.hw_rsqrt(f32(a))),
    "fp32_sigmoid": lambda a: bits32(numerics.hw_sigmoid(f32(a))),
    "fp32_silu": lambda a: bits32(numerics.hw_silu(f32(a))),
}
FP32_OUTPUT = {unit for unit in REFERENCES if unit not in ("fp32_to_bf16",)}


def is_nan32(bits: np.ndarray) -> np.ndarray:
    return ((bits & 0x7F800000) == 0x7F800000) & ((bits & 0x007FFFFF) != 0)


def mismatches(unit: str, inputs: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """Indices of the rows (inputs: one column per input port, a then b) where `outputs` differ."""
    expected = REFERENCES[unit](*inputs.T)
    same = expected == outputs
    if unit in FP32_OUTPUT:
        same |= is_nan32(expected) & is_nan32(outputs)
    return np.flatnonzero(~same)
