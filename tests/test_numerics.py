"""Specifications of the hardware arithmetic in npu/hw/numerics.py.

Measured accuracy of the vector-unit approximations against float64 (also in docs/numerics.md):
  hw_recip  all 2^23 mantissas          max 1.241 ulp, relative 9.77e-8
  hw_rsqrt  all 2^24 (mantissa, parity) max 1.365 ulp, relative 1.03e-7
  hw_exp    every 64th float32 with a normal result (34.7M points): max 1.173 ulp, rel 9.82e-8
  hw_silu   same grid, x > -87:         max 2.989 ulp, relative 1.98e-7
The default tests use every 1024th float32 for exp / SiLU; the slow tests the 64-stride grid.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from npu.hw.numerics import (
    FORMATS,
    MX_FORMATS,
    MX_SCALE_RULES,
    RECIP_TABLE,
    RSQRT_TABLE,
    decode,
    decode_table,
    dequantize_groups,
    encode,
    flush_subnormals,
    hw_exp,
    hw_matmul_accumulate,
    hw_max_reduce,
    hw_maximum,
    hw_minimum,
    hw_recip,
    hw_rsqrt,
    hw_sigmoid,
    hw_silu,
    hw_tree_sum,
    mx_dequantize,
    mx_quantize,
    mx_round,
    mx_shared_exponent,
    pack_codes,
    quantize_asymmetric,
    quantize_symmetric,
    round_to_format,
    unpack_codes,
)

SMALL_FORMATS = [name for name, f in FORMATS.items() if f.bits <= 8]
SMALL_FLOATS = [name for name in SMALL_FORMATS if FORMATS[name].kind == "float"]
F32_MIN_NORMAL = 2.0**-126


def f32(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def bits(x: np.ndarray) -> list[int]:
    return [int(v) for v in np.asarray(x, dtype=np.float32).view(np.uint32)]


def ulp_error(y: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """|y - ref| in units of the float32 ulp at ref (normal range)."""
    exponent = np.floor(np.log2(np.maximum(np.abs(ref), F32_MIN_NORMAL)))
    return np.abs(y.astype(np.float64) - ref) / 2.0 ** (exponent - 23)


def float32_grid(lo: float, hi: float, stride: int) -> np.ndarray:
    """Every stride-th float32 bit pattern of [0, hi] and of [lo, 0], normal values only."""
    parts = []
    for end, sign in ((hi, 1), (-lo, -1)):
        u = np.arange(0, np.float32(end).view(np.uint32), stride, dtype=np.uint32)
        parts.append(sign * u.view(np.float32))
    x = np.concatenate(parts).astype(np.float32)
    return x[np.abs(x) >= F32_MIN_NORMAL]


def all_mantissas(exponent: int) -> np.ndarray:
    """Every float32 in [2^exponent, 2^(exponent+1))."""
    u = np.arange(2**23, dtype=np.uint32) | np.uint32((127 + exponent) << 23)
    return u.view(np.float32)


# ---- format table ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, max_value, min_value",
    [
        ("int8", 127, -128),
        ("int4", 7, -8),
        ("int2", 1, -2),
        ("mxint8", 127 / 64, -127 / 64),
        ("mxint4", 1.75, -1.75),
        ("mxfp8_e4m3", 448, -448),
        ("mxfp8_e5m2", 57344, -57344),
        ("mxfp4", 6, -6),
        ("bf16", (2 - 2**-7) * 2.0**127, -(2 - 2**-7) * 2.0**127),
        ("fp32", float(np.finfo(np.float32).max), -float(np.finfo(np.float32).max)),
    ],
)
def test_format_ranges_follow_the_spec(name: str, max_value: float, min_value: float) -> None:
    assert FORMATS[name].max_value == max_value
    assert FORMATS[name].min_value == min_value


def test_fp4_e2m1_has_exactly_the_ocp_values() -> None:
    expected = [0, 0.5, 1, 1.5, 2, 3, 4, 6]
    table = decode_table("mxfp4")
    assert table[:8].tolist() == expected
    assert table[8:].tolist() == [-v for v in expected]


def test_fp8_special_encodings() -> None:
    e4m3, e5m2 = decode_table("mxfp8_e4m3"), decode_table("mxfp8_e5m2")
    assert e4m3[0x01] == 2.0**-9 and e4m3[0x08] == 2.0**-6 and e4m3[0x7E] == 448
    assert np.isnan(e4m3[[0x7F, 0xFF]]).all() and np.isfinite(np.delete(e4m3, [0x7F, 0xFF])).all()
    assert e5m2[0x01] == 2.0**-16 and e5m2[0x7B] == 57344
    assert e5m2[0x7C] == np.inf and e5m2[0xFC] == -np.inf and np.isnan(e5m2[[0x7D, 0x7E, 0x7F]]).all()
    assert decode_table("mxint8")[0x80] == -2.0  # two's complement code decodes, is never produced


def test_unknown_format_is_named() -> None:
    with pytest.raises(ValueError, match="unknown number format 'fp9'"):
        round_to_format(f32(1.0), "fp9")


# ---- encode / decode ------------------------------------------------------------------------


@pytest.mark.parametrize("name", SMALL_FORMATS)
def test_every_code_of_a_small_format_round_trips(name: str) -> None:
    codes = np.arange(2 ** FORMATS[name].bits)
    values = decode(codes, name)
    again = encode(values, name)
    nan = np.isnan(values)
    producible = values >= FORMATS[name].min_value  # symmetric MX ints never produce -2
    assert np.array_equal(again[~nan & producible], codes[~nan & producible])
    assert np.isnan(decode(again[nan], name)).all()


def test_bf16_rounding_equals_encode_then_decode_on_random_bit_patterns() -> None:
    """round_to_format's bf16 fast path gives the same bits as the encode/decode definition."""
    bits = np.random.default_rng(3).integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32)
    bits[:6] = [0x7F800000, 0xFF800000, 0x7FC00000, 0xFFFFFFFF, 0x7F7FFFFF, 0x00008000]  # inf, NaN, max, ties
    x = bits.view(np.float32)
    want = decode(encode(x, "bf16"), "bf16")
    assert np.array_equal(round_to_format(x, "bf16").view(np.uint32), want.view(np.uint32))


def test_every_bf16_code_round_trips() -> None:
    codes = np.arange(2**16, dtype=np.uint16)
    values = decode(codes, "bf16")
    nan = np.isnan(values)
    assert np.array_equal(encode(values, "bf16")[~nan], codes[~nan])
    assert set(encode(values[nan], "bf16").tolist()) == {0x7FC0}


def test_fp32_codes_are_the_ieee_bits() -> None:
    codes = np.random.default_rng(0).integers(0, 2**32, 10000, dtype=np.uint32)
    values = decode(codes, "fp32")
    keep = ~np.isnan(values)
    assert np.array_equal(encode(values[keep], "fp32"), codes[keep])


def test_pack_and_unpack_codes_are_inverse() -> None:
    codes = np.random.default_rng(1).integers(0, 16, (3, 64), dtype=np.uint8)
    packed = pack_codes(codes, 4)
    assert packed.shape == (3, 32) and packed[0, 0] == codes[0, 0] | codes[0, 1] << 4
    assert np.array_equal(unpack_codes(packed, 4), codes)
    two_bit = codes & 3
    assert np.array_equal(unpack_codes(pack_codes(two_bit, 2), 2), two_bit)


# ---- rounding -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SMALL_FLOATS + ["bf16"])
def test_ties_round_to_the_even_code(name: str) -> None:
    codes = np.arange(2 ** min(FORMATS[name].bits, 16))
    values = decode(codes, name)
    finite = np.isfinite(values) & (values > 0) | (codes == 0)
    order = np.argsort(values[finite])
    grid, grid_codes = values[finite][order].astype(np.float64), codes[finite][order]
    midpoints = ((grid[:-1] + grid[1:]) / 2).astype(np.float32)
    assert np.array_equal(midpoints.astype(np.float64), (grid[:-1] + grid[1:]) / 2)  # exact in fp32
    rounded = encode(midpoints, name)
    even = np.where(grid_codes[:-1] % 2 == 0, grid_codes[:-1], grid_codes[1:])
    assert np.array_equal(rounded, even)


def test_examples_of_round_half_even() -> None:
    assert round_to_format(f32(2.5, 3.5, 5, 0.25, 0.75), "mxfp4").tolist() == [2, 4, 4, 0, 1]
    assert round_to_format(f32(0.5, 1.5, 2.5, -2.5), "int8").tolist() == [0, 2, 2, -2]
    assert round_to_format(f32(1 + 2**-8, 1 + 3 * 2**-8), "bf16").tolist() == [1, 1 + 2**-6]


def test_saturation_rules() -> None:
    big = f32(464, 1e6, np.inf, -1e6, -np.inf)
    assert round_to_format(big, "mxfp8_e4m3").tolist() == [448, 448, 448, -448, -448]
    # 464 lies between E5M2's 448 and 512 and rounds to 448; only finite values saturate.
    assert round_to_format(big, "mxfp8_e5m2").tolist() == [448, 57344, np.inf, -57344, -np.inf]
    assert round_to_format(f32(7, -100), "mxfp4").tolist() == [6, -6]
    assert round_to_format(f32(200, -200, -128.4), "int8").tolist() == [127, -128, -128]
    assert round_to_format(f32(3, -3), "mxint8").tolist() == [127 / 64, -127 / 64]
    assert round_to_format(f32(3.4e38, -3.4e38), "bf16").tolist() == [np.inf, -np.inf]


def test_nan_is_kept_or_rejected_by_the_format() -> None:
    assert np.isnan(round_to_format(f32(np.nan), "mxfp8_e4m3")).all()
    assert np.isnan(round_to_format(f32(np.nan), "bf16")).all()
    with pytest.raises(ValueError, match="int4: cannot encode NaN"):
        round_to_format(f32(np.nan), "int4")
    with pytest.raises(ValueError, match="mxfp4: cannot encode NaN"):
        round_to_format(f32(np.nan), "mxfp4")
    with pytest.raises(ValueError, match="int8: cannot encode inf"):
        round_to_format(f32(np.inf), "int8")


finite_f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(x=hnp.arrays(np.float32, 16, elements=finite_f32), name=st.sampled_from(list(FORMATS)))
def test_rounding_is_idempotent(x: np.ndarray, name: str) -> None:
    once = round_to_format(x, name)
    assert np.array_equal(round_to_format(once, name), once)


# ---- MX block scaling -----------------------------------------------------------------------


def test_all_zero_block_gets_the_smallest_scale_and_decodes_to_zero() -> None:
    for name in MX_FORMATS:
        q = mx_quantize(np.zeros((2, 32), np.float32), name, 32)
        assert (q.scales == 0).all() and (q.elements == 0).all()
        assert (mx_dequantize(q) == 0).all()


def test_scale_exponent_is_floor_log2_amax_minus_emax() -> None:
    x = f32(0.5, -3.0, 1.0, 6.0)  # amax 6: floor(log2 6) = 2
    for name, emax in (("mxfp4", 2), ("mxfp8_e4m3", 8), ("mxfp8_e5m2", 15), ("mxint8", 0), ("mxint4", 0)):
        assert mx_quantize(x, name, 4).scales.tolist() == [127 + 2 - emax]
    assert mx_round(x, "mxfp4", 4).tolist() == x.tolist()  # already on the grid: exact


def test_a_huge_outlier_saturates_and_flushes_its_block_neighbours() -> None:
    x = f32(1e6, 1.0, -2.0, 3.0, 1.0, -2.0, 3.0, 0.0)
    out = mx_round(x, "mxfp8_e4m3", 4)
    # Block 0: X = 2^(19 - 8); 1e6 / X = 488.3 clamps to 448 (OCP clamping). The neighbours fall
    # into E4M3's subnormals (step 2^-9 = 4 / X): 1 -> 0, -2 is a tie -> even -0, 3 -> 4.
    assert out[:4].tolist() == [448 * 2.0**11, 0, -0.0, 4]
    assert out[4:].tolist() == [1, -2, 3, 0]  # the next block is untouched


def test_negative_values_quantize_symmetrically() -> None:
    x = np.random.default_rng(2).standard_normal((8, 64)).astype(np.float32)
    for name in MX_FORMATS:
        assert np.array_equal(mx_round(-x, name, 32), -mx_round(x, name, 32))


def test_a_block_with_nan_or_inf_decodes_to_nan() -> None:
    x = f32(1, np.nan, 2, 3, 1, 2, 3, 4, 1, np.inf, 0, 0)
    q = mx_quantize(x, "mxint4", 4)
    assert q.scales.tolist() == [0xFF, 127 + 2, 0xFF]
    out = mx_dequantize(q)
    assert np.isnan(out[:4]).all() and np.isnan(out[8:]).all() and out[4:8].tolist() == [1, 2, 3, 4]


def test_mx_blocks_follow_the_chosen_axis() -> None:
    x = np.random.default_rng(3).standard_normal((64, 5)).astype(np.float32)
    q = mx_quantize(x, "mxfp8_e4m3", 32, axis=0)
    assert q.elements.shape == (64, 5) and q.scales.shape == (2, 5)
    assert np.array_equal(mx_dequantize(q), mx_round(x.T, "mxfp8_e4m3", 32).T)
    with pytest.raises(ValueError, match="axis length 5 is not a multiple of block 32"):
        mx_quantize(x, "mxfp8_e4m3", 32, axis=1)
    with pytest.raises(ValueError, match="'bf16' is not an MX format"):
        mx_quantize(x, "bf16", 32, axis=0)


def _mx_half_step(x: np.ndarray, name: str, block: int) -> np.ndarray:
    """Half the grid spacing around each value in its block's scaled element grid."""
    f = FORMATS[name]
    q = mx_quantize(x, name, block)
    scale = np.repeat(2.0 ** (q.scales.astype(np.float64) - 127), block, axis=-1)
    v = np.abs(x.astype(np.float64)) / scale
    if f.kind == "int":
        return 2.0 ** (-f.fraction_bits - 1) * scale
    exponent = np.maximum(np.floor(np.log2(np.maximum(v, 1e-300))), f.min_exponent)
    return 2.0 ** (exponent - f.mantissa_bits - 1) * scale


# Values whose blocks stay inside float32's normal range (no E8M0 clamping at 2^-127).
TINY, HUGE = float(np.float32(1e-20)), float(np.float32(1e20))
moderate_f32 = st.one_of(st.just(0.0), st.floats(TINY, HUGE, width=32), st.floats(-HUGE, -TINY, width=32))


@settings(max_examples=80, deadline=None)
@given(x=hnp.arrays(np.float32, 32, elements=moderate_f32), name=st.sampled_from(MX_FORMATS))
def test_mx_round_trip_is_idempotent_and_within_half_a_step(x: np.ndarray, name: str) -> None:
    once = mx_round(x, name, 8)
    assert np.array_equal(mx_round(once, name, 8), once)
    f = FORMATS[name]
    q = mx_quantize(x, name, 8)
    limit = f.max_value * np.repeat(2.0 ** (q.scales.astype(np.float64) - 127), 8)
    saturated = np.abs(x) > limit
    error = np.abs(once.astype(np.float64) - x)
    assert (error[~saturated] <= _mx_half_step(x, name, 8)[~saturated]).all()
    assert np.array_equal(np.abs(once[saturated]), limit[saturated].astype(np.float32))


# ---- MX scale rules: OCP vs no-clip -----------------------------------------------------------


def _ocp_clips(x: np.ndarray, name: str, block: int) -> np.ndarray:
    """Per block: does the OCP exponent round the block maximum above the element's max_value?"""
    f = FORMATS[name]
    amax = np.abs(x.astype(np.float64)).reshape(-1, block).max(axis=-1)
    shared = mx_shared_exponent(amax, name, "ocp")
    scaled = amax / 2.0**shared
    if f.kind == "int":
        rounded = np.rint(scaled * 2.0**f.fraction_bits) / 2.0**f.fraction_bits
    else:
        quantum = 2.0 ** (np.maximum(np.floor(np.log2(np.maximum(scaled, 1e-300))), f.min_exponent) - f.mantissa_bits)
        rounded = np.rint(scaled / quantum) * quantum
    return rounded > f.max_value


def test_no_clip_rule_on_examples() -> None:
    # MXINT4 (max 1.75): a block maximum of 1.9 rounds to 2 at the OCP scale 2^0 and clips to 1.75;
    # no-clip takes 2^1, where 1.9 / 2 = 0.95 rounds to 1.0 -> 2.0 (error 0.1 instead of 0.15).
    x = f32(1.9, 0.3, -0.6, 0.0)
    assert mx_quantize(x, "mxint4", 4).scales.tolist() == [127]
    assert mx_round(x, "mxint4", 4).tolist() == [1.75, 0.25, -0.5, 0.0]
    assert mx_quantize(x, "mxint4", 4, scale_rule="no_clip").scales.tolist() == [128]
    assert mx_round(x, "mxint4", 4, scale_rule="no_clip").tolist() == [2.0, 0.5, -0.5, 0.0]
    # 1.8 rounds to 1.75 at 2^0: OCP does not clip, so both rules agree.
    y = f32(1.8, 0.3)
    assert mx_quantize(y, "mxint4", 2, scale_rule="no_clip").scales.tolist() == [127]
    # E4M3 (max 448 = 1.75 * 2^8): 1e6 / 2^11 = 488.3 clips under OCP; no-clip: 1e6 / 2^12 = 244.1 -> 240.
    assert mx_round(f32(1e6, 1.0), "mxfp8_e4m3", 2, scale_rule="no_clip").tolist() == [240 * 2.0**12, 0.0]
    # Ties follow the element's RNE: MXINT8 127.5 / 64 ties to 128 (even) -> clips -> one binade up;
    # E4M3 1.8125 * 2^8 = 464 ties to 448 (even mantissa) -> does not clip.
    assert mx_quantize(f32(127.5 / 64, 0), "mxint8", 2, scale_rule="no_clip").scales.tolist() == [128]
    assert mx_quantize(f32(464.0, 0), "mxfp8_e4m3", 2, scale_rule="no_clip").scales.tolist() == [127]
    # At the top of E8M0 there is no coarser scale: the block maximum clips under both rules.
    big = f32(3.3e38, 0)
    assert mx_quantize(big, "mxint4", 2, scale_rule="no_clip").scales.tolist() == [254]


def test_unknown_scale_rule_is_named() -> None:
    with pytest.raises(ValueError, match="unknown MX scale rule 'nearest'; known: ocp, no_clip"):
        mx_quantize(f32(1, 2), "mxint4", 2, scale_rule="nearest")


outlier_blocks = hnp.arrays(np.float32, 64, elements=moderate_f32)


@settings(max_examples=120, deadline=None)
@given(x=outlier_blocks, name=st.sampled_from(MX_FORMATS))
def test_no_clip_never_clips_equals_ocp_otherwise_and_is_at_most_one_binade_coarser(x: np.ndarray, name: str) -> None:
    ocp = mx_quantize(x, name, 8).scales.astype(np.int64)
    no_clip = mx_quantize(x, name, 8, scale_rule="no_clip").scales.astype(np.int64)
    clips = _ocp_clips(x, name, 8)
    assert np.array_equal(no_clip[~clips], ocp[~clips])  # equal wherever OCP does not clip
    assert np.array_equal(no_clip[clips], ocp[clips] + 1)  # one binade coarser where it does
    once = mx_round(x, name, 8, scale_rule="no_clip")
    error = np.abs(once.astype(np.float64) - x)
    half = _no_clip_half_step(x, name, 8)
    assert (error <= half).all()  # nothing saturates: every element is within half a step
    assert np.array_equal(mx_round(once, name, 8, scale_rule="no_clip"), once)  # idempotent


def _no_clip_half_step(x: np.ndarray, name: str, block: int) -> np.ndarray:
    """Half the grid spacing around each value on its block's no-clip element grid."""
    f = FORMATS[name]
    q = mx_quantize(x, name, block, scale_rule="no_clip")
    scale = np.repeat(2.0 ** (q.scales.astype(np.float64) - 127), block, axis=-1)
    if f.kind == "int":
        return 2.0 ** (-f.fraction_bits - 1) * scale
    v = np.abs(x.astype(np.float64)) / scale
    exponent = np.maximum(np.floor(np.log2(np.maximum(v, 1e-300))), f.min_exponent)
    return 2.0 ** (exponent - f.mantissa_bits - 1) * scale


def test_both_scale_rules_are_listed_and_share_the_decoder() -> None:
    assert MX_SCALE_RULES == ("ocp", "no_clip")
    x = np.random.default_rng(9).standard_normal((4, 64)).astype(np.float32) * 3
    for name in MX_FORMATS:
        q = mx_quantize(x, name, 32, scale_rule="no_clip")
        assert np.array_equal(mx_dequantize(q), mx_round(x, name, 32, scale_rule="no_clip"))


# ---- per-group INT quantization -------------------------------------------------------------


def test_symmetric_group_rule_on_an_example() -> None:
    x = f32(0.0, 1.0, -3.5, 7.0, 0.0, 0.0, 0.0, 0.0)
    q = quantize_symmetric(x, bits=4, group_size=4)
    assert q.scale.tolist() == [1.0, 1.0]  # 7 / qmax(7) and the all-zero group's default
    assert q.codes.tolist() == [0, 1, -4, 7, 0, 0, 0, 0]  # -3.5 ties to the even -4
    assert dequantize_groups(q).tolist() == [0, 1, -4, 7, 0, 0, 0, 0]


def test_asymmetric_group_rule_on_an_example() -> None:
    x = f32(-1.0, 0.0, 2.0, 0.5, 4.0, 4.0, 4.0, 4.0)
    q = quantize_asymmetric(x, bits=2, group_size=4)
    assert q.offset.tolist() == [-1.0, 4.0] and q.scale.tolist() == [1.0, 1.0]
    assert q.codes.tolist() == [0, 1, 3, 2, 0, 0, 0, 0]  # (0.5 + 1) / 1 = 1.5 ties to 2
    assert dequantize_groups(q).tolist() == [-1, 0, 2, 1, 4, 4, 4, 4]  # constant group is exact


def test_int2_symmetric_is_ternary() -> None:
    x = np.random.default_rng(4).standard_normal(64).astype(np.float32)
    assert set(quantize_symmetric(x, 2, 32).codes.tolist()) <= {-1, 0, 1}


def test_group_quantizers_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="quantize_symmetric: input contains NaN"):
        quantize_symmetric(f32(1, np.nan), 4)
    with pytest.raises(ValueError, match="bits must be 2, 3, 4 or 8"):
        quantize_asymmetric(f32(1, 2), 5)
    with pytest.raises(ValueError, match="axis length 6 is not a multiple of block 4"):
        quantize_symmetric(np.zeros(6, np.float32), 4, group_size=4)


bounded_f32 = st.floats(-float(np.float32(1e30)), float(np.float32(1e30)), width=32)


@settings(max_examples=80, deadline=None)
@given(
    x=hnp.arrays(np.float32, (2, 16), elements=bounded_f32),
    bits=st.sampled_from([2, 4, 8]),
    symmetric=st.booleans(),
)
def test_group_quantization_is_within_half_a_step_and_stable(
    x: np.ndarray, bits: int, symmetric: bool
) -> None:
    quantize = quantize_symmetric if symmetric else quantize_asymmetric
    q = quantize(x, bits, group_size=8, axis=-1)
    out = dequantize_groups(q)
    step = np.repeat(q.scale.astype(np.float64), 8, axis=-1)
    slack = 4 * np.spacing(np.abs(x).max(axis=-1, keepdims=True).astype(np.float32)).astype(np.float64)
    assert (np.abs(out.astype(np.float64) - x) <= step / 2 + slack).all()
    assert np.array_equal(quantize(out, bits, group_size=8).codes, q.codes)


def test_group_quantization_of_a_subnormal_spread_keeps_a_finite_scale() -> None:
    x = np.zeros((1, 8), np.float32)
    x[0, 0] = np.float32(1e-45)  # (max - min) / 3 underflows float32 to 0
    for q in (quantize_asymmetric(x, 2, group_size=8), quantize_symmetric(x, 3, group_size=8)):
        assert np.isfinite(q.scale).all() and (q.scale > 0).all()
        assert np.abs(dequantize_groups(q) - x).max() <= 1e-45


# ---- vector-unit approximations: accuracy ---------------------------------------------------


def test_recip_over_every_mantissa() -> None:
    x = all_mantissas(0)
    ref = 1.0 / x.astype(np.float64)
    assert ulp_error(hw_recip(x), ref).max() <= 1.25  # measured 1.241
    assert (np.abs(hw_recip(x) - ref) / ref).max() <= 1.0e-7  # measured 9.77e-8


def test_rsqrt_over_every_mantissa_and_exponent_parity() -> None:
    for exponent, max_ulp in ((0, 1.37), (1, 1.02)):  # measured 1.365 and 1.013
        x = all_mantissas(exponent)
        ref = 1.0 / np.sqrt(x.astype(np.float64))
        y = hw_rsqrt(x)
        assert ulp_error(y, ref).max() <= max_ulp
        assert (np.abs(y - ref) / ref).max() <= 1.05e-7  # measured 1.02e-7


def test_recip_and_rsqrt_are_exact_scalings_across_exponents() -> None:
    m = np.random.default_rng(5).uniform(1, 2, 4096).astype(np.float32)
    for k in range(-120, 121, 7):
        scale = np.float32(2.0**k)
        assert np.array_equal(hw_recip(m * scale), hw_recip(m) / scale)
        assert np.array_equal(hw_recip(-m * scale), -hw_recip(m * scale))
        if k % 2 == 0:
            assert np.array_equal(hw_rsqrt(m * scale), hw_rsqrt(m) / np.float32(2.0 ** (k // 2)))


def _exp_and_silu_errors(stride: int) -> tuple[float, float, float, float]:
    x = float32_grid(-87.33, 88.72, stride)
    ref = np.exp(x.astype(np.float64))
    keep = ref >= F32_MIN_NORMAL
    y = hw_exp(x)
    exp_ulp = ulp_error(y[keep], ref[keep]).max()
    exp_rel = (np.abs(y[keep] - ref[keep]) / ref[keep]).max()
    silu_ref = x.astype(np.float64) / (1.0 + np.exp(-x.astype(np.float64)))
    keep = (np.abs(silu_ref) >= F32_MIN_NORMAL) & (x > -87)
    s = hw_silu(x)
    silu_ulp = ulp_error(s[keep], silu_ref[keep]).max()
    silu_rel = (np.abs(s[keep] - silu_ref[keep]) / np.abs(silu_ref[keep])).max()
    return exp_ulp, exp_rel, silu_ulp, silu_rel


def test_exp_and_silu_accuracy_on_a_dense_grid() -> None:
    exp_ulp, exp_rel, silu_ulp, silu_rel = _exp_and_silu_errors(stride=1024)
    assert exp_ulp <= 1.18 and exp_rel <= 1.0e-7
    assert silu_ulp <= 3.0 and silu_rel <= 2.0e-7


@pytest.mark.slow
def test_exp_and_silu_accuracy_on_every_64th_float() -> None:
    exp_ulp, exp_rel, silu_ulp, silu_rel = _exp_and_silu_errors(stride=64)
    assert exp_ulp <= 1.18 and exp_rel <= 1.0e-7  # measured 1.173, 9.82e-8
    assert silu_ulp <= 3.0 and silu_rel <= 2.0e-7  # measured 2.989, 1.98e-7


def test_exp_is_monotonic() -> None:
    x = np.sort(float32_grid(-87.33, 88.72, 4099))
    assert (np.diff(hw_exp(x)) >= 0).all()


# ---- vector-unit approximations: special values and bit patterns ----------------------------


def test_exp_special_values() -> None:
    x = f32(0, -0.0, 1e-45, 88.72, 88.73, 1000, -87.34, -1000, np.inf, -np.inf, np.nan)
    y = hw_exp(x)
    assert y[:3].tolist() == [1, 1, 1]
    assert np.isfinite(y[3]) and y[4:6].tolist() == [np.inf, np.inf]
    assert y[6:8].tolist() == [0, 0]  # results below 2^-126 flush to zero
    assert y[8:10].tolist() == [np.inf, 0] and np.isnan(y[10])


def test_recip_special_values() -> None:
    y = hw_recip(f32(0, -0.0, 1e-45, -1e-45, np.inf, -np.inf, 3e38, -3e38, np.nan, 4, -0.5))
    assert y[:4].tolist() == [np.inf, -np.inf, np.inf, -np.inf]  # subnormals count as zero
    assert bits(y[4:8]) == bits(f32(0, -0.0, 0, -0.0))  # 1/3e38 is subnormal: flushed, sign kept
    assert np.isnan(y[8]) and y[9:].tolist() == [0.25, -2]


def test_rsqrt_special_values() -> None:
    y = hw_rsqrt(f32(0, -0.0, 1e-45, np.inf, -1, -np.inf, np.nan, 4, 0.25, 3e38))
    assert y[:4].tolist() == [np.inf, -np.inf, np.inf, 0]
    assert np.isnan(y[4:7]).all() and y[7:9].tolist() == [0.5, 2]
    assert abs(y[9] * np.sqrt(np.float64(3e38)) - 1) < 2e-7


def test_silu_and_sigmoid_special_values() -> None:
    s = hw_silu(f32(0, -0.0, 1e-45, np.inf, -np.inf, -100, 100, np.nan))
    assert bits(s[:3]) == bits(f32(0, -0.0, 0))
    assert s[3] == np.inf and bits(s[4:6]) == bits(f32(-0.0, -0.0)) and s[6] == 100 and np.isnan(s[7])
    sig = hw_sigmoid(f32(-np.inf, np.inf, 0, np.nan))
    assert sig[:3].tolist() == [0, 1, 0.5] and np.isnan(sig[3])


def test_outputs_are_float32_and_flushed() -> None:
    x = np.linspace(-200, 200, 4001, dtype=np.float32)
    for fn in (hw_exp, hw_recip, hw_rsqrt, hw_sigmoid, hw_silu):
        y = fn(x)
        assert y.dtype == np.float32 and y.shape == x.shape
        assert np.array_equal(flush_subnormals(y), y, equal_nan=True)


def test_pinned_bit_patterns() -> None:
    """Any change to an algorithm or constant changes these; the RTL tests compare against them."""
    x = f32(1.0, 3.0, 2.0, -0.5)
    assert bits(hw_exp(x)) == [0x402DF854, 0x41A0AF2E, 0x40EC7326, 0x3F1B4598]
    assert bits(hw_recip(x)) == [0x3F800000, 0x3EAAAAAB, 0x3F000000, 0xC0000000]
    assert bits(hw_rsqrt(np.abs(x))) == [0x3F800000, 0x3F13CD3A, 0x3F3504F3, 0x3FB504F3]
    assert bits(hw_silu(x)) == [0x3F3B26A8, 0x4036E4EC, 0x3FE17BEA, 0xBE414D03]
    grid = np.linspace(-100, 100, 65536, dtype=np.float32)
    digests = {
        fn.__name__: hashlib.sha256(fn(grid).tobytes()).hexdigest()[:16]
        for fn in (hw_exp, hw_recip, hw_rsqrt, hw_silu)
    }
    assert digests == {
        "hw_exp": "dc14fe5ea847b17d",
        "hw_recip": "d7d86cbcd3a4c25c",
        "hw_rsqrt": "19f5ade8ce471ca3",
        "hw_silu": "e44a8c765f0a4d9f",
    }


def test_seed_tables_follow_their_formula() -> None:
    assert RECIP_TABLE.shape == (64,) and RSQRT_TABLE.shape == (64,)
    assert bits(RECIP_TABLE[[0, 63]]) == [0x3F7E03F8, 0x3F008081]  # 1/(1+0.5/64), 1/(1+63.5/64)
    assert bits(RSQRT_TABLE[[0, 63]]) == [0x3F7E05EC, 0x3F0080C1]


# ---- accumulation order ---------------------------------------------------------------------


def test_tree_sum_adds_adjacent_pairs_level_by_level() -> None:
    x = f32(1e8, 1, -1e8, 1, 3, 4, 5, 6)
    expected = ((np.float32(1e8) + 1) + (np.float32(-1e8) + 1)) + ((np.float32(3) + 4) + (np.float32(5) + 6))
    assert hw_tree_sum(x) == expected == 18  # 1e8 + 1 rounds back to 1e8; left to right gives 19
    with pytest.raises(ValueError, match="power of two"):
        hw_tree_sum(np.zeros(6, np.float32))


def test_max_and_min_propagate_nan_and_return_the_second_of_equal_values() -> None:
    zero, minus_zero, nan, one = f32(0.0), f32(-0.0), np.float32(np.nan), np.float32(1.0)
    assert np.signbit(hw_maximum(zero, minus_zero)) and not np.signbit(hw_maximum(minus_zero, zero))
    assert np.signbit(hw_minimum(zero, minus_zero)) and not np.signbit(hw_minimum(minus_zero, zero))
    assert np.isnan(hw_maximum(nan, one)) and np.isnan(hw_maximum(one, nan)) and np.isnan(hw_minimum(one, nan))
    assert hw_maximum(f32(1, -3), f32(2, -4)).tolist() == [2, -3]
    assert hw_minimum(f32(1, -3), f32(2, -4)).tolist() == [1, -4]


def test_max_reduce_is_a_pairwise_tree_keeping_the_last_equal_maximum() -> None:
    rng = np.random.default_rng(7)
    rows = rng.choice(f32(0.0, -0.0, -1.0, 2.0, -np.inf), (500, 16)).astype(np.float32)
    reduced = hw_max_reduce(rows)
    assert (reduced == rows.max(axis=1)).all()
    for row, value in zip(rows, reduced):
        last = row[np.flatnonzero(row == value)[-1]]
        assert np.signbit(value) == np.signbit(last)
    assert np.isnan(hw_max_reduce(f32(1, np.nan, 3, 4)))
    with pytest.raises(ValueError, match="power of two"):
        hw_max_reduce(np.zeros(6, np.float32))


def test_matmul_accumulates_bf16_products_in_k_order() -> None:
    rng = np.random.default_rng(6)
    act = rng.standard_normal((4, 16)).astype(np.float32)
    weight = rng.standard_normal((16, 8)).astype(np.float32)
    acc = rng.standard_normal((4, 8)).astype(np.float32)
    out = hw_matmul_accumulate(acc, act, weight)
    a, w = round_to_format(act, "bf16"), round_to_format(weight, "bf16")
    for i in range(4):
        for j in range(8):
            s = np.float32(0)
            for k in range(16):
                s = np.float32(s + a[i, k] * w[k, j])
            assert out[i, j] == np.float32(acc[i, j] + s)
    small = rng.integers(-8, 8, (4, 16)).astype(np.float32), rng.integers(-8, 8, (16, 8)).astype(np.float32)
    assert np.array_equal(hw_matmul_accumulate(np.zeros((4, 8), np.float32), *small), small[0] @ small[1])
    with pytest.raises(ValueError, match="do not match"):
        hw_matmul_accumulate(acc, act, weight.T)


@pytest.mark.parametrize("layout", ["contiguous", "transposed weight", "transposed both"])
@pytest.mark.parametrize("blen, mlen", [(8, 64), (16, 128), (1, 8)])  # dnpu-edge, dnpu-cloud, one row
def test_matmul_sums_in_k_order_at_machine_tile_sizes(blen: int, mlen: int, layout: str) -> None:
    """Mixed magnitudes make the float32 sum order-sensitive, so any other order shows up; the
    order must not depend on the inputs' memory layout (mmt passes the weight tile transposed)."""
    rng = np.random.default_rng(blen)
    act = (rng.standard_normal((blen, mlen)) * 10.0 ** rng.integers(-4, 5, (blen, mlen))).astype(np.float32)
    weight = (rng.standard_normal((mlen, mlen)) * 10.0 ** rng.integers(-4, 5, (mlen, mlen))).astype(np.float32)
    if layout != "contiguous":  # the same values as transposed views (mmt: weight.T)
        weight = np.ascontiguousarray(weight.T).T
    if layout == "transposed both":
        act = np.ascontiguousarray(act.T).T
    acc = rng.standard_normal((blen, mlen)).astype(np.float32)
    a, w = round_to_format(act, "bf16"), round_to_format(weight, "bf16")
    s = a[:, 0, None] * w[None, 0, :]
    for k in range(1, mlen):
        s = s + a[:, k, None] * w[None, k, :]
    in_order = (acc + s).astype(np.float32)
    reverse = a[:, -1, None] * w[None, -1, :]
    for k in range(mlen - 2, -1, -1):
        reverse = reverse + a[:, k, None] * w[None, k, :]
    assert not np.array_equal(in_order, (acc + reverse).astype(np.float32))  # the order matters here
    assert np.array_equal(hw_matmul_accumulate(acc, act, weight).view(np.uint32), in_order.view(np.uint32))
