"""`npu run`: one program file on the functional simulator, with register and memory dumps.

Everything a user can get wrong - the file, the NPU preset, a dump range, a program that faults
or does not halt within the instruction limit - raises a `UserError` subclass whose one-line
message names the culprit (file, preset key, pc and instruction).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from npu.errors import UserError
from npu.hw.config import load_npu_config
from npu.isa.files import load_program
from npu.sim.functional import FunctionalSimulator, SimulationError

# --dump-sram SPACE: the simulator's memory it reads (addresses count elements; DRAM counts bytes)
SPACES = {"vector": "vector_sram", "matrix": "matrix_sram", "fp": "fp_sram", "int": "int_sram", "dram": "dram"}
DEFAULT_MAX_INSTRUCTIONS = 10_000_000
DEFAULT_DRAM_BYTES = 1 << 20


class DumpRangeError(UserError, ValueError):
    """A --dump-sram range that is malformed or outside the memory it names."""


@dataclass(frozen=True)
class Dump:
    space: str  # a key of SPACES
    start: int
    count: int

    @property
    def text(self) -> str:
        return f"{self.space}:{self.start}:{self.count}"


def parse_dump(text: str) -> Dump:
    """'vector:START:COUNT' -> Dump; a ValueError (argparse shows it) names what is wrong."""
    parts = text.split(":")
    if len(parts) != 3:
        raise DumpRangeError(f"{text!r}: expected SPACE:START:COUNT, e.g. vector:0:64 "
                             f"(spaces: {', '.join(SPACES)})")
    space, start, count = parts
    if space not in SPACES:
        raise DumpRangeError(f"{text!r}: unknown memory {space!r} (spaces: {', '.join(SPACES)})")
    try:
        start_value, count_value = int(start, 0), int(count, 0)
    except ValueError:
        raise DumpRangeError(f"{text!r}: START and COUNT must be integers") from None
    if start_value < 0 or count_value < 1:
        raise DumpRangeError(f"{text!r}: START must be >= 0 and COUNT >= 1")
    return Dump(space, start_value, count_value)


def _memory_size(sim: FunctionalSimulator, space: str) -> int:
    return sim.dram.size if space == "dram" else sim.srams[SPACES[space]].size


def _dump_values(sim: FunctionalSimulator, dump: Dump) -> np.ndarray:
    if dump.space == "dram":
        return sim.dram.read(dump.start, dump.count)
    return sim.srams[SPACES[dump.space]].read(dump.start, dump.count)


def _format_values(values: np.ndarray, per_line: int = 8) -> list[str]:
    if values.dtype == np.uint8:
        cells = [f"{int(v):02x}" for v in values]
        per_line = 16
    elif np.issubdtype(values.dtype, np.integer):
        cells = [str(int(v)) for v in values]
    else:
        cells = [repr(float(v)) for v in values]
    return ["  " + " ".join(cells[i:i + per_line]) for i in range(0, len(cells), per_line)]


def run_program(path: str | Path, npu: str, max_instructions: int = DEFAULT_MAX_INSTRUCTIONS,
                dump_registers: bool = False, dumps: tuple[Dump, ...] = (),
                dram_bytes: int = DEFAULT_DRAM_BYTES) -> str:
    """Run a `.s` or `.bin` program until `halt`; the report as text.

    Dump ranges are checked against the machine before the program runs; a fault, an access out
    of bounds or no `halt` within `max_instructions` raises SimulationError naming the pc, the
    instruction and (for sources) the line.
    """
    if max_instructions < 1:
        raise ValueError(f"max_instructions={max_instructions} must be positive")
    config = load_npu_config(npu)
    program = load_program(path)
    sim = FunctionalSimulator(config, dram_size=dram_bytes)
    for dump in dumps:
        size = _memory_size(sim, dump.space)
        if dump.start + dump.count > size:
            raise DumpRangeError(f"--dump-sram {dump.text}: [{dump.start}, {dump.start + dump.count}) is outside "
                                 f"{dump.space} memory of {size} {'bytes' if dump.space == 'dram' else 'elements'} "
                                 f"on {config.name}")
    sim.load(program)
    try:
        stats = sim.run(max_instructions=max_instructions)
    except SimulationError as err:  # name the file too: `npu run` may be one of many calls in a script
        raise SimulationError(err.message, err.pc, err.instruction, err.source_line, source=str(path)) from None
    lines = [f"{path}: halted after {stats.instructions} instructions on {config.name} "
             f"({len(program)} words, {stats.macs} MACs)"]
    if dump_registers:
        lines.append("registers:")
        lines.append("  " + " ".join(f"r{i}={sim.int_regs[i]}" for i in range(16)))
        lines.append("  " + " ".join(f"f{i}={float(sim.fp_regs[i])!r}" for i in range(len(sim.fp_regs))))
        lines.append("  " + " ".join(f"a{i}={sim.addr_regs[i]:#x}" for i in range(len(sim.addr_regs))))
    for dump in dumps:
        lines.append(f"{dump.text}:")
        lines.extend(_format_values(_dump_values(sim, dump)))
    return "\n".join(lines) + "\n"
