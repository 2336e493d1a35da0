"""What every kernel runner shares: loading a kernel's assembly, placing buffers, running it.

A kernel is an assembly file in npu/kernels/asm/ whose header documents its layout contract:
the assembler constants it expects (sizes, SRAM addresses, DRAM addresses split into 16-bit
halves NAME_HI / NAME_LO) and what it leaves where. `{ACT_FMT}` / `{WEIGHT_FMT}` in the text
stand for the DRAM formats of the machine (`dld` format operands are names, not numbers).
A runner allocates buffers with `Allocator`, writes inputs into the simulator's DRAM, assembles
the kernel with its constants, runs it with `run_program` and reads the results back.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from npu.hw.config import NPUConfig
from npu.isa.assembler import Program, assemble
from npu.sim.functional import FunctionalSimulator
from npu.hw.rows import PLAIN_BYTES
from npu.sim.functional.simulator import SimStats

KERNEL_DIR = Path(__file__).resolve().parent / "asm"
DRAM_ALIGN = 64  # bytes; every DRAM buffer starts on a 64-byte boundary


def kernel_source(name: str, config: NPUConfig) -> str:
    """Text of asm/<name>.s with the machine's DRAM formats filled in."""
    text = (KERNEL_DIR / f"{name}.s").read_text()
    text = text.replace("{ACT_FMT}", config.formats.activations)
    text = text.replace("{WEIGHT_FMT}", config.formats.weights)
    leftover = re.search(r"\{\w+\}", text)
    if leftover:
        raise ValueError(f"kernel {name}.s uses an unknown placeholder {leftover.group(0)}")
    return text


def activation_bytes(config: NPUConfig) -> int:
    """Bytes of one activation / logit in DRAM."""
    return PLAIN_BYTES[config.formats.activations]


def fp32_word(value: float) -> int:
    """The bit pattern of `value` as fp32 (for constants a kernel moves into an FP register)."""
    return int(np.array([value], dtype=np.float32).view(np.uint32)[0])


def split_word(name: str, value: int) -> dict[str, int]:
    """NAME_HI / NAME_LO constants of a 32-bit value, loaded as `lui r, NAME_HI; ori r, r, NAME_LO`."""
    word = value & 0xFFFFFFFF
    if value != word and value != word - (1 << 32):
        raise ValueError(f"{name} = {value} does not fit in 32 bits")
    return {f"{name}_HI": word >> 16, f"{name}_LO": word & 0xFFFF}


class Allocator:
    """Bump allocator for one memory: `take(n)` returns the next `align`-aligned address."""

    def __init__(self, name: str, capacity: int, align: int, start: int = 0):
        self.name, self.capacity, self.align, self.next = name, capacity, align, start

    def take(self, count: int) -> int:
        address = -(-self.next // self.align) * self.align
        if address + count > self.capacity:
            raise ValueError(f"{self.name}: {count} more units at {address} exceed its capacity {self.capacity}")
        self.next = address + count
        return address

    @property
    def used(self) -> int:
        return self.next


@dataclass
class KernelRun:
    """One execution of a kernel on the functional simulator."""

    name: str
    stats: SimStats
    wall_seconds: float
    program_words: int

    @property
    def instructions(self) -> int:
        return self.stats.instructions

    @property
    def dram_bytes(self) -> int:
        """Bytes the DMA moved between DRAM and the SRAMs, both directions."""
        return self.stats.bytes_moved.get("dram_read", 0) + self.stats.bytes_moved.get("dram_write", 0)


def new_simulator(config: NPUConfig, dram: Allocator, strict: bool) -> FunctionalSimulator:
    """A simulator with just enough DRAM for the buffers placed in `dram`."""
    size = max(-(-dram.used // 4096) * 4096, 4096)
    return FunctionalSimulator(config, dram_size=size, strict=strict)


def assemble_kernel(name: str, source: str, constants: dict[str, int]) -> Program:
    return assemble(source, source=f"{name}.s", constants=constants)


def run_program(sim: FunctionalSimulator, name: str, program: Program,
                max_instructions: int = 50_000_000) -> KernelRun:
    """Load and run `program` until `halt`; SimulationError propagates."""
    sim.load(program)
    start = time.perf_counter()
    stats = sim.run(max_instructions=max_instructions)
    return KernelRun(name, stats, time.perf_counter() - start, len(program))
