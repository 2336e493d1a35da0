"""The hardware arithmetic of the dnpu, defined once.

Everything that decides a bit of a result on the NPU lives here: the element formats and their
rounding / saturation rules, the bit patterns DRAM images hold, MX block scaling, per-group INT
quantization, and the vector unit's exp / reciprocal / rsqrt / SiLU algorithms. The functional
simulator, the accuracy simulator, the compiler's reference and the RTL tests all call these
functions, so their results agree bit for bit. docs/numerics.md explains each rule step by step.

Conventions:
- Inputs are converted to float32 first (numpy RNE). Rounding to a format is round-to-nearest,
  ties-to-even, of the exact float32 value (computed exactly in float64, which is wide enough).
- The vector-unit functions (hw_*) use only float32 operations (IEEE RNE, no fused multiply-add)
  and integer operations on float32 bit patterns. They treat subnormal inputs as signed zero
  (DAZ) and flush subnormal results to signed zero (FTZ).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

# =============================================================================================
# Element formats
# =============================================================================================


@dataclass(frozen=True)
class ElementFormat:
    """One element format.

    kind "int": two's-complement integers scaled by 2^-fraction_bits (fraction_bits = 0 for
    plain INTn; MXINT8 / MXINT4 elements are fixed point with 6 / 2 fraction bits).
    kind "float": sign, exponent_bits, mantissa_bits with IEEE-style subnormals; has_inf / has_nan
    say which special encodings exist. saturate: finite values beyond max_value round to
    +-max_value (else they overflow to +-inf as in IEEE).
    block_scaled: an MX format, stored with one shared E8M0 scale per block; emax is the
    exponent of the largest power of two the element can hold (OCP "emax_elem").
    symmetric (ints): rounding clamps to [-max_value, max_value], so the most negative code
    (e.g. MXINT8 0x80 = -2) decodes but is never produced. MX ints need this: a block element
    rounded to -2 would raise the block's max|v| to the next power of two, and quantizing the
    result again would pick a different scale.
    """

    name: str
    kind: str
    bits: int
    exponent_bits: int = 0
    mantissa_bits: int = 0
    exponent_bias: int = 0
    fraction_bits: int = 0
    has_inf: bool = False
    has_nan: bool = False
    saturate: bool = True
    block_scaled: bool = False
    emax: int = 0
    symmetric: bool = False

    @property
    def max_value(self) -> float:
        """Largest finite value."""
        if self.kind == "int":
            return (2 ** (self.bits - 1) - 1) * 2.0**-self.fraction_bits
        top_exponent = 2**self.exponent_bits - 1 - self.exponent_bias
        if self.has_inf:  # IEEE style: the all-ones exponent is reserved for inf / nan
            return (2 - 2.0**-self.mantissa_bits) * 2.0 ** (top_exponent - 1)
        if self.has_nan:  # OCP E4M3 style: only S.1111.111 is nan
            return (2 - 2.0 ** (1 - self.mantissa_bits)) * 2.0**top_exponent
        return (2 - 2.0**-self.mantissa_bits) * 2.0**top_exponent

    @property
    def min_value(self) -> float:
        """Most negative value rounding produces (plain ints reach one step further than -max)."""
        if self.kind == "int" and not self.symmetric:
            return -(2 ** (self.bits - 1)) * 2.0**-self.fraction_bits
        return -self.max_value

    @property
    def min_exponent(self) -> int:
        """Exponent of the smallest normal value (floats)."""
        return 1 - self.exponent_bias


FORMATS: dict[str, ElementFormat] = {
    f.name: f
    for f in (
        ElementFormat("int8", "int", 8),
        ElementFormat("int4", "int", 4),
        ElementFormat("int2", "int", 2),
        ElementFormat("mxint8", "int", 8, fraction_bits=6, block_scaled=True, emax=0, symmetric=True),
        ElementFormat("mxint4", "int", 4, fraction_bits=2, block_scaled=True, emax=0, symmetric=True),
        # 3- and 2-bit MX integers for KV-cache experiments, same rule (fraction_bits = bits - 2):
        # MXINT3 = {0, +-0.5, +-1, +-1.5}, MXINT2 = ternary {0, +-1} (like symmetric INT2).
        ElementFormat("mxint3", "int", 3, fraction_bits=1, block_scaled=True, emax=0, symmetric=True),
        ElementFormat("mxint2", "int", 2, fraction_bits=0, block_scaled=True, emax=0, symmetric=True),
        ElementFormat("mxfp8_e4m3", "float", 8, 4, 3, 7, has_nan=True, block_scaled=True, emax=8),
        ElementFormat(
            "mxfp8_e5m2", "float", 8, 5, 2, 15, has_inf=True, has_nan=True, block_scaled=True, emax=15
        ),
        ElementFormat("mxfp4", "float", 4, 2, 1, 1, block_scaled=True, emax=2),
        ElementFormat("bf16", "float", 16, 8, 7, 127, has_inf=True, has_nan=True, saturate=False, emax=127),
        ElementFormat("fp32", "float", 32, 8, 23, 127, has_inf=True, has_nan=True, saturate=False, emax=127),
    )
}

MX_FORMATS = tuple(name for name, f in FORMATS.items() if f.block_scaled)
E8M0_BIAS = 127
E8M0_NAN = 0xFF


def get_format(fmt: str | ElementFormat) -> ElementFormat:
    """Look a format up by name; unknown names are an error listing the known ones."""
    if isinstance(fmt, ElementFormat):
        return fmt
    if fmt not in FORMATS:
        raise ValueError(f"unknown number format {fmt!r}; known: {', '.join(FORMATS)}")
    return FORMATS[fmt]


# =============================================================================================
# Rounding, encoding, decoding
# =============================================================================================


def round_to_format(x: np.ndarray | float, fmt: str | ElementFormat) -> np.ndarray:
    """Round float32 values to the nearest value of `fmt` (ties to even), as float32.

    Saturating formats clamp to [min_value, max_value]; bf16 and fp32 overflow to inf as IEEE.
    NaN stays NaN where the format has one; a NaN or inf input to a format without them raises
    ValueError. For MX formats this rounds to the element grid alone (no shared scale).
    """
    f = get_format(fmt)
    if f.name == "bf16":  # the hot path of every vector SRAM write: the same bits in one pass
        return _round_bf16(np.asarray(x, dtype=np.float32))
    return decode(encode(x, f), f)


def encode(x: np.ndarray | float, fmt: str | ElementFormat) -> np.ndarray:
    """Round float32 values to `fmt` and return their bit patterns (uint8 / uint16 / uint32).

    4- and 2-bit codes occupy the low bits of a uint8; pack_codes packs them densely.
    """
    f = get_format(fmt)
    x = np.asarray(x, dtype=np.float32)
    if f.name == "fp32":
        return x.view(np.uint32).copy()
    if f.name == "bf16":
        return _encode_bf16(x)
    if not f.has_nan and np.isnan(x).any():
        raise ValueError(f"format {f.name}: cannot encode NaN (the format has no NaN)")
    if f.kind == "int":
        if np.isinf(x).any():
            raise ValueError(f"format {f.name}: cannot encode inf (integers have no inf)")
        step = 2.0**-f.fraction_bits
        q = np.clip(np.rint(x.astype(np.float64) / step), f.min_value / step, f.max_value / step)
        return (q.astype(np.int64) & (2**f.bits - 1)).astype(np.uint8)
    return _encode_small_float(x, f)


def decode(codes: np.ndarray, fmt: str | ElementFormat) -> np.ndarray:
    """Bit patterns of `fmt` -> float32 values (exact: every format value is a float32)."""
    f = get_format(fmt)
    codes = np.asarray(codes)
    if f.name == "fp32":
        return codes.astype(np.uint32).view(np.float32)
    if f.name == "bf16":
        return (codes.astype(np.uint32) << 16).view(np.float32)
    if (codes >= 2**f.bits).any():
        raise ValueError(f"format {f.name}: code {int(codes.max())} does not fit in {f.bits} bits")
    return decode_table(f)[codes.astype(np.int64)]


def decode_table(fmt: str | ElementFormat) -> np.ndarray:
    """float32 value of every code of a format of at most 8 bits (index = code)."""
    f = get_format(fmt)
    if f.bits > 8:
        raise ValueError(f"format {f.name}: no decode table for {f.bits}-bit codes")
    codes = np.arange(2**f.bits, dtype=np.int64)
    if f.kind == "int":
        signed = np.where(codes >= 2 ** (f.bits - 1), codes - 2**f.bits, codes)
        return (signed * 2.0**-f.fraction_bits).astype(np.float32)
    sign = np.where(codes >> (f.bits - 1), -1.0, 1.0)
    exponent_field = (codes >> f.mantissa_bits) & (2**f.exponent_bits - 1)
    mantissa_field = codes & (2**f.mantissa_bits - 1)
    normal = (1 + mantissa_field / 2**f.mantissa_bits) * 2.0 ** (exponent_field - f.exponent_bias)
    subnormal = mantissa_field / 2**f.mantissa_bits * 2.0**f.min_exponent
    values = sign * np.where(exponent_field == 0, subnormal, normal)
    top = exponent_field == 2**f.exponent_bits - 1
    if f.has_inf:
        values = np.where(top & (mantissa_field == 0), sign * np.inf, values)
        values = np.where(top & (mantissa_field != 0), np.nan, values)
    elif f.has_nan:
        values = np.where(top & (mantissa_field == 2**f.mantissa_bits - 1), np.nan, values)
    return values.astype(np.float32)


def _encode_bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> bf16 bits: add 0x7FFF plus the lowest kept bit, keep the top 16 bits (RNE)."""
    u = x.view(np.uint32)
    # uint32 arithmetic wraps only for NaN patterns (>= 0xFFFF8001 with the sign bit), replaced below.
    rounded = ((u + np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1))) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    return np.where(nan, np.uint16(0x7FC0), rounded).astype(np.uint16) if nan.any() else rounded


def _round_bf16(x: np.ndarray) -> np.ndarray:
    """decode(_encode_bf16(x)) without the uint16 detour: RNE on the low 16 bits, NaN -> 0x7FC0."""
    u = x.view(np.uint32)
    rounded = ((u + np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1))) & np.uint32(0xFFFF0000)).view(np.float32)
    nan = np.isnan(x)
    return np.where(nan, _f32(0x7FC00000), rounded).astype(np.float32) if nan.any() else rounded


def _canonical_nan_code(f: ElementFormat) -> int:
    """The NaN pattern encode() writes: all-ones exponent and mantissa (E4M3) or the quiet NaN."""
    exponent_ones = (2**f.exponent_bits - 1) << f.mantissa_bits
    if f.has_inf:
        return exponent_ones | 1 << (f.mantissa_bits - 1)
    return exponent_ones | (2**f.mantissa_bits - 1)


def _encode_small_float(x: np.ndarray, f: ElementFormat) -> np.ndarray:
    """Round to a float format of at most 8 bits and build sign | exponent | mantissa fields."""
    v = x.astype(np.float64)
    sign = np.signbit(v)
    a = np.abs(np.where(np.isfinite(v), v, 0.0))
    # Exponent of each value's leading bit, never below the subnormal exponent.
    _, e = np.frexp(a)
    exponent = np.maximum(e - 1, f.min_exponent)
    quantum = np.ldexp(1.0, exponent - f.mantissa_bits)
    q = np.rint(a / quantum) * quantum  # exact scaling by a power of two, then RNE
    overflow = q > f.max_value
    q = np.minimum(q, f.max_value)
    _, e = np.frexp(q)
    exponent_field = np.where(q >= 2.0**f.min_exponent, e - 1 + f.exponent_bias, 0)
    mantissa = np.where(
        exponent_field == 0,
        q / 2.0 ** (f.min_exponent - f.mantissa_bits),
        q / np.ldexp(1.0, e - 1 - f.mantissa_bits) - 2**f.mantissa_bits,
    )
    code = (exponent_field.astype(np.int64) << f.mantissa_bits) | mantissa.astype(np.int64)
    if f.has_inf:
        inf_code = (2**f.exponent_bits - 1) << f.mantissa_bits
        code = np.where(np.isinf(v) | (overflow & ~f.saturate), inf_code, code)
    elif np.isinf(v).any():  # saturating format without inf: inf clamps to max_value
        max_code = int(encode_max_code(f))
        code = np.where(np.isinf(v), max_code, code)
    code = code | (sign.astype(np.int64) << (f.bits - 1))
    if f.has_nan:
        code = np.where(np.isnan(v), _canonical_nan_code(f), code)
    return code.astype(np.uint8)


def encode_max_code(fmt: str | ElementFormat) -> int:
    """Code of +max_value."""
    table = decode_table(fmt)
    return int(np.flatnonzero(table == get_format(fmt).max_value)[0])


def pack_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    """Pack n-bit codes (last axis) into bytes, first code in the least significant bits."""
    codes = np.asarray(codes, dtype=np.uint8)
    if bits == 8:
        return codes.copy()
    per_byte = 8 // bits
    if bits not in (2, 4) or codes.shape[-1] % per_byte:
        raise ValueError(f"pack_codes: need bits in (2, 4, 8) and a last axis divisible by {per_byte}")
    groups = codes.reshape(*codes.shape[:-1], -1, per_byte).astype(np.uint16)
    shifts = np.arange(per_byte, dtype=np.uint16) * bits
    return (groups << shifts).sum(axis=-1).astype(np.uint8)


def unpack_codes(packed: np.ndarray, bits: int) -> np.ndarray:
    """Inverse of pack_codes."""
    packed = np.asarray(packed, dtype=np.uint8)
    if bits == 8:
        return packed.copy()
    if bits not in (2, 4):
        raise ValueError(f"unpack_codes: bits must be 2, 4 or 8, not {bits}")
    per_byte = 8 // bits
    shifts = np.arange(per_byte, dtype=np.uint8) * bits
    codes = (packed[..., None] >> shifts) & (2**bits - 1)
    return codes.reshape(*packed.shape[:-1], -1).astype(np.uint8)


# =============================================================================================
# MX block scaling (OCP Microscaling Formats v1.0)
# =============================================================================================


@dataclass(frozen=True)
class MXTensor:
    """An MX-quantized tensor: element codes plus one E8M0 scale per block along `axis`.

    elements has the input's shape (codes in uint8); scales has the input's shape with the
    blocked axis divided by `block`. A scale code s means 2^(s - 127); 0xFF means the block is NaN.
    """

    elements: np.ndarray
    scales: np.ndarray
    fmt: str
    block: int
    axis: int


# How an MX encoder picks a block's shared exponent (docs/numerics.md, "MX scale rules").
# "ocp": OCP MX v1.0 section 6.3, shared_exp = floor(log2(amax)) - emax_elem; the block maximum
#   can round past the element's max_value and is then clamped (clipped).
# "no_clip": the smallest power-of-two scale whose rounded block maximum fits the element:
#   shared_exp = e_ocp + 1 if RNE(amax / 2^e_ocp) > max_value else e_ocp. It equals "ocp" whenever
#   OCP does not clip, is at most one binade coarser, and never clips (up to the E8M0 top, 2^127).
MX_SCALE_RULES = ("ocp", "no_clip")


def check_scale_rule(scale_rule: str) -> str:
    """Return `scale_rule` if it is a known MX scale rule; otherwise raise naming the known ones."""
    if scale_rule not in MX_SCALE_RULES:
        raise ValueError(f"unknown MX scale rule {scale_rule!r}; known: {', '.join(MX_SCALE_RULES)}")
    return scale_rule


def mx_shared_exponent(amax: np.ndarray, fmt: str | ElementFormat, scale_rule: str = "ocp") -> np.ndarray:
    """The shared exponent (E8M0 code - 127) of blocks with maximum magnitude `amax` (finite, >= 0).

    ocp: floor(log2(amax)) - emax_elem (from the exponent, exact), clamped to [-127, 127]; an
    all-zero block gets -127.
    no_clip: one more where the ocp exponent would clip the block maximum, i.e. where amax / 2^e
    rounded to the element grid (RNE, no saturation) exceeds max_value, unless e is already 127.
    One more always suffices: amax / 2^(e + 1) < 2^emax_elem <= max_value for every MX format.
    """
    f = get_format(fmt)
    check_scale_rule(scale_rule)
    amax = np.asarray(amax, dtype=np.float64)
    _, e = np.frexp(amax)  # amax = m * 2^e with m in [0.5, 1): floor(log2(amax)) = e - 1
    shared_exp = np.clip(np.where(amax > 0, e - 1 - f.emax, -E8M0_BIAS), -E8M0_BIAS, E8M0_BIAS)
    if scale_rule == "no_clip":
        clips = _round_unsaturated(np.ldexp(amax, -shared_exp), f) > f.max_value
        shared_exp = np.where(clips & (shared_exp < E8M0_BIAS), shared_exp + 1, shared_exp)
    return shared_exp.astype(np.int64)


def _round_unsaturated(v: np.ndarray, f: ElementFormat) -> np.ndarray:
    """Non-negative float64 values rounded (RNE) to the element grid of `f`, without clamping."""
    if f.kind == "int":
        step = 2.0**-f.fraction_bits
        return np.rint(v / step) * step
    _, e = np.frexp(v)
    quantum = np.ldexp(1.0, np.maximum(e - 1, f.min_exponent) - f.mantissa_bits)
    return np.rint(v / quantum) * quantum


def mx_quantize(x: np.ndarray, fmt: str, block: int = 32, axis: int = -1, scale_rule: str = "ocp") -> MXTensor:
    """Quantize float32 values to an MX format with one shared power-of-two scale per block.

    Per block: shared_exp from max|v| by `scale_rule` (mx_shared_exponent; "ocp" is OCP MX v1.0
    section 6.3: floor(log2(max|v|)) - emax_elem, clamped to [-127, 127], an all-zero block gets
    scale 2^-127); each element is v / 2^shared_exp rounded to the element format (RNE) and clamped
    to its finite range. A block holding a NaN or an inf gets the NaN scale 0xFF and zero elements.
    """
    f = get_format(fmt)
    if not f.block_scaled:
        raise ValueError(f"mx_quantize: {fmt!r} is not an MX format; choose one of {', '.join(MX_FORMATS)}")
    check_scale_rule(scale_rule)
    blocks = _to_blocks(np.asarray(x, dtype=np.float32), block, axis, "mx_quantize")
    special = ~np.isfinite(blocks).all(axis=-1)
    finite = np.where(np.isfinite(blocks), blocks, 0.0).astype(np.float64)
    shared_exp = mx_shared_exponent(np.abs(finite).max(axis=-1), f, scale_rule)
    scaled = np.ldexp(finite, -shared_exp[..., None])  # exact: a power-of-two scaling in float64
    elements = _encode_exact(scaled, f)
    elements = np.where(special[..., None], 0, elements).astype(np.uint8)
    scales = np.where(special, E8M0_NAN, shared_exp + E8M0_BIAS).astype(np.uint8)
    return MXTensor(_from_blocks(elements, axis), np.moveaxis(scales, -1, axis), f.name, block, axis)


def mx_dequantize(q: MXTensor) -> np.ndarray:
    """element x 2^(scale - 127), rounded once to float32; NaN-scale blocks decode to NaN."""
    values = decode(q.elements, q.fmt).astype(np.float64)
    blocks = _to_blocks(values, q.block, q.axis, "mx_dequantize")
    scales = np.moveaxis(np.asarray(q.scales), q.axis, -1)
    exponent = scales.astype(np.int64) - E8M0_BIAS
    out = np.ldexp(blocks, exponent[..., None])
    out = np.where((scales == E8M0_NAN)[..., None], np.nan, out)
    return _from_blocks(out.astype(np.float32), q.axis)


def mx_round(x: np.ndarray, fmt: str, block: int = 32, axis: int = -1, scale_rule: str = "ocp") -> np.ndarray:
    """mx_dequantize(mx_quantize(x)): the values an MX round trip leaves (fake quantization)."""
    return mx_dequantize(mx_quantize(x, fmt, block, axis, scale_rule))


def _encode_exact(v: np.ndarray, f: ElementFormat) -> np.ndarray:
    """Encode float64 values that are exact power-of-two multiples of float32 values.

    The scaled MX elements may lie outside float32's range (a tiny element over a huge scale),
    so they are rounded from float64 directly rather than through a float32 conversion.
    """
    if f.kind == "int":
        step = 2.0**-f.fraction_bits
        q = np.clip(np.rint(v / step), f.min_value / step, f.max_value / step)
        return (q.astype(np.int64) & (2**f.bits - 1)).astype(np.uint8)
    # Values below half the smallest subnormal round to zero anyway; clamp into float32 range
    # first so that the float32 path below sees the same rounding decisions.
    tiny = 2.0 ** (f.min_exponent - f.mantissa_bits - 2)
    v = np.where(np.abs(v) < tiny, np.copysign(0.0, v), v)
    v = np.clip(v, -2.0 * f.max_value, 2.0 * f.max_value)
    return _encode_small_float(v.astype(np.float32), f)


def _to_blocks(x: np.ndarray, block: int, axis: int, who: str) -> np.ndarray:
    """Move `axis` last and split it into (n_blocks, block)."""
    if block < 1:
        raise ValueError(f"{who}: block must be positive, not {block}")
    x = np.moveaxis(x, axis, -1)
    if x.shape[-1] % block:
        raise ValueError(f"{who}: axis length {x.shape[-1]} is not a multiple of block {block}")
    return x.reshape(*x.shape[:-1], x.shape[-1] // block, block)


def _from_blocks(x: np.ndarray, axis: int) -> np.ndarray:
    x = x.reshape(*x.shape[:-2], x.shape[-2] * x.shape[-1])
    return np.moveaxis(x, -1, axis)


# =============================================================================================
# Per-group INT quantization (symmetric and asymmetric), for weights and KV-cache experiments
# =============================================================================================


@dataclass(frozen=True)
class GroupQuantized:
    """Integer codes plus one float32 scale (and offset, if asymmetric) per group along `axis`.

    Symmetric: codes are signed (int8 array), value = code * scale.
    Asymmetric: codes are unsigned (uint8 array), value = code * scale + offset.
    """

    codes: np.ndarray
    scale: np.ndarray
    offset: np.ndarray | None
    bits: int
    group_size: int
    axis: int


def quantize_symmetric(
    x: np.ndarray, bits: int, group_size: int | None = None, axis: int = -1
) -> GroupQuantized:
    """Symmetric INT quantization per group of `group_size` values along `axis` (None: whole axis).

    qmax = 2^(bits-1) - 1 (the code -2^(bits-1) is unused, keeping the grid symmetric);
    scale = max|x| / qmax in float32 (scale = 1 where that is 0: an all-zero group, or subnormal
    values whose step underflows);
    code = clip(rint(x / scale), -qmax, qmax), x / scale computed in float32, ties to even.
    """
    blocks, group_size = _groups(x, bits, group_size, axis, "quantize_symmetric")
    qmax = np.float32(2 ** (bits - 1) - 1)
    amax = np.abs(blocks).max(axis=-1, keepdims=True)
    scale = (amax / qmax).astype(np.float32)
    scale = np.where(scale > 0, scale, np.float32(1.0))  # all-zero group, or a step that underflows float32
    codes = np.clip(np.rint(blocks / scale), -qmax, qmax).astype(np.int8)
    return GroupQuantized(_from_blocks(codes, axis), scale[..., 0], None, bits, group_size, axis)


def quantize_asymmetric(
    x: np.ndarray, bits: int, group_size: int | None = None, axis: int = -1
) -> GroupQuantized:
    """Asymmetric (min/max) INT quantization per group, zero point kept as a float offset.

    offset = min(x); scale = (max(x) - min(x)) / (2^bits - 1) in float32 (scale = 1 where that
    is 0: a constant group, whose values the offset then holds exactly, or a subnormal spread);
    code = clip(rint((x - offset) / scale), 0, 2^bits - 1), each step in float32, ties to even.
    This is the KIVI form; min and max are both exactly representable.
    """
    blocks, group_size = _groups(x, bits, group_size, axis, "quantize_asymmetric")
    qmax = np.float32(2**bits - 1)
    lo = blocks.min(axis=-1, keepdims=True)
    span = blocks.max(axis=-1, keepdims=True) - lo
    if not np.isfinite(span).all():
        raise ValueError("quantize_asymmetric: a group's max - min overflows float32")
    scale = (span / qmax).astype(np.float32)
    scale = np.where(scale > 0, scale, np.float32(1.0))  # constant group, or a step that underflows float32
    codes = np.clip(np.rint((blocks - lo) / scale), 0, qmax).astype(np.uint8)
    return GroupQuantized(_from_blocks(codes, axis), scale[..., 0], lo[..., 0], bits, group_size, axis)


def dequantize_groups(q: GroupQuantized) -> np.ndarray:
    """code * scale (+ offset), each product and sum rounded to float32."""
    codes = _to_blocks(q.codes, q.group_size, q.axis, "dequantize_groups").astype(np.float32)
    values = codes * q.scale[..., None]
    if q.offset is not None:
        values = values + q.offset[..., None]
    return _from_blocks(values.astype(np.float32), q.axis)


def _groups(x: np.ndarray, bits: int, group_size: int | None, axis: int, who: str) -> tuple[np.ndarray, int]:
    if bits not in (2, 3, 4, 8):
        raise ValueError(f"{who}: bits must be 2, 3, 4 or 8, not {bits}")
    x = np.asarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise ValueError(f"{who}: input contains NaN or inf")
    group_size = x.shape[axis] if group_size is None else group_size
    return _to_blocks(x, group_size, axis, who), group_size


# =============================================================================================
# Vector-unit function approximations (float32 in, float32 out, bit exact)
# =============================================================================================

_SIGN = np.uint32(0x80000000)
_EXPONENT = np.uint32(0x7F800000)
_MANTISSA = np.uint32(0x007FFFFF)


def _quiet(fn):
    """Silence numpy's floating-point warnings: inf / NaN results are part of the definition."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with np.errstate(all="ignore"):
            return fn(*args, **kwargs)

    return wrapper


def _f32(bits: int) -> np.float32:
    """A float32 constant written as its exact bit pattern."""
    return np.uint32(bits).view(np.float32)


# exp: 2^n * p(r), x = n ln2 + r, |r| <= ln2/2.
EXP_LOG2E = _f32(0x3FB8AA3B)  # 1.44269502 = log2(e) rounded to float32
EXP_LN2_HI = _f32(0x3F317200)  # 0.693145752: ln2 with 15 significant bits, so n * LN2_HI is exact
EXP_LN2_LO = _f32(0x35BFBE8E)  # 1.42860677e-6 = ln2 - LN2_HI rounded to float32
EXP_INPUT_CLAMP = (np.float32(-104.0), np.float32(89.0))  # beyond these the result is 0 / inf anyway
# Taylor coefficients 1/k!, k = 0..7, rounded to float32 (truncation error < 5.2e-9 on |r| <= ln2/2).
EXP_COEFFS = tuple(
    _f32(b)
    for b in (0x3F800000, 0x3F800000, 0x3F000000, 0x3E2AAAAB, 0x3D2AAAAB, 0x3C088889, 0x3AB60B61, 0x39500D01)
)

# Reciprocal and rsqrt seeds: 64-entry tables indexed by leading mantissa bits.
RECIP_TABLE_BITS = 6
RECIP_NEWTON_STEPS = 2
RSQRT_TABLE_BITS = 5  # plus one exponent-parity bit: 64 entries
RSQRT_NEWTON_STEPS = 2


def _recip_seed_table() -> np.ndarray:
    """Entry i = 1 / (1 + (i + 0.5) / 64): the reciprocal at the middle of mantissa interval i."""
    n = 2**RECIP_TABLE_BITS
    midpoints = 1.0 + (np.arange(n) + 0.5) / n
    return (1.0 / midpoints).astype(np.float32)


def _rsqrt_seed_table() -> np.ndarray:
    """Entry (p * 32 + i) = 1 / sqrt(2^p * (1 + (i + 0.5) / 32)), p = exponent parity bit."""
    n = 2**RSQRT_TABLE_BITS
    frac = 1.0 + (np.arange(n) + 0.5) / n
    midpoints = np.concatenate([frac, 2.0 * frac])
    return (1.0 / np.sqrt(midpoints)).astype(np.float32)


RECIP_TABLE = _recip_seed_table()
RSQRT_TABLE = _rsqrt_seed_table()


def _bits_of(x: np.ndarray) -> np.ndarray:
    return x.view(np.uint32)


def _from_bits(u: np.ndarray) -> np.ndarray:
    return np.asarray(u, dtype=np.uint32).view(np.float32)


def flush_subnormals(x: np.ndarray) -> np.ndarray:
    """Replace subnormal float32 values by zero of the same sign (DAZ on inputs, FTZ on results)."""
    x = np.asarray(x, dtype=np.float32)
    u = _bits_of(x)
    return np.where((u & _EXPONENT) == 0, _from_bits(u & _SIGN), x).astype(np.float32)


@_quiet
def _scale_by_power_of_two(y: np.ndarray, n: np.ndarray) -> np.ndarray:
    """y * 2^n for normal y by adding n to the exponent field; overflow -> inf, underflow -> 0."""
    u = _bits_of(y).astype(np.int64)
    field = ((u >> 23) & 0xFF) + n
    scaled = _from_bits((u + (n.astype(np.int64) << 23)) & 0xFFFFFFFF)
    sign = _from_bits((u & 0x80000000).astype(np.uint32))
    out = np.where(field >= 255, np.copysign(np.float32(np.inf), sign), scaled)
    out = np.where(field <= 0, sign, out)  # sign is +-0.0
    return out.astype(np.float32)


@_quiet
def hw_exp(x: np.ndarray) -> np.ndarray:
    """e^x in float32 with float32 operations only.

    1. DAZ the input; clamp to [-104, 89] (NaN stays NaN).
    2. n = rint(x * LOG2E)                      (float32 multiply, round half to even)
    3. r = (x - n * LN2_HI) - n * LN2_LO        (n * LN2_HI and the first subtraction are exact)
    4. p = Horner(EXP_COEFFS, r), highest degree first: p = c7; p = p * r + c_k for k = 6..0
    5. result = p * 2^n by adding n to p's exponent field: field >= 255 -> +inf, field <= 0 -> +0
       (results below 2^-126 flush to zero).
    Special values: NaN -> NaN, +inf -> +inf, -inf -> +0.
    """
    x = flush_subnormals(x)
    xc = np.clip(x, *EXP_INPUT_CLAMP)
    nan = np.isnan(xc)
    xc = np.where(nan, np.float32(0), xc)
    n = np.rint(xc * EXP_LOG2E)
    r = (xc - n * EXP_LN2_HI) - n * EXP_LN2_LO
    p = np.full_like(r, EXP_COEFFS[-1])
    for c in reversed(EXP_COEFFS[:-1]):
        p = p * r + c
    out = _scale_by_power_of_two(p, n.astype(np.int64))
    return np.where(nan, np.float32(np.nan), out).astype(np.float32)


@_quiet
def hw_recip(x: np.ndarray) -> np.ndarray:
    """1/x in float32: table seed plus two Newton steps on the mantissa.

    1. DAZ the input. Split |x| = m * 2^e with m in [1, 2) (bit fields, no arithmetic).
    2. y = RECIP_TABLE[top 6 mantissa bits]          (relative error <= 2^-7)
    3. twice: d = 1 - m * y; y = y + y * d            (each op float32; error squares per step)
    4. result = sign * y * 2^-e via the exponent field; results below 2^-126 flush to +-0.
    Special values: +-0 (and subnormals) -> +-inf, +-inf -> +-0, NaN -> NaN.
    """
    x = flush_subnormals(x)
    u = _bits_of(x)
    exponent_field = ((u & _EXPONENT) >> 23).astype(np.int64)
    m = _from_bits((u & _MANTISSA) | np.uint32(0x3F800000))
    y = RECIP_TABLE[(u & _MANTISSA) >> (23 - RECIP_TABLE_BITS)]
    one = np.float32(1.0)
    for _ in range(RECIP_NEWTON_STEPS):
        d = one - m * y
        y = y + y * d
    y = np.copysign(y, x)
    out = _scale_by_power_of_two(y, -(exponent_field - 127))
    out = np.where(exponent_field == 0, np.copysign(np.float32(np.inf), x), out)
    out = np.where(np.isinf(x), np.copysign(np.float32(0), x), out)
    return np.where(np.isnan(x), np.float32(np.nan), out).astype(np.float32)


@_quiet
def hw_rsqrt(x: np.ndarray) -> np.ndarray:
    """1/sqrt(x) in float32: table seed plus two Newton steps.

    1. DAZ the input. Write x = m' * 2^(2k) with m' in [1, 4): k = floor(e / 2), m' = m * 2^(e mod 2).
    2. y = RSQRT_TABLE[(e mod 2) * 32 + top 5 mantissa bits]   (relative error <= 2^-7)
    3. twice: h = 0.5 * y; t = (m' * y) * y; d = 1 - t; y = y + h * d   (each op float32)
    4. result = y * 2^-k via the exponent field (always a normal number).
    Special values: +0 -> +inf, -0 -> -inf, x < 0 -> NaN, +inf -> +0, NaN -> NaN.
    """
    x = flush_subnormals(x)
    u = _bits_of(x)
    exponent = ((u & _EXPONENT) >> 23).astype(np.int64) - 127
    parity = exponent & 1
    k = exponent >> 1  # floor division, also for negative exponents
    m = _from_bits((u & _MANTISSA) | ((127 + parity) << 23).astype(np.uint32))
    y = RSQRT_TABLE[parity * 2**RSQRT_TABLE_BITS + ((u & _MANTISSA) >> (23 - RSQRT_TABLE_BITS))]
    one, half = np.float32(1.0), np.float32(0.5)
    for _ in range(RSQRT_NEWTON_STEPS):
        h = half * y
        t = (m * y) * y
        y = y + h * (one - t)
    out = _scale_by_power_of_two(y, -k)
    out = np.where(x == 0, np.copysign(np.float32(np.inf), x), out)
    out = np.where(x == np.inf, np.float32(0), out)
    return np.where(np.isnan(x) | (x < 0), np.float32(np.nan), out).astype(np.float32)


@_quiet
def hw_sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x) = hw_recip(1 + hw_exp(-x)); -inf -> 0, +inf -> 1, NaN -> NaN."""
    x = flush_subnormals(x)
    return flush_subnormals(hw_recip(np.float32(1.0) + hw_exp(-x)))


@_quiet
def hw_silu(x: np.ndarray) -> np.ndarray:
    """x * sigmoid(x) = x * hw_recip(1 + hw_exp(-x)), one float32 multiply, result FTZ.

    Special values: -inf -> -0 (the limit), +inf -> +inf, NaN -> NaN. Below x = -87.3 the true
    value (|silu| < 1e-35) is under float32's normal range and flushes to -0.
    """
    x = flush_subnormals(x)
    out = flush_subnormals(x * hw_sigmoid(x))
    return np.where(x == -np.inf, np.float32(-0.0), out).astype(np.float32)


# =============================================================================================
# Accumulation order of the matrix and vector units
# =============================================================================================


def hw_tree_sum(x: np.ndarray) -> np.ndarray:
    """Sum over the last axis (a power-of-two length) by a pairwise tree of float32 adds.

    Level by level, element i of the next level is x[2i] + x[2i+1]: the order of the vector
    unit's sum reduction over one VLEN row.
    """
    x = np.asarray(x, dtype=np.float32)
    n = x.shape[-1]
    if n < 1 or n & (n - 1):
        raise ValueError(f"hw_tree_sum: length {n} of the last axis must be a power of two")
    while x.shape[-1] > 1:
        x = x[..., 0::2] + x[..., 1::2]
    return x[..., 0]


def hw_maximum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """max(a, b) in float32 as the vector unit computes it: a NaN operand gives a NaN (a's when
    a is one), otherwise a if a > b else b, so of two equal values (+0 and -0) the second is
    returned. This is numpy's float32 maximum on x86 (SSE / AVX max semantics plus NaN
    propagation); written out so that the sign of a zero maximum does not depend on the host."""
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    return np.where(np.isnan(a) | (a > b), a, b).astype(np.float32)


def hw_minimum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """min(a, b) with hw_maximum's rules: NaN propagates, a if a < b else b."""
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    return np.where(np.isnan(a) | (a < b), a, b).astype(np.float32)


def hw_max_reduce(x: np.ndarray) -> np.ndarray:
    """Maximum over the last axis (a power-of-two length) by a pairwise tree of hw_maximum, in
    hw_tree_sum's order: the vector unit's max reduction over one VLEN row (vmaxr). A NaN gives a
    NaN; of equal maxima the last lane's value is returned (the sign of a zero maximum)."""
    x = np.asarray(x, dtype=np.float32)
    n = x.shape[-1]
    if n < 1 or n & (n - 1):
        raise ValueError(f"hw_max_reduce: length {n} of the last axis must be a power of two")
    while x.shape[-1] > 1:
        x = hw_maximum(x[..., 0::2], x[..., 1::2])
    return x[..., 0]


def chained_row_sum(x: np.ndarray, vlen: int, start: np.ndarray | None = None) -> np.ndarray:
    """A chain of `vsum`s over the VLEN rows of the last axis, in order: s = s + tree_sum(row) in
    fp32 (the scalar accumulator); how every row reduction of the compiler and the kernels sums.

    A last axis that is not a multiple of VLEN (a ragged width, e.g. d_model 96 on VLEN 64) sums
    as if its last row were filled up with +0.0: that is the row the compiler's zero-padded
    vector SRAM holds (npu.compiler.layout, `Shapes.d_model_pad`), and the one place the ragged
    order is defined. Whole rows of padding (the compiler pads to MLEN, not VLEN) then add +0.0
    to the chain, which leaves any total but -0.0 unchanged.
    """
    x = np.asarray(x, dtype=np.float32)
    ragged = -x.shape[-1] % vlen
    if ragged:
        x = np.concatenate([x, np.zeros(x.shape[:-1] + (ragged,), np.float32)], axis=-1)
    total = np.zeros(x.shape[:-1], np.float32) if start is None else np.asarray(start, np.float32)
    for j in range(x.shape[-1] // vlen):
        total = (total + hw_tree_sum(x[..., j * vlen:(j + 1) * vlen])).astype(np.float32)
    return total

def hw_matmul_accumulate(acc: np.ndarray, act: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """acc + act @ weight as the systolic array computes it.

    act [B, K] and weight [K, N] are first rounded to bf16 (the array's input format), so each
    product is exact in float32. Each output column sums its K products in order k = 0..K-1
    (s = p0; s = s + p_k, float32 RNE) - the partial sum flowing down the array - and the
    column sum is then added to acc (float32).
    """
    acc = np.asarray(acc, dtype=np.float32)
    if np.ndim(act) == 3:
        return _hw_matmul_accumulate_batched(acc, np.asarray(act, np.float32), np.asarray(weight, np.float32))
    a = round_to_format(act, "bf16")
    w = round_to_format(weight, "bf16")
    if a.ndim != 2 or w.ndim != 2 or a.shape[1] != w.shape[0] or acc.shape != (a.shape[0], w.shape[1]):
        raise ValueError(
            f"hw_matmul_accumulate: shapes acc {acc.shape}, act {a.shape}, weight {w.shape} do not match"
        )
    # products[k] = a[:, k] (x) w[k], added one slice after another: s = p0; s = s + p_k. Written
    # as a loop because np.add.reduce's order depends on memory layout: when k is the fastest
    # axis (a transposed view of the weights, as mmt passes, or one output row/column) numpy
    # sums it pairwise in blocks of 8, not in order. tests/test_numerics.py checks the loop order
    # for contiguous and transposed inputs; the matrix unit RTL adds in this order.
    if a.shape[0] * w.shape[1] >= _MATMUL_PRODUCT_LOOP:
        # Large outputs: one product slice at a time into a reused buffer (same products, same
        # order, less memory traffic than materialising all K slices).
        a_by_k = np.ascontiguousarray(a.T)
        w = np.ascontiguousarray(w)
        s = a_by_k[0][:, None] * w[0][None, :]
        product = np.empty_like(s)
        for k in range(1, a_by_k.shape[0]):
            np.multiply(a_by_k[k][:, None], w[k][None, :], out=product)
            s += product
        return (acc + s).astype(np.float32)
    products = a.T[:, :, None] * w[:, None, :]
    s = products[0].copy()
    for k in range(1, products.shape[0]):
        s += products[k]
    return (acc + s).astype(np.float32)


# Output size (rows x columns) from which hw_matmul_accumulate forms one product slice at a time.
_MATMUL_PRODUCT_LOOP = 2048


def _hw_matmul_accumulate_batched(acc: np.ndarray, a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """hw_matmul_accumulate over a leading batch axis (the lock-step simulator's lanes): acc
    [L, B, N] + a [L, B, K] @ w [L or 1, K, N] (not yet rounded to bf16), every output in the same
    order s = p0; s = s + p_k. The products are the same exact float32 products, so each lane's
    bits equal the 2-D call's."""
    if w.ndim != 3 or w.shape[0] not in (1, a.shape[0]) or a.shape[2] != w.shape[1] \
            or acc.shape != (a.shape[0], a.shape[1], w.shape[2]):
        raise ValueError(
            f"hw_matmul_accumulate: shapes acc {acc.shape}, act {a.shape}, weight {w.shape} do not match"
        )
    if not (_bf16_valued(a) and _bf16_valued(w)):  # as read from bf16 SRAMs they already are
        a, w = round_to_format(a, "bf16"), round_to_format(w, "bf16")
    if _products_exact(a, w):  # finite: the values are bf16 values, rounding changes nothing
        return (acc + _exact_products_sum(a, w)).astype(np.float32)
    a, w = round_to_format(a, "bf16"), round_to_format(w, "bf16")  # a NaN becomes the canonical one
    # torch's float32 CPU multiply and add: the same IEEE operations, each rounded on its own
    # (two kernels, no fused multiply-add), about twice numpy's speed on these broadcasts.
    import torch

    a_by_k = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[:, :, :, None]  # [K, L, B, 1]
    w_by_k = torch.from_numpy(np.ascontiguousarray(w.transpose(1, 0, 2)))[:, :, None, :]  # [K, L, 1, N]
    s = a_by_k[0] * w_by_k[0]
    product = torch.empty_like(s)
    for k in range(1, a_by_k.shape[0]):
        torch.mul(a_by_k[k], w_by_k[k], out=product)
        s += product
    return (acc + s.numpy()).astype(np.float32)


_SIGN = np.uint32(0x80000000)


def _exact_products_sum(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """s = p_0 + p_1 + ... + p_(K-1) in order (float32, RNE), p_k = a[..., k] (x) w[:, k], for
    operands whose every product is exact (_products_exact): the batched matrix unit's sum.

    Three exact shortcuts, for the padding of tiles (attention over a short sequence in a
    128-wide tile is mostly zeros):
    - s + a_k * w_k rounds once whether fused or not (the product is exact): torch's addcmul_.
    - -0.0 is the identity of IEEE addition (x + -0 = x for every x, +0 included), and +0.0 is
      too except on -0 (-0 + +0 = +0). A sum is -0 only while every term so far was -0 (two
      nonzero terms never sum to -0 in round-to-nearest). So a product slice k that is zero
      everywhere (a[..., k] all +0.0 in every lane and row) can be left out: the sum of the
      rest is the answer, except that a -0 result becomes +0 where a left-out product is +0
      (w[k, n] without its sign bit).
    - An output column whose weights are all +0.0 sums products +-0 with a's signs: -0 exactly
      where every a[..., k] of the row has its sign bit set, else +0.
    tests/test_lockstep_sim.py compares this with the unfused order on zero-padded, signed-zero
    and ordinary operands bit for bit.
    """
    import torch

    a = np.ascontiguousarray(a, dtype=np.float32)
    w = np.ascontiguousarray(w, dtype=np.float32)
    lanes, rows, _ = a.shape
    a_bits, w_bits = a.view(np.uint32), w.view(np.uint32)
    kept_k = (a_bits != 0).any(axis=(0, 1))     # product slices not +0.0 * w everywhere
    kept_n = (w_bits != 0).any(axis=(0, 1))     # output columns whose weights are not all +0.0
    ks, ns = np.flatnonzero(kept_k), np.flatnonzero(kept_n)
    trimmed = ks.size < kept_k.size or ns.size < kept_n.size
    if trimmed:
        a_kept = a[:, :, ks]
        w_kept = w[:, ks][:, :, ns]
    else:
        a_kept, w_kept = a, w
    out = np.empty((lanes, rows, w.shape[2]), np.float32)
    if ks.size and ns.size:
        a_by_k = torch.from_numpy(np.ascontiguousarray(a_kept.transpose(2, 0, 1)))[:, :, :, None]  # [K, L, B, 1]
        w_by_k = torch.from_numpy(np.ascontiguousarray(w_kept.transpose(1, 0, 2)))[:, :, None, :]  # [K, L, 1, N]
        s = a_by_k[0] * w_by_k[0]
        for k in range(1, a_by_k.shape[0]):
            s.addcmul_(a_by_k[k], w_by_k[k])
        kept_sum = s.numpy()
    else:
        kept_sum = np.full((lanes, rows, ns.size), -0.0, np.float32)  # no terms: the identity
    if ks.size < kept_k.size and ns.size:
        # a left-out product is +0 where the weight's sign bit is clear: it turns a -0 sum into +0
        left_out_positive = ((w_bits[:, ~kept_k][:, :, ns] & _SIGN) == 0).any(axis=1)  # [L or 1, N kept]
        negative_zero = kept_sum.view(np.uint32) == _SIGN
        kept_sum = np.where(negative_zero & left_out_positive[:, None, :], np.float32(0.0), kept_sum)
    if not trimmed:
        return kept_sum
    out[:, :, ns] = kept_sum
    if ns.size < kept_n.size:
        every_sign_set = ((a_bits & _SIGN) != 0).all(axis=2)  # [L, B]
        out[:, :, ~kept_n] = np.where(every_sign_set, np.float32(-0.0), np.float32(0.0))[:, :, None]
    return out


# A product of two bf16 values has at most 16 significant bits; it is exact in float32 when its
# magnitude is at least the smallest normal (2^-126) and below 2^127 (no overflow).
_EXACT_PRODUCT_LOW, _EXACT_PRODUCT_HIGH = 2.0**-126, 2.0**127


def _products_exact(a: np.ndarray, w: np.ndarray) -> bool:
    """Whether every product of a bf16 value of `a` and one of `w` is exactly a float32 (all
    finite; the nonzero magnitudes far enough from underflow and overflow). Only then may the
    matrix unit's multiply and add be fused without changing a bit."""
    low_a, high_a = _magnitude_range(a)
    low_w, high_w = _magnitude_range(w)
    if not high_a * high_w < _EXACT_PRODUCT_HIGH:  # NaN or inf anywhere: False
        return False
    return low_a * low_w >= _EXACT_PRODUCT_LOW


def _bf16_valued(x: np.ndarray) -> bool:
    """Whether every float32 of x has zero low 16 bits (bf16 rounding keeps every finite one)."""
    return not (x.view(np.uint32) & np.uint32(0xFFFF)).any()


def _magnitude_range(x: np.ndarray) -> tuple[float, float]:
    """(least nonzero |x| (inf when all are zero), largest |x|; NaN when x holds a NaN), read
    from the bit patterns: below the sign bit they order as the magnitudes do."""
    magnitude = np.asarray(x, dtype=np.float32).view(np.uint32) & np.uint32(0x7FFFFFFF)
    high = int(magnitude.max())
    magnitude -= np.uint32(1)  # a zero wraps round to the largest pattern, so min() skips it
    low = int(magnitude.min()) + 1  # 2^32 when every element is zero
    return (_pattern_value(low) if low < 0x80000000 else np.inf), _pattern_value(high)


def _pattern_value(bits: int) -> float:
    return float(np.array(bits, np.uint32).view(np.float32))


# vsmscale's power-of-two modes by smoothing strength alpha: s = 2^floor(alpha * floor(log2 m)).
POW2_MODES = {0.25: "p2a25", 0.5: "p2a50", 0.75: "p2a75", 1.0: "p2a100"}
# The strengths BAOS KV smoothing chooses from by default, in the accuracy simulator
# (npu.quant.baos) and on the NPU (npu.compiler.kv_quant) alike: none, and the fractional modes.
SMOOTHING_ALPHAS = (0.0, 0.25, 0.5, 0.75)
# How BAOS picks its candidate per (sequence, layer, KV head), K and V separately; the candidates
# are the alphas above (with the per-channel shift where the variant shifts) plus "no smoothing"
# (no shift, s = 1: the plain storage format), tried first so that ties keep the plain format.
# "output":        the attention-output error of the block's queries (docs/baos.md section 3):
#                  keys by |softmax(q k^T) v - softmax(q k_hat^T) v|^2 with exact values, values
#                  by |P (v_hat - v)|^2 with exact keys, summed over the query heads and rows.
#                  Their sum is minimised by choosing K and V apart, so it can never exceed the
#                  plain format's.
# "attention":     each channel's squared key error weighted by the mean q_c^2 of the pass's
#                  queries (the diagonal of the logit error); values by the plain squared error.
# "attention-max": the same with max q_c^2 (vamax).
# "mse":           the plain squared error of keys and values.
BAOS_CRITERIA = ("output", "attention", "attention-max", "mse")


def smoothing_factor(stats: np.ndarray, mode: str) -> np.ndarray:
    """Per-channel smoothing factor s from max|x| statistics (the vsmscale instruction).

    p2aNN: s = 2^floor(NN/100 * floor(log2 m)), an exact power of two so dividing by it is exact;
    sqrt:  s = m * hw_rsqrt(m) (alpha = 0.5 in fp32); ident: s = m.
    Channels with m == 0 (or non-finite m) get s = 1.
    """
    stats = np.asarray(stats, dtype=np.float32)
    usable = np.isfinite(stats) & (stats > 0)
    safe = np.where(usable, stats, np.float32(1.0)).astype(np.float32)
    if mode == "sqrt":
        out = safe * hw_rsqrt(safe)
    elif mode == "ident":
        out = safe
    else:
        quarters = {"p2a25": 1, "p2a50": 2, "p2a75": 3, "p2a100": 4}[mode]
        _, exponent = np.frexp(safe)
        floor_log2 = exponent.astype(np.int64) - 1
        out = np.ldexp(np.float32(1.0), (quarters * floor_log2) // 4).astype(np.float32)
    return np.where(usable, out, np.float32(1.0)).astype(np.float32)
