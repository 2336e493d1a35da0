"""cocotb test module run inside the simulator by npu.rtl.top_sim.run_programs: for each program of
programs.npy (in $DNPU_RTL_WORK) it resets npu_top, loads the program, loads that program's DRAM
image into the DRAM model, runs until the machine stops (halt or a fault) and every unit is idle
(or max_cycles pass), then dumps the status, the registers, all four SRAMs and the DRAM.
SRAM contents carry over from one program to the next (an SRAM has no reset). Not imported
outside cocotb.

The DRAM model serves the DMA's request / response port like npu.sim.cost.dram.BandwidthDram (the
cycle simulator's bandwidth backend): one pipe of `bytes_per_cycle` (its refresh-limited peak) -
a request of n bytes issued in cycle t finishes its transfer at free = max(t, free) + n / rate -
and a fixed access latency: its response is in cycle ceil(free) + latency (read or write latency),
responses in order, one per cycle. Requests are always accepted (ready = 1).
"""

from __future__ import annotations

import math
import os
from collections import deque
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, Timer

from npu.rtl.cocotb_dump import dump_scalar_state

STATUS = ("halted", "error_code", "core_cycles", "retired", "cycles", "timed_out", "dram_requests", "dram_bytes")


class BandwidthDram:
    """The testbench's DRAM: bytes, the bandwidth pipe, responses in order."""

    def __init__(self, image: np.ndarray, bytes_per_cycle: float, read_latency: int, write_latency: int):
        self.data = image.copy()
        self.rate, self.read_latency, self.write_latency = bytes_per_cycle, read_latency, write_latency
        self.free = 0.0
        self.responses: deque[tuple[int, int]] = deque()   # (cycle due, read data as an int)
        self.requests = 0
        self.bytes = 0

    def request(self, cycle: int, write: bool, address: int, count: int, data: int) -> None:
        self.free = (cycle if cycle > self.free else self.free) + count / self.rate
        due = math.ceil(self.free - 1e-9) + (self.write_latency if write else self.read_latency)
        self.requests += 1
        self.bytes += count
        if write:
            low = data & ((1 << (8 * count)) - 1)
            self.data[address:address + count] = np.frombuffer(low.to_bytes(count, "little"), np.uint8)
            self.responses.append((due, 0))
        else:
            self.responses.append((due, int.from_bytes(self.data[address:address + count].tobytes(), "little")))


@cocotb.test()
async def run_programs(dut) -> None:
    work = Path(os.environ["DNPU_RTL_WORK"])
    programs, lengths = np.load(work / "programs.npy"), np.load(work / "lengths.npy")
    images = np.load(work / "dram.npy", mmap_mode="r")
    settings = np.load(work / "settings.npy")          # max_cycles per program
    timing = np.load(work / "dram_timing.npy")         # bytes_per_cycle, read_latency, write_latency
    sizes = {str(k): int(v) for k, v in zip(np.load(work / "size_names.npy"), np.load(work / "sizes.npy"))}
    count = len(programs)
    vlen, vector_words, matrix_lanes, matrix_words = (sizes[k] for k in ("VLEN", "VECTOR_WORDS", "MATRIX_LANES",
                                                                         "MATRIX_WORDS"))
    int_words, fp_words, vector_bits = sizes["INT_SRAM_WORDS"], sizes["FP_SRAM_WORDS"], sizes["VECTOR_BITS"]
    status = np.zeros((count, len(STATUS)), dtype=np.uint64)
    int_regs, fp_regs = np.zeros((count, 16), dtype=np.uint64), np.zeros((count, 8), dtype=np.uint64)
    addr_regs = np.zeros((count, 8), dtype=np.uint64)
    int_sram, fp_sram = np.zeros((count, int_words), dtype=np.uint32), np.zeros((count, fp_words), dtype=np.uint32)
    vector_sram = np.zeros((count, vector_words), dtype=np.uint32)
    matrix_sram = np.zeros((count, matrix_words), dtype=np.uint16)
    dram_out = np.zeros_like(images)

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    for name in ("program_write_enable", "program_write_address", "program_write_data", "debug_index",
                 "debug_sram_enable", "debug_sram_matrix", "debug_sram_address", "dram_response_valid",
                 "dram_response_data"):
        getattr(dut, name).value = 0
    dut.dram_request_ready.value = 1
    await FallingEdge(dut.clk)
    for p in range(count):
        dram = BandwidthDram(np.asarray(images[p]), float(timing[0]), int(timing[1]), int(timing[2]))
        dut.reset.value = 1
        dut.program_length.value = int(lengths[p])
        dut.program_write_enable.value = 1
        for address, word in enumerate(programs[p, : int(lengths[p])].tolist()):
            dut.program_write_address.value = address
            dut.program_write_data.value = word
            await FallingEdge(dut.clk)
        dut.program_write_enable.value = 0
        await FallingEdge(dut.clk)
        dut.reset.value = 0
        max_cycles = int(settings[p])
        cycle, timed_out = 0, 1
        while cycle < max_cycles:
            # cycle `cycle` runs from this falling edge to the next: sample the DUT, drive responses
            if int(dut.dram_request_valid.value):
                write = bool(int(dut.dram_request_write.value))
                dram.request(cycle, write, int(dut.dram_request_address.value), int(dut.dram_request_bytes.value),
                             int(dut.dram_request_data.value) if write else 0)
            if dram.responses and dram.responses[0][0] <= cycle:
                dut.dram_response_valid.value = 1
                dut.dram_response_data.value = dram.responses.popleft()[1]
            else:
                dut.dram_response_valid.value = 0
            await FallingEdge(dut.clk)
            cycle += 1
            if int(dut.stopped.value) and int(dut.idle.value) and not dram.responses \
                    and not int(dut.dram_request_valid.value):
                timed_out = 0
                break
        dut.dram_response_valid.value = 0
        status[p] = [int(dut.halted.value), int(dut.error_code.value), int(dut.core_cycles.value),
                     int(dut.retired.value), cycle, timed_out, dram.requests, dram.bytes]
        await dump_scalar_state(dut, p, int_regs, fp_regs, addr_regs, int_sram, fp_sram)
        await FallingEdge(dut.clk)
        element_mask = (1 << vector_bits) - 1
        for matrix, words, lanes in ((0, vector_words, vlen), (1, matrix_words, matrix_lanes)):
            dut.debug_sram_enable.value = 1
            dut.debug_sram_matrix.value = matrix
            for row in range(words // lanes):
                dut.debug_sram_address.value = row * lanes
                await FallingEdge(dut.clk)
                if matrix:
                    value = int(dut.debug_matrix_row.value)
                    matrix_sram[p, row * lanes:(row + 1) * lanes] = [(value >> (16 * j)) & 0xFFFF for j in range(lanes)]
                else:
                    value = int(dut.debug_vector_row.value)
                    vector_sram[p, row * lanes:(row + 1) * lanes] = [
                        (value >> (vector_bits * j)) & element_mask for j in range(lanes)]
            dut.debug_sram_enable.value = 0
        dram_out[p] = dram.data
    for name, array in (("status", status), ("int_regs", int_regs), ("fp_regs", fp_regs), ("addr_regs", addr_regs),
                        ("int_sram", int_sram), ("fp_sram", fp_sram), ("vector_sram", vector_sram),
                        ("matrix_sram", matrix_sram), ("dram_out", dram_out)):
        np.save(work / f"{name}.npy", array)
