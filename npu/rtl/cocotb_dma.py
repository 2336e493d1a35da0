"""cocotb test module run inside the simulator by tests/test_rtl_dma.py and
benchmarks/rtl_sim_speed.py: streams every transaction of the input files through `dma_codec`,
one block per clock cycle, and saves what comes out. Not imported outside cocotb.

Inputs ($DNPU_RTL_WORK): control.npy (n, 5) uint8 - store, fmt code, no_clip, kv, bf16_sram;
sram.npy / scale.npy (n, BLOCK) uint32 - SRAM values and smoothing factors (float32 bits);
dram.npy (n, 4*BLOCK) uint8 - the block's DRAM bytes. Outputs: dram_out.npy (n, 4*BLOCK) uint8,
sram_out.npy (n, BLOCK) uint32, in input order, and cycles.npy (the clock cycles simulated).
"""

from __future__ import annotations

import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

CONTROL_PORTS = ("store", "fmt", "no_clip", "kv", "bf16_sram")


def _as_ints(rows: np.ndarray) -> list[int]:
    """Each row's bytes as one little-endian integer: element i at bits [width*i +: width]."""
    return [int.from_bytes(row.tobytes(), "little") for row in np.ascontiguousarray(rows)]


@cocotb.test()
async def stream_blocks(dut) -> None:
    """Reset, then one transaction per cycle; outputs are collected while out_valid is high."""
    work = Path(os.environ["DNPU_RTL_WORK"])
    control = np.load(work / "control.npy")
    sram, scale, dram = (_as_ints(np.load(work / f"{name}.npy")) for name in ("sram", "scale", "dram"))
    block = np.load(work / "sram.npy").shape[1]
    n = len(control)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.in_valid.value = 0
    for _ in range(2):
        await FallingEdge(dut.clk)
    dut.rst.value = 0
    dram_out = np.zeros((n, 4 * block), dtype=np.uint8)
    sram_out = np.zeros((n, block), dtype=np.uint32)
    received, cycles = 0, 0
    ports = [getattr(dut, name) for name in CONTROL_PORTS]
    while received < n:
        if cycles < n:  # drive transaction `cycles` between rising edges
            for port, value in zip(ports, control[cycles].tolist()):
                port.value = value
            dut.sram_in.value = sram[cycles]
            dut.scale_in.value = scale[cycles]
            dut.dram_in.value = dram[cycles]
            dut.in_valid.value = 1
        else:
            dut.in_valid.value = 0
        await FallingEdge(dut.clk)
        cycles += 1
        if int(dut.out_valid.value):
            dram_out[received] = np.frombuffer(int(dut.dram_out.value).to_bytes(4 * block, "little"), np.uint8)
            sram_out[received] = np.frombuffer(int(dut.sram_out.value).to_bytes(4 * block, "little"), "<u4")
            received += 1
        if cycles > n + 16:
            raise RuntimeError(f"dma_codec: {received} of {n} blocks came out after {cycles} cycles")
    np.save(work / "dram_out.npy", dram_out)
    np.save(work / "sram_out.npy", sram_out)
    np.save(work / "cycles.npy", np.array(cycles))
