"""cocotb test module run inside the simulator by npu.rtl.core_sim.run_programs: for each program
of programs.npy (in $DNPU_RTL_WORK) it resets npu_core_harness, loads the program, runs it until
the core halts or faults (or max_cycles pass), then reads the status, the registers, both scalar
SRAMs and the issue log through the harness's debug ports. Not imported outside cocotb."""

from __future__ import annotations

import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import First, RisingEdge, Timer

from npu.rtl.cocotb_dump import dump_scalar_state

PERIOD_NS = 10
STATUS = ("halted", "error_code", "pc", "cycles", "retired", "log_count", "timed_out")


@cocotb.test()
async def run_programs(dut) -> None:
    """Load, run and dump every program; results go to one .npy per kind of state."""
    work = Path(os.environ["DNPU_RTL_WORK"])
    programs, lengths = np.load(work / "programs.npy"), np.load(work / "lengths.npy")
    settings = np.load(work / "settings.npy")  # per program: max_cycles, unit_latency, backpressure_seed
    int_words, fp_words, log_depth = (int(x) for x in np.load(work / "sizes.npy"))
    count = len(programs)
    status = np.zeros((count, len(STATUS)), dtype=np.uint64)
    int_regs, fp_regs = np.zeros((count, 16), dtype=np.uint64), np.zeros((count, 8), dtype=np.uint64)
    addr_regs = np.zeros((count, 8), dtype=np.uint64)
    int_sram, fp_sram = np.zeros((count, int_words), dtype=np.uint64), np.zeros((count, fp_words), dtype=np.uint64)
    log = np.zeros((count, log_depth), dtype=object)

    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    dut.program_write_enable.value = 0
    dut.program_write_address.value = 0
    dut.program_write_data.value = 0
    dut.debug_index.value = 0
    dut.log_index.value = 0
    for p in range(count):
        max_cycles, latency, seed = (int(x) for x in settings[p])
        dut.reset.value = 1
        dut.unit_latency.value = latency
        dut.backpressure_seed.value = seed
        dut.program_length.value = int(lengths[p])
        dut.program_write_enable.value = 1
        for address, word in enumerate(programs[p, : int(lengths[p])].tolist()):
            dut.program_write_address.value = address
            dut.program_write_data.value = word
            await RisingEdge(dut.clk)
        dut.program_write_enable.value = 0
        await RisingEdge(dut.clk)
        dut.reset.value = 0
        await RisingEdge(dut.clk)
        timed_out = 0
        if not int(dut.stopped.value):
            finished = RisingEdge(dut.stopped)
            result = await First(finished, Timer(max_cycles * PERIOD_NS, unit="ns"))
            timed_out = int(result is not finished)
        for _ in range(4096):  # let the units drain their queues (the log records what they pop)
            if int(dut.units_idle.value):
                break
            await RisingEdge(dut.clk)
        await Timer(1, unit="ns")
        status[p] = [int(dut.halted.value), int(dut.error_code.value), int(dut.pc.value), int(dut.cycles.value),
                     int(dut.retired.value), int(dut.log_count.value), timed_out]
        await dump_scalar_state(dut, p, int_regs, fp_regs, addr_regs, int_sram, fp_sram)
        for j in range(min(int(status[p, 5]), log_depth)):
            dut.log_index.value = j
            await Timer(1, unit="ns")
            log[p, j] = int(dut.log_entry.value)
    for name, array in (("status", status), ("int_regs", int_regs), ("fp_regs", fp_regs),
                        ("addr_regs", addr_regs), ("int_sram", int_sram), ("fp_sram", fp_sram)):
        np.save(work / f"{name}.npy", array)
    np.save(work / "log.npy", log.astype(str))  # entries are wider than 64 bits: decimal strings
