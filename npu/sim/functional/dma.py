"""DMA-unit handlers: strided row transfers between DRAM and the SRAMs, converting formats.

DRAM rows are in the formats of npu.hw.rows; the KV transfers (dldkv / dstkv) also scale each
column by a vector-SRAM row (dequantise + unsmooth on load, smooth + quantise on store).
"""

from __future__ import annotations


import numpy as np

from npu.hw import numerics
from npu.hw.rows import decode_rows, element_alignment, encode_rows, row_bytes
from npu.isa.encoding import Instruction
from npu.isa.table import DRAM_FORMATS, STORE_SCALE_RULES
from npu.sim.functional.handlers import Handler, HandlerBuilder, InstructionFault, Machine, fault_handler


_SRAM_BY_SUFFIX = {"v": "vector_sram", "m": "matrix_sram", "f": "fp_sram", "i": "int_sram"}


def checked_transfer_span(dram, low: int, high: int, sram, first: int, sstride: int, rows: int,
                          cols: int) -> tuple[np.ndarray, int, int]:
    """A transfer's range checks, shared by the one-image and the lock-step simulators: DRAM bytes
    [low, high) inside the DRAM, and the SRAM rows inside the SRAM. Returns the SRAM element index
    of every (row, column) and the SRAM span [sram_low, sram_high)."""
    if low < 0 or high > dram.size:
        raise InstructionFault(f"DRAM bytes [{low:#x}, {high:#x}) outside [0, {dram.size:#x})")
    index = first + sstride * np.arange(rows, dtype=np.int64)[:, None] + np.arange(cols)[None, :]
    sram_low, sram_high = int(index.min()), int(index.max()) + 1
    if sram_low < 0 or sram_high > sram.size:
        raise InstructionFault(f"{sram.name} elements [{sram_low}, {sram_high}) outside [0, {sram.size})")
    return index, sram_low, sram_high


def build_transfer(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """dld.* / dst.* / dldkv.* / dstkv.* (and the no-clip stores dstnc.* / dstkvnc.v): `rows` rows
    of `cols` elements, the SRAM named by the suffix."""
    name, ops, regs, aregs = ins.mnemonic, ins.operands, sim.int_regs, sim.addr_regs
    following = pc + 1
    fmt = DRAM_FORMATS[ops["fmt"]]
    target = _SRAM_BY_SUFFIX[name[-1]]
    sram = sim.srams[target]
    store = name.startswith("dst")
    kv = "kv" in name
    scale_rule = STORE_SCALE_RULES.get(name, "ocp")  # MX stores: OCP or no-clip shared exponents
    if (fmt == "int32") != (target == "int_sram"):
        message = ("INT SRAM transfers use the int32 format" if target == "int_sram"
                   else f"int32 is for INT SRAM only; {sram.name} holds floating-point values")
        return fault_handler(f"{name} with format {fmt}: {message}")
    dram, vector, mx_block, traffic, sync = sim.dram, sim.vector_sram, sim.config.mx_block, sim.traffic, sim.sync
    strict, align = sim.strict, element_alignment(fmt)
    space = target

    def transfer() -> int:
        base = aregs[ops["dram"]]
        first, rows, cols, dstride = regs[ops["sram"]], regs[ops["rows"]], regs[ops["cols"]], regs[ops["dstride"]]
        sstride = cols if kv else regs[ops["sstride"]]
        if rows < 0 or cols < 0:
            raise InstructionFault(f"negative shape rows={rows}, cols={cols}")
        if rows == 0 or cols == 0:
            return following
        nbytes = row_bytes(fmt, cols, mx_block)
        if base % align or dstride % align:
            raise InstructionFault(f"DRAM address {base:#x} / stride {dstride} not aligned to {align} bytes for {fmt}")
        starts = base + dstride * np.arange(rows, dtype=np.int64)
        low, high = int(starts.min()), int(starts.max()) + nbytes
        index, sram_low, sram_high = checked_transfer_span(dram, low, high, sram, first, sstride, rows, cols)
        scale = None
        if kv:
            scale_at = regs[ops["scale"]]
            if scale_at < 0 or scale_at + cols > vector.size:
                raise InstructionFault(f"scale row vector SRAM [{scale_at}, {scale_at + cols}) "
                                       f"outside [0, {vector.size})")
            sync.access("dma", "vector_sram", scale_at, scale_at + cols, False)
            if strict and not vector.written[scale_at:scale_at + cols].all():
                raise InstructionFault(f"scale row at vector SRAM {scale_at} read before it was written (strict mode)")
            scale = vector.data[scale_at:scale_at + cols]
        sync.access("dma", space, sram_low, sram_high, not store)
        byte_index = starts[:, None] + np.arange(nbytes)[None, :]
        if store:
            if strict and not sram.written[index].all():
                raise InstructionFault(f"{sram.name} elements [{sram_low}, {sram_high}) "
                                       f"read before written (strict mode)")
            values = sram.data[index]
            if scale is not None:
                values = values * numerics.hw_recip(scale)[None, :]
            dram.data[byte_index] = encode_rows(values, fmt, mx_block, scale_rule)
            traffic["dram_write"] += rows * nbytes
            traffic[f"{space}_read"] += rows * cols * sram.element_bytes
        else:
            values = decode_rows(dram.data[byte_index], fmt, cols, mx_block)
            if scale is not None:
                values = values * scale[None, :]
            sram.data[index] = sram.round(values)
            if sram.written is not None:
                sram.written[index] = True
            traffic["dram_read"] += rows * nbytes
            traffic[f"{space}_write"] += rows * cols * sram.element_bytes
        return following
    return transfer


HANDLERS: dict[str, HandlerBuilder] = dict.fromkeys(
    ("dld.v", "dst.v", "dld.m", "dld.f", "dst.f", "dld.i", "dst.i", "dldkv.v", "dldkv.m", "dstkv.v",
     "dstnc.v", "dstnc.f", "dstkvnc.v"),
    build_transfer)
