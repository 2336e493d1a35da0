"""numpy references of the kernels the compiler has no stand-alone reference for, built only
from npu.hw.numerics: softmax.s and the sampling pass's confidence (which the compiler's fused
LM-head epilogue must equal, tests/test_compiler_temperature.py).

Each function performs the kernel's arithmetic in the kernel's order with the hardware's
rounding (every vector-unit result rounded to the vector-SRAM format, scalar results fp32), so
the simulator's output must equal it bit for bit. The GEMM and RMSNorm kernels are checked
against the compiler's own references (npu.compiler.linear.reference_gemm,
npu.compiler.vector_ops.reference_rmsnorm), weights as matrix SRAM holds them are
npu.hw.rows.dequantized_weights, and the Gumbel draws npu.models.decoding.gumbel_noise: one
definition each.
"""

from __future__ import annotations

import numpy as np

from npu.hw import numerics
from npu.hw.config import NPUConfig

F32 = np.float32


def round_vector(x: np.ndarray, config: NPUConfig) -> np.ndarray:
    """Values as vector SRAM holds them."""
    return numerics.round_to_format(np.asarray(x, dtype=F32), config.formats.vector)


def activations_in_dram(x: np.ndarray, config: NPUConfig) -> np.ndarray:
    """Values as the activation format stores them in DRAM."""
    return numerics.round_to_format(np.asarray(x, dtype=F32), config.formats.activations)


def softmax_reference(x: np.ndarray, config: NPUConfig) -> np.ndarray:
    """softmax.s on rows of x."""
    v = round_vector(activations_in_dram(np.atleast_2d(x), config), config)
    peak = v.max(axis=1)
    e = round_vector(numerics.hw_exp(round_vector(v - peak[:, None], config)), config)
    total = numerics.chained_row_sum(e, config.vlen, np.zeros(v.shape[0], dtype=F32))
    scale = numerics.hw_recip(total)
    return activations_in_dram(round_vector(e * scale[:, None], config), config)


def perturbed_logits(logits: np.ndarray, noise: np.ndarray, temperature: float, config: NPUConfig) -> np.ndarray:
    """l + T * g as the vector unit forms it (vmuls then vadd, each rounded)."""
    scaled = round_vector(round_vector(noise, config) * F32(temperature), config)
    return round_vector(scaled + logits, config)


def confidence_reference(logits: np.ndarray, config: NPUConfig, tile_chunks: int, temperature: float = 0.0,
                         noise: np.ndarray | None = None,
                         forbid_id: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """confidence_*.s on rows of logits: (x0 int64, confidence fp32).

    x0 is the first index of the maximum of the argmax source (ties to the lowest index).
    The sum is the online softmax tile by tile: when a tile raises the running max M, the sum
    is first scaled by exp(M_old - M); then every chunk adds tree_sum(exp(l - M)).
    """
    vlen = config.vlen
    v = round_vector(activations_in_dram(np.atleast_2d(logits), config), config)
    if forbid_id is not None:
        v[:, forbid_id] = -np.inf
    source = v if temperature == 0.0 else perturbed_logits(v, np.atleast_2d(noise), temperature, config)
    x0 = np.argmax(source, axis=1)
    rows, vocab = v.shape
    tile = tile_chunks * vlen
    peak = np.full(rows, -np.inf, dtype=F32)
    total = np.zeros(rows, dtype=F32)
    for first in range(0, vocab, tile):
        values = v[:, first:first + tile]
        new_peak = np.maximum(peak, values.max(axis=1))
        grew = peak < new_peak
        with np.errstate(invalid="ignore"):
            factor = numerics.hw_exp((peak - new_peak).astype(F32))
        total = np.where(grew, (total * factor).astype(F32), total)
        peak = new_peak
        e = round_vector(numerics.hw_exp(round_vector(values - peak[:, None], config)), config)
        total = numerics.chained_row_sum(e, vlen, total)
    confidence = numerics.hw_recip(total)
    if temperature != 0.0:
        chosen = v[np.arange(rows), x0]
        confidence = (numerics.hw_exp((chosen - peak).astype(F32)) * confidence).astype(F32)
    return x0.astype(np.int64), confidence
