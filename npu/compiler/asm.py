"""A tiny assembly writer: lines of dnpu assembly plus the bookkeeping the compiler reports.

`Asm` collects instruction text, makes unique labels, loads constants into registers and opens
zero-overhead hardware loops. Every instruction is recorded with its *expected dynamic count*
(the product of the trip counts of the loops around it), so the compiler can report executed
instructions, MACs and DMA bytes per step without running the program; the tests check those
figures against the functional simulator.
"""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field

from npu.errors import UserError
from npu.isa.regions import operator_label
from npu.isa.table import BY_MNEMONIC, MAX_LOOP_DEPTH

LOOPI_MAX = 1023  # `loopi` carries a 10-bit count
ADDI_RANGE = (-(1 << 17), (1 << 17) - 1)  # 18-bit signed immediates of addi / aaddi-sized values


class CompileError(UserError, ValueError):
    """A step that this NPU configuration cannot run; the message names the violated constraint."""


@dataclass
class Asm:
    """Assembly text under construction, with per-class dynamic instruction counts."""

    lines: list[str] = field(default_factory=list)
    executed: Counter = field(default_factory=Counter)  # latency class -> expected executions
    dma_bytes: Counter = field(default_factory=Counter)  # "dram_read"/"dram_write" -> bytes
    macs: float = 0
    count: int = 0  # instructions emitted (program words)
    _labels: int = 0
    _operators: Counter = field(default_factory=Counter)  # operator name -> entries so far
    _trips: list[int] = field(default_factory=list)
    _weights: list[float] = field(default_factory=list)

    # ---- raw emission ------------------------------------------------------------------------
    def __call__(self, text: str, dram_read: int = 0, dram_write: int = 0, macs: int = 0) -> None:
        """Emit one instruction; the keyword figures are per execution."""
        mnemonic = text.split()[0]
        spec = BY_MNEMONIC[mnemonic]
        times = self.multiplicity
        self.executed[spec.latency] += times
        self.dma_bytes["dram_read"] += dram_read * times
        self.dma_bytes["dram_write"] += dram_write * times
        self.macs += macs * times
        self.lines.append("    " * (len(self._trips) + 1) + text)
        self.count += 1

    def comment(self, text: str) -> None:
        self.lines.append("    " * len(self._trips) + "# " + text)

    def label(self, prefix: str = "L") -> str:
        self._labels += 1
        return f"{prefix}{self._labels}"

    def place(self, name: str) -> None:
        self.lines.append(f"{name}:")

    def operator(self, name: str) -> None:
        """The code from here on implements step operator `name` (an `op_<name>` label, see
        npu.isa.regions): the analytical model costs and names operators by these regions."""
        self.place(operator_label(name, self._operators[name]))
        self._operators[name] += 1

    @property
    def multiplicity(self) -> int:
        times = 1
        for trips in self._trips + self._weights:
            times *= trips
        return times

    @contextmanager
    def weighted(self, fraction: float):
        """Code under a branch: count it `fraction` of the surrounding loop's trips."""
        self._weights.append(fraction)
        yield
        self._weights.pop()

    # ---- helpers -----------------------------------------------------------------------------
    def li(self, reg: str, value: int) -> None:
        """reg <- value (any 32-bit pattern) in one or two instructions."""
        value = int(value)
        if not -(1 << 31) <= value < (1 << 32):
            raise CompileError(f"constant {value} does not fit a 32-bit register")
        if ADDI_RANGE[0] <= value <= ADDI_RANGE[1]:
            self(f"addi {reg}, r0, {value}")
            return
        pattern = value & 0xFFFFFFFF
        self(f"lui {reg}, {pattern >> 16}")
        if pattern & 0xFFFF:
            self(f"ori {reg}, {reg}, {pattern & 0xFFFF}")

    def la(self, areg: str, address: int, scratch: tuple[str, str] = ("r14", "r15")) -> None:
        """areg <- a 64-bit DRAM byte address (clobbers the scratch registers)."""
        if address < (1 << 32):
            self.li(scratch[0], address)
            self(f"amov {areg}, {scratch[0]}")
        else:
            self.li(scratch[0], address >> 32)
            self.li(scratch[1], address & 0xFFFFFFFF)
            self(f"aset {areg}, {scratch[0]}, {scratch[1]}")

    @contextmanager
    def loop(self, count: int | str, expected: int | None = None, reg: str = "r15"):
        """A hardware loop around the `with` body.

        count: a trip count (int) or a register holding it; `expected` is the trip count the
        statistics assume for a register count. Counts above `loopi`'s 10 bits go through `reg`.
        """
        if len(self._trips) >= MAX_LOOP_DEPTH:
            raise CompileError(f"hardware loops nested deeper than {MAX_LOOP_DEPTH}")
        end = self.label("end")
        if isinstance(count, str):
            self(f"loop {count}, {end}")
            trips = count if expected is None else expected
            if isinstance(trips, str):
                raise CompileError(f"loop on {count} needs an expected trip count for the statistics")
        elif count <= LOOPI_MAX:
            self(f"loopi {count}, {end}")
            trips = count
        else:
            self.li(reg, count)
            self(f"loop {reg}, {end}")
            trips = count
        self._trips.append(trips)
        start = len(self.lines)
        yield
        if len(self.lines) == start:
            raise CompileError("empty hardware loop body")
        self._trips.pop()
        self.place(end)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"
