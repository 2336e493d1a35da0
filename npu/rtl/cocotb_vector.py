"""cocotb test module run inside the simulator by tests/test_rtl_vector.py (through
npu.rtl.sim.run_cocotb): streams every instruction of the batch in $DNPU_RTL_WORK through
vector_unit, one per cycle while in_ready allows, and saves every result the unit reports.
Not imported outside cocotb.

Inputs (.npy in $DNPU_RTL_WORK): control [n, 4] (opcode, funct, mode, glog2), rows [n, 3, VLEN]
(row_a, row_b, row_c element bit patterns), words [n, 2, VLEN] (words_a, words_b), scalars [n, 4]
(scalar_f bits, scalar_i as uint32, addr_a, addr_b), shape [VLEN, VECTOR_BITS].
Outputs: out_rows [n, VLEN], out_words [n, VLEN], out_scalars [n, 2] (out_f, out_i), out_flags
[n, 5] (out_row_we, out_words_we, out_f_we, out_i_we, out_fault), cycles (clock cycles from the
first instruction to the last result), in the order the results came out (= instruction order).
"""

from __future__ import annotations

import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge


def _pack(elements: np.ndarray, bits: int) -> int:
    """Lane i of a row in bits [bits*i +: bits] of one integer."""
    dtype = "<u2" if bits == 16 else "<u4"
    return int.from_bytes(elements.astype(dtype).tobytes(), "little")


def _unpack(value: int, lanes: int, bits: int) -> np.ndarray:
    dtype = "<u2" if bits == 16 else "<u4"
    return np.frombuffer(value.to_bytes(lanes * bits // 8, "little"), dtype=dtype).astype(np.uint64)


@cocotb.test()
async def stream_instructions(dut) -> None:
    work = Path(os.environ["DNPU_RTL_WORK"])
    control = np.load(work / "control.npy")
    rows, words = np.load(work / "rows.npy"), np.load(work / "words.npy")
    scalars = np.load(work / "scalars.npy")
    vlen, bits = (int(v) for v in np.load(work / "shape.npy"))
    n = len(control)
    out_rows = np.zeros((n, vlen), np.uint64)
    out_words = np.zeros((n, vlen), np.uint64)
    out_scalars = np.zeros((n, 2), np.uint64)
    out_flags = np.zeros((n, 5), np.uint64)

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.in_valid.value = 0
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0

    row_ports = (dut.row_a, dut.row_b, dut.row_c)
    word_ports = (dut.words_a, dut.words_b)
    scalar_ports = (dut.scalar_f, dut.scalar_i, dut.addr_a, dut.addr_b)
    sent = received = cycles = 0
    driven = -1
    while received < n:
        if sent < n and driven != sent:  # drive instruction `sent` until the unit takes it
            opcode, funct, mode, glog2 = (int(v) for v in control[sent])
            dut.opcode.value, dut.funct.value, dut.mode.value, dut.glog2.value = opcode, funct, mode, glog2
            for port, row in zip(row_ports, rows[sent]):
                port.value = _pack(row, bits)
            for port, row in zip(word_ports, words[sent]):
                port.value = _pack(row, 32)
            for port, value in zip(scalar_ports, scalars[sent]):
                port.value = int(value)
            driven = sent
        dut.in_valid.value = int(sent < n)
        await ReadOnly()
        if sent < n and int(dut.in_ready.value):
            sent += 1
        if int(dut.out_valid.value):
            flags = [int(dut.out_row_we.value), int(dut.out_words_we.value), int(dut.out_f_we.value),
                     int(dut.out_i_we.value), int(dut.out_fault.value)]
            out_flags[received] = flags
            if flags[0]:
                out_rows[received] = _unpack(int(dut.out_row.value), vlen, bits)
            if flags[1]:
                out_words[received] = _unpack(int(dut.out_words.value), vlen, 32)
            if flags[2]:
                out_scalars[received, 0] = int(dut.out_f.value)
            if flags[3]:
                out_scalars[received, 1] = int(dut.out_i.value)
            received += 1
        await RisingEdge(dut.clk)
        cycles += 1
        if cycles > 100 * (n + 10) + 10_000:
            raise RuntimeError(f"vector_unit: {received} of {n} results after {cycles} cycles")
    for name, array in (("out_rows", out_rows), ("out_words", out_words), ("out_scalars", out_scalars),
                        ("out_flags", out_flags), ("cycles", np.array(cycles))):
        np.save(work / f"{name}.npy", array)
