"""cocotb test module run inside the simulator by npu.rtl.sim: loads the weights of weights.npy
into anchor_int8_array row by row, streams the activation rows of acts.npy through it with the
input skew (element k of row b in cycle b + k), and saves col_sum after every clock edge to
out.npy ($DNPU_RTL_WORK). Not imported outside cocotb."""

from __future__ import annotations

import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge


UNKNOWN = 1 << 40  # a sample with x bits (before the pipeline has filled)


def _pack(values, bits: int) -> int:
    word = 0
    for i, value in enumerate(values):
        word |= (int(value) & ((1 << bits) - 1)) << (bits * i)
    return word


@cocotb.test()
async def stream_tile(dut) -> None:
    work = Path(os.environ["DNPU_RTL_WORK"])
    weights, acts = np.load(work / "weights.npy"), np.load(work / "acts.npy")
    size, rows = weights.shape[0], acts.shape[0]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    await FallingEdge(dut.clk)
    for k in range(size):  # one weight row per cycle
        dut.w_row_load.value = 1 << k
        dut.w_row.value = _pack(weights[k], 8)
        dut.act_col.value = 0
        await FallingEdge(dut.clk)
    dut.w_row_load.value = 0
    cycles = rows + 2 * size + 2
    out = np.zeros((cycles, size), dtype=np.uint64)
    for t in range(cycles):
        column = [acts[t - k, k] if 0 <= t - k < rows else 0 for k in range(size)]
        dut.act_col.value = _pack(column, 8)
        await FallingEdge(dut.clk)  # the rising edge of cycle t has passed
        value = dut.col_sum.value
        if value.is_resolvable:
            word = int(value)
            out[t] = [(word >> (32 * n)) & 0xFFFFFFFF for n in range(size)]
        else:  # the partial sums still hold their power-up x: marked beyond 32 bits
            out[t] = UNKNOWN
    np.save(work / "out.npy", out)
