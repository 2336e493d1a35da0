"""Run the control core (npu_core) and its generated decoder in cocotb simulations.

`decode_words(words)` applies instruction words to instruction_decoder; `run_programs(config,
programs)` loads each program into npu_core, runs it to `halt` or a fault and returns the final
registers, scalar SRAMs, error code, cycle count and the instructions the core issued to the
DMA / matrix / vector queues (the testbench stands in for those units). One simulator run per
call, however many words or programs (npu/rtl/cocotb_decoder.py, npu/rtl/cocotb_core.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from npu.hw.config import NPUConfig
from npu.rtl import GENERATED_DIR, RTL_DIR, rtl_sources
from npu.rtl import core, sim

DECODER_OUTPUTS = ("legal", "mnemonic", "unit", "dllm",
                   *(f"int_read{i}" for i in range(core.INT_READ_SLOTS)),
                   *(f"fp_read{i}" for i in range(core.FP_READ_SLOTS)),
                   "int_write", "int_write_valid", "fp_write", "fp_write_valid",
                   "addr_read", "addr_read_valid", "addr_write", "addr_write_valid",
                   *(f"imm{i}" for i in range(core.IMMEDIATE_SLOTS)))


def decode_words(words: np.ndarray, simulator: str | None = None) -> dict[str, np.ndarray]:
    """instruction_decoder's outputs (name -> array, one entry per word) for every word."""
    build_dir = sim.build_design("instruction_decoder", [GENERATED_DIR / "instruction_decoder.v"], simulator)
    out = sim.run_cocotb("instruction_decoder", build_dir, "npu.rtl.cocotb_decoder", simulator,
                         files={"words": np.asarray(words, dtype=np.uint64), "names": np.array(DECODER_OUTPUTS)})["out"]
    return {name: out[:, i] for i, name in enumerate(DECODER_OUTPUTS)}


# ------------------------------------------------------------------------------------------------
# The core
# ------------------------------------------------------------------------------------------------
CORE_SOURCES = ("issue_queue", "word_memory", "scalar_sram", "register_file", "loop_stack", "scalar_alu", "address_alu", "int32_to_fp32",
                "fp32_to_int32", "scalar_fpu", "npu_core")
HARNESS = "npu_core_harness"
LOG_DEPTH = 256


def core_sources() -> list[Path]:
    """Every Verilog file npu_core needs: the arithmetic units, the generated decoder and ROMs,
    the core's own modules."""
    own = [RTL_DIR / f"{name}.v" for name in CORE_SOURCES]
    return [path for path in rtl_sources() if path not in own] + own




@dataclass
class CoreRun:
    """The final state of one program on the RTL core (registers as unsigned bit patterns)."""

    halted: bool
    error_code: int
    pc: int
    cycles: int
    retired: int
    timed_out: bool
    int_regs: list[int]
    fp_regs: list[int]
    addr_regs: list[int]
    int_sram: np.ndarray   # uint32 words
    fp_sram: np.ndarray    # uint32 bit patterns
    issued: list[dict[str, int]]  # pc, word, int0..int4, fp0, fp1, addr of each instruction a unit took,
                                  # in the order the units took them (program order per unit)

    @property
    def fault(self) -> str:
        return core.CORE_FAULTS[self.error_code][0]


def _split_log_entry(entry: int, pc_bits: int) -> dict[str, int]:
    fields = {"pc": entry & ((1 << pc_bits) - 1)}
    entry >>= pc_bits
    fields["word"] = entry & 0xFFFFFFFF
    entry >>= 32
    for i in range(core.INT_READ_SLOTS):
        fields[f"int{i}"] = entry & 0xFFFFFFFF
        entry >>= 32
    for i in range(core.FP_READ_SLOTS):
        fields[f"fp{i}"] = entry & 0xFFFFFFFF
        entry >>= 32
    fields["addr"] = entry & ((1 << 64) - 1)
    return fields


def build_core(config: NPUConfig, simulator: str | None = None, program_words: int = 1024,
               defines: dict[str, object] | None = None) -> Path:
    """Build npu_core_harness for `config` (parameters from the preset, core.core_parameters)."""
    parameters = {**core.core_parameters(config, program_words), "LOG_DEPTH": LOG_DEPTH}
    return sim.build_design(HARNESS, core_sources() + [RTL_DIR / f"{HARNESS}.v"], simulator,
                            parameters=parameters, defines=defines)


def run_programs(config: NPUConfig, programs: list[np.ndarray], simulator: str | None = None, *,
                 program_words: int = 1024, max_cycles: int = 100_000, unit_latency: int | list[int] = 0,
                 backpressure_seed: int | list[int] = 0,
                 defines: dict[str, object] | None = None) -> list[CoreRun]:
    """Run each program (uint32 words) on the RTL core from reset; the scalar SRAMs carry over from
    one program to the next (as a FunctionalSimulator's memories do across load()).

    `unit_latency`: cycles the stand-in units stay busy after accepting an instruction; a non-zero
    `backpressure_seed` makes their ready lines pseudo-random. Either may be given per program.
    `defines`: Verilog defines of the build (the tests' mutation checks).
    """
    simulator = simulator or sim.default_simulator()
    count = len(programs)
    if count == 0:
        return []
    longest = max(len(p) for p in programs)
    if longest > program_words:
        raise ValueError(f"a program of {longest} words does not fit the {program_words}-word program memory")
    words = np.zeros((count, max(longest, 1)), dtype=np.uint64)
    for i, program in enumerate(programs):
        words[i, : len(program)] = np.asarray(program, dtype=np.uint64)
    lengths = np.array([len(p) for p in programs], dtype=np.uint64)
    latencies = np.broadcast_to(np.asarray(unit_latency, dtype=np.uint64), (count,))
    seeds = np.broadcast_to(np.asarray(backpressure_seed, dtype=np.uint64), (count,))
    settings = np.stack([np.full(count, max_cycles, dtype=np.uint64), latencies, seeds], axis=1)
    parameters = core.core_parameters(config, program_words)
    sizes = np.array([parameters["INT_SRAM_WORDS"], parameters["FP_SRAM_WORDS"], LOG_DEPTH], dtype=np.uint64)
    build_dir = build_core(config, simulator, program_words, defines)
    out = sim.run_cocotb(HARNESS, build_dir, "npu.rtl.cocotb_core", simulator,
                         files={"programs": words, "lengths": lengths, "settings": settings, "sizes": sizes},
                         outputs=("status", "int_regs", "fp_regs", "addr_regs", "int_sram", "fp_sram", "log"))
    pc_bits = (program_words - 1).bit_length() + 1
    runs = []
    for p in range(count):
        halted, error, pc, cycles, retired, log_count, timed_out = (int(x) for x in out["status"][p])
        issued = [_split_log_entry(int(entry), pc_bits) for entry in out["log"][p][: min(log_count, LOG_DEPTH)]]
        runs.append(CoreRun(bool(halted), error, pc, cycles, retired, bool(timed_out),
                            [int(x) for x in out["int_regs"][p]], [int(x) for x in out["fp_regs"][p]],
                            [int(x) for x in out["addr_regs"][p]], out["int_sram"][p].astype(np.uint32),
                            out["fp_sram"][p].astype(np.uint32), issued))
    return runs
