"""Memory images of the functional simulator: byte-addressed DRAM and the four typed SRAMs.

DRAM holds bytes in the row formats of npu.hw.rows.
"""

from __future__ import annotations

import numpy as np

from npu.hw import numerics
from npu.hw.rows import MemoryAccessError, decode_rows, encode_rows, row_bytes


class Dram:
    """Byte-addressed DRAM image with host-side helpers to place and fetch tensors."""

    def __init__(self, size_bytes: int, mx_block: int):
        self.data = np.zeros(size_bytes, dtype=np.uint8)
        self.mx_block = mx_block

    @property
    def size(self) -> int:
        return self.data.size

    def check(self, low: int, high: int, what: str) -> None:
        if low < 0 or high > self.data.size:
            raise MemoryAccessError(f"{what}: DRAM bytes [{low:#x}, {high:#x}) outside [0, {self.data.size:#x})")

    def write(self, addr: int, data: bytes | np.ndarray, fmt: str | None = None) -> int:
        """Store raw bytes, or an array encoded row-wise in `fmt`; returns the bytes written.

        A 1-D array is one row; a 2-D array is rows stored back to back.
        """
        raw = dram_bytes(data, fmt, self.mx_block)
        self.check(addr, addr + raw.size, "DRAM write")
        self.data[addr:addr + raw.size] = raw
        return int(raw.size)

    def read(self, addr: int, shape: int | tuple[int, int], fmt: str | None = None) -> np.ndarray:
        """Fetch `shape` values stored row-wise in `fmt` (or raw bytes when fmt is None)."""
        if fmt is None:
            count = int(np.prod(shape))
            self.check(addr, addr + count, "DRAM read")
            return self.data[addr:addr + count].copy()
        rows, cols = (1, shape) if isinstance(shape, int) else shape
        nbytes = row_bytes(fmt, cols, self.mx_block)
        self.check(addr, addr + rows * nbytes, "DRAM read")
        values = decode_rows(self.data[addr:addr + rows * nbytes].reshape(rows, nbytes), fmt, cols, self.mx_block)
        return values.reshape(cols) if isinstance(shape, int) else values


class Sram:
    """One on-chip SRAM as a flat array of elements (addresses count elements, not bytes)."""

    def __init__(self, name: str, elements: int, dtype: type, element_bytes: int, fmt: str | None,
                 track_writes: bool):
        self.name = name
        self.data = np.zeros(elements, dtype=dtype)
        self.element_bytes = element_bytes
        self.fmt = fmt  # element format values are rounded to on write (None: int32 words)
        self.written = np.zeros(elements, dtype=bool) if track_writes else None

    @property
    def size(self) -> int:
        return self.data.size

    def round(self, values: np.ndarray) -> np.ndarray:
        """Values as this memory stores them."""
        if self.fmt is None:
            return np.asarray(values).astype(np.int32)
        if self.fmt == "fp32":
            return np.asarray(values, dtype=np.float32)
        return numerics.round_to_format(np.asarray(values, dtype=np.float32), self.fmt)

    def write(self, addr: int, values: np.ndarray) -> None:
        """Host-side preload (rounded to the element format)."""
        values = np.asarray(values).reshape(-1)
        if addr < 0 or addr + values.size > self.size:
            raise MemoryAccessError(f"{self.name} write [{addr}, {addr + values.size}) outside [0, {self.size})")
        self.data[addr:addr + values.size] = self.round(values)
        if self.written is not None:
            self.written[addr:addr + values.size] = True

    def read(self, addr: int, count: int) -> np.ndarray:
        if addr < 0 or addr + count > self.size:
            raise MemoryAccessError(f"{self.name} read [{addr}, {addr + count}) outside [0, {self.size})")
        return self.data[addr:addr + count].copy()


def dram_bytes(data: bytes | np.ndarray, fmt: str | None, mx_block: int) -> np.ndarray:
    """The bytes a DRAM write stores: `data` as raw bytes, or an array (1-D = one row, 2-D = rows
    back to back) encoded row-wise in `fmt`."""
    if fmt is None:
        return np.frombuffer(bytes(data), dtype=np.uint8) if not isinstance(data, np.ndarray) \
            else np.ascontiguousarray(data).view(np.uint8).reshape(-1)
    values = np.asarray(data)
    values = values.reshape(1, -1) if values.ndim == 1 else values
    if values.ndim != 2:
        raise MemoryAccessError(f"DRAM write expects a 1-D or 2-D array, got shape {values.shape}")
    return encode_rows(values, fmt, mx_block).reshape(-1)
