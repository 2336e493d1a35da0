"""DRAM row formats: how one row of `cols` values is laid out in each DMA format.

- fp32 / bf16 / int32: little-endian elements, 4 / 2 / 4 bytes each;
- MX formats (npu.hw.numerics.MX_FORMATS): blocks of `mx_block` elements, each stored as one
  E8M0 scale byte followed by the element codes packed densely (first code in the low bits).

This is a hardware definition (what the DMA engine reads and writes), so the compiler, the
simulators and the RTL tests all take it from here. The value conversions themselves (rounding,
MX scaling) are npu.hw.numerics; this module packs and unpacks bytes, and says what values a DMA
load delivers into an SRAM (`delivered`, `dequantized_weights`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from npu.errors import UserError
from npu.hw import numerics

if TYPE_CHECKING:
    from npu.hw.config import NPUConfig

INT_FORMATS = ("int32",)
PLAIN_BYTES = {"fp32": 4, "bf16": 2, "int32": 4}


class MemoryAccessError(UserError, ValueError):
    """An access outside a memory, misaligned, or in a format the memory cannot hold."""


def row_bytes(fmt: str, cols: int, mx_block: int) -> int:
    """DRAM bytes one row of `cols` values occupies in `fmt`."""
    if fmt in PLAIN_BYTES:
        return cols * PLAIN_BYTES[fmt]
    bits = numerics.get_format(fmt).bits
    if cols % mx_block:
        raise MemoryAccessError(f"{fmt} rows must hold a multiple of mx_block={mx_block} values, not {cols}")
    return cols // mx_block * (1 + mx_block * bits // 8)


def element_alignment(fmt: str) -> int:
    """Byte alignment of a row start in DRAM (MX rows are byte aligned)."""
    return PLAIN_BYTES.get(fmt, 1)


def encode_rows(values: np.ndarray, fmt: str, mx_block: int, scale_rule: str = "ocp") -> np.ndarray:
    """(rows, cols) values -> (rows, row_bytes) uint8 in the DRAM layout of `fmt`; MX blocks pick
    their shared exponent by `scale_rule` (numerics.MX_SCALE_RULES; the layout is the same)."""
    rows, cols = values.shape
    if fmt == "int32":
        return np.ascontiguousarray(values.astype("<i4")).view(np.uint8).reshape(rows, cols * 4)
    values = np.asarray(values, dtype=np.float32)
    if fmt == "fp32":
        return np.ascontiguousarray(values.astype("<f4")).view(np.uint8).reshape(rows, cols * 4)
    if fmt == "bf16":
        codes = numerics.encode(values, "bf16").astype("<u2")
        return np.ascontiguousarray(codes).view(np.uint8).reshape(rows, cols * 2)
    row_bytes(fmt, cols, mx_block)  # checks the block multiple
    quantized = numerics.mx_quantize(values, fmt, mx_block, axis=-1, scale_rule=scale_rule)
    bits = numerics.get_format(fmt).bits
    blocks = cols // mx_block
    packed = numerics.pack_codes(quantized.elements.reshape(rows, blocks, mx_block), bits)
    scales = quantized.scales.reshape(rows, blocks, 1).astype(np.uint8)
    return np.concatenate([scales, packed], axis=-1).reshape(rows, -1)


def decode_rows(raw: np.ndarray, fmt: str, cols: int, mx_block: int) -> np.ndarray:
    """(rows, row_bytes) uint8 -> (rows, cols) float32 (int32 for the int32 format)."""
    rows = raw.shape[0]
    raw = np.ascontiguousarray(raw, dtype=np.uint8)
    if fmt == "int32":
        return raw.view("<i4").reshape(rows, cols).astype(np.int32)
    if fmt == "fp32":
        return raw.view("<f4").reshape(rows, cols).astype(np.float32)
    if fmt == "bf16":
        return numerics.decode(raw.view("<u2").reshape(rows, cols), "bf16")
    bits = numerics.get_format(fmt).bits
    blocks = cols // mx_block
    grouped = raw.reshape(rows, blocks, 1 + mx_block * bits // 8)
    elements = numerics.unpack_codes(grouped[:, :, 1:], bits).reshape(rows, cols)
    tensor = numerics.MXTensor(elements, grouped[:, :, 0].copy(), fmt, mx_block, -1)
    return numerics.mx_dequantize(tensor)


def delivered(array: np.ndarray, fmt: str, npu: NPUConfig, sram_format: str) -> np.ndarray:
    """The values a DMA load delivers into an SRAM of `sram_format`: DRAM encode, decode, round."""
    rows = np.atleast_2d(np.asarray(array, dtype=np.float32))
    values = decode_rows(encode_rows(rows, fmt, npu.mx_block), fmt, rows.shape[1], npu.mx_block)
    return numerics.round_to_format(values, sram_format).reshape(np.shape(array))


def dequantized_weights(w: np.ndarray, npu: NPUConfig) -> np.ndarray:
    """Weights as matrix SRAM holds them: rows stored in `formats.weights` (MX blocks along a
    row), loaded into bf16. The compiler, its reference and the accuracy simulator all use this."""
    return delivered(w, npu.formats.weights, npu, "bf16")
