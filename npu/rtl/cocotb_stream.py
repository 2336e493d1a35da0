"""cocotb test module for clocked units driven by a fixed stream of inputs, one set per cycle
(npu.rtl.sim.run_stream): the row_sram tests and benchmarks. Not imported outside cocotb.

Inputs ($DNPU_RTL_WORK): stream_inputs.npy / stream_outputs.npy - port names; in_<port>.npy -
(cycles, bytes) uint8, the value driven in each cycle (little-endian). Cycle k's inputs are set
after the falling edge before rising edge k, and every output is sampled after the following
falling edge (so it shows the state after rising edge k) into out_<port>.npy (cycles, bytes).
"""

from __future__ import annotations

import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge


@cocotb.test()
async def stream(dut) -> None:
    work = Path(os.environ["DNPU_RTL_WORK"])
    inputs = [str(name) for name in np.load(work / "stream_inputs.npy")]
    outputs = [str(name) for name in np.load(work / "stream_outputs.npy")]
    values = {name: [int.from_bytes(row.tobytes(), "little") for row in np.load(work / f"in_{name}.npy")]
              for name in inputs}
    cycles = len(values[inputs[0]])
    widths = {name: len(getattr(dut, name).value) for name in outputs}
    sampled = {name: np.zeros((cycles, (widths[name] + 7) // 8), dtype=np.uint8) for name in outputs}
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    await FallingEdge(dut.clk)
    for k in range(cycles):
        for name in inputs:
            getattr(dut, name).value = values[name][k]
        await FallingEdge(dut.clk)
        for name in outputs:
            value = int(getattr(dut, name).value)
            sampled[name][k] = np.frombuffer(value.to_bytes(sampled[name].shape[1], "little"), np.uint8)
    for name in outputs:
        np.save(work / f"out_{name}.npy", sampled[name])
