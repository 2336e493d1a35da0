"""What the unit modules build: an instruction handler, and the values handlers share.

A handler is a closure over one decoded instruction (operands already bound) and the machine
state it touches; calling it executes the instruction and returns the pc to continue at.
Each unit module (control, scalar, dma, matrix, vector) has a table mapping every mnemonic it
executes to a `HandlerBuilder`; npu.sim.functional.simulator looks the builder up once per
instruction when a program is loaded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from npu.errors import UserError
from npu.isa.encoding import Instruction

if TYPE_CHECKING:  # annotations only; none of these imports the unit modules
    from npu.hw.config import NPUConfig
    from npu.isa.assembler import Program
    from npu.sim.functional.memory import Dram, Sram


class Machine(Protocol):
    """The machine state a handler reads and writes. npu.sim.functional.simulator's
    FunctionalSimulator provides it; the unit modules need only this, so they do not import the
    simulator that imports them."""

    config: NPUConfig
    vlen: int
    mlen: int
    blen: int
    strict: bool
    int_regs: list[int]
    fp_regs: list[np.float32]
    addr_regs: list[int]
    vector_sram: Sram
    matrix_sram: Sram
    fp_sram: Sram
    int_sram: Sram
    srams: dict[str, Sram]
    dram: Dram
    accumulators: np.ndarray
    program: Program | None
    sync: Any  # the simulator's synchronisation checker (check_sync)
    traffic: Counter[str]

    @property
    def active_loops(self) -> list: ...


Handler = Callable[[], int]
HandlerBuilder = Callable[[Machine, int, Instruction], Handler]  # (machine, pc, instruction)
HALT = -1
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
MASK64 = (1 << 64) - 1


class InstructionFault(UserError):
    """Raised inside an instruction handler; run() turns it into a SimulationError with the pc.

    Public so that another driver of the handlers (the cycle simulator) can raise and catch it
    the same way, then report it with `raise_at`.
    """


def wrap32(value: int) -> int:
    """Two's-complement wrap to 32 bits (the integer register width)."""
    return ((value + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def fault_handler(message: str) -> Handler:
    """A handler that faults when reached (an illegal word, or an instruction this machine rejects)."""
    def fault() -> int:
        raise InstructionFault(message)
    return fault
