"""Run programs on npu_top (the whole core: npu_core, queues, DMA engine, vector and matrix units,
SRAMs) in one cocotb simulation (npu/rtl/cocotb_top.py) and return each program's final state.

The caller supplies the program words, each program's initial DRAM image (bytes; the runtime's
image builder or a test makes it - this layer imports no runtime) and the DRAM timing the
testbench's model follows (bytes per cycle, read and write latency: the cycle simulator's
bandwidth backend, npu.sim.cost.dram.BandwidthDram, gives them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npu.hw.config import NPUConfig
from npu.rtl import core, sim
from npu.rtl.top import TOP, top_parameters, top_sources


# The whole core is one large C++ model: compiled with -O0 it builds in minutes instead of the
# better part of an hour at verilated.mk's -Os (2-core machine); the simulation is dominated by
# cocotb's per-cycle Python anyway (the DRAM model), not by the model's speed.
VERILATOR_ARGS = ("-CFLAGS", "-O0")


@dataclass(frozen=True)
class DramTiming:
    """The testbench DRAM: a pipe of bytes_per_cycle plus a fixed latency (cycles) per access."""

    bytes_per_cycle: float
    read_latency: int
    write_latency: int


@dataclass
class TopRun:
    """The final state of one program on npu_top (registers and SRAM words as bit patterns)."""

    halted: bool
    error_code: int
    core_cycles: int     # the core's cycle counter: reset to `halt` (or the fault)
    retired: int
    cycles: int          # reset to every unit idle (what the program takes)
    timed_out: bool
    dram_requests: int
    dram_bytes: int
    int_regs: list[int]
    fp_regs: list[int]
    addr_regs: list[int]
    int_sram: np.ndarray     # uint32
    fp_sram: np.ndarray      # uint32 (float32 bits)
    vector_sram: np.ndarray  # uint32: bf16 codes or float32 bits, by the vector format
    matrix_sram: np.ndarray  # uint16 bf16 codes
    dram: np.ndarray         # uint8

    @property
    def fault(self) -> str:
        return core.CORE_FAULTS[self.error_code][0]


def build_top(config: NPUConfig, dram_bytes: int, simulator: str | None = None, program_words: int = 1024):
    """Build npu_top for `config` (cached by npu.rtl.sim.build_design); returns (build dir, parameters)."""
    parameters = top_parameters(config, dram_bytes, program_words)
    return sim.build_design(TOP, top_sources(), simulator, parameters=parameters,
                            verilator_args=VERILATOR_ARGS), parameters


def run_programs(config: NPUConfig, programs: list[np.ndarray], dram_images: list[np.ndarray], timing: DramTiming,
                 simulator: str | None = None, *, program_words: int = 1024,
                 max_cycles: int | list[int] = 200_000) -> list[TopRun]:
    """Run each program (uint32 words) from reset with its DRAM image (uint8, all the same size);
    SRAM contents carry over from one program to the next."""
    simulator = simulator or sim.default_simulator()
    if len(programs) != len(dram_images):
        raise ValueError(f"{len(programs)} programs but {len(dram_images)} DRAM images")
    if not programs:
        return []
    dram_bytes = len(dram_images[0])
    if any(len(image) != dram_bytes for image in dram_images):
        raise ValueError("every DRAM image must have the same size (the DRAM_BYTES parameter of the build)")
    longest = max(len(p) for p in programs)
    if longest > program_words:
        raise ValueError(f"a program of {longest} words does not fit the {program_words}-word program memory")
    words = np.zeros((len(programs), max(longest, 1)), dtype=np.uint64)
    for i, program in enumerate(programs):
        words[i, :len(program)] = np.asarray(program, dtype=np.uint64)
    build_dir, parameters = build_top(config, dram_bytes, simulator, program_words)
    names = np.array(list(parameters))
    out = sim.run_cocotb(TOP, build_dir, "npu.rtl.cocotb_top", simulator, files={
        "programs": words, "lengths": np.array([len(p) for p in programs], dtype=np.uint64),
        "dram": np.stack([np.asarray(image, dtype=np.uint8) for image in dram_images]),
        "settings": np.broadcast_to(np.asarray(max_cycles, dtype=np.uint64), (len(programs),)).copy(),
        "dram_timing": np.array([timing.bytes_per_cycle, timing.read_latency, timing.write_latency]),
        "size_names": names, "sizes": np.array([parameters[str(n)] for n in names], dtype=np.int64)},
        outputs=("status", "int_regs", "fp_regs", "addr_regs", "int_sram", "fp_sram", "vector_sram",
                 "matrix_sram", "dram_out"))
    runs = []
    for p in range(len(programs)):
        halted, error, core_cycles, retired, cycles, timed_out, requests, nbytes = (int(x) for x in out["status"][p])
        runs.append(TopRun(bool(halted), error, core_cycles, retired, cycles, bool(timed_out), requests, nbytes,
                           [int(x) for x in out["int_regs"][p]], [int(x) for x in out["fp_regs"][p]],
                           [int(x) for x in out["addr_regs"][p]], out["int_sram"][p], out["fp_sram"][p],
                           out["vector_sram"][p], out["matrix_sram"][p], out["dram_out"][p]))
    return runs
