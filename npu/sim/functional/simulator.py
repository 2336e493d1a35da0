"""Functional simulator of the dnpu: executes machine code on numpy memory images.

How it runs: `load()` decodes every word ONCE into a Python closure (operands already bound),
so `run()` is a tight loop `pc = handlers[pc]()`. All arithmetic that decides result bits goes
through npu.hw.numerics (rounding, exp / reciprocal / rsqrt / SiLU, tree sums, the systolic
accumulation order), so results match the accuracy simulator and the RTL bit for bit.

Execution is in program order, but the simulator checks the synchronisation discipline a
decoupled machine needs (see docs/isa.md, "Synchronisation"): the DMA, matrix and vector units
run their own queues, so memory one of them touches must not be touched by another until a
`wait <unit>` has drained it, and registers the vector unit writes (vsum / vmaxr / vargmax)
may only be read after `wait vector`. Violations, out-of-bounds or misaligned accesses,
illegal words, dLLM instructions on a machine without them and loop misuse all raise
`SimulationError` naming the program counter and the disassembled instruction.

This module holds the machine state, the fetch / dispatch loop, the errors and the statistics;
what each instruction does is in the unit modules (control, scalar, dma, matrix, vector), each
a table mapping the mnemonics of the ISA table (npu.isa.table) to handler builders.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import NoReturn

import numpy as np

from npu.errors import UserError
from npu.hw.config import NPUConfig
from npu.hw.rows import MemoryAccessError
from npu.isa.assembler import Program, format_instruction
from npu.isa.encoding import EncodingError, Instruction, decode
from npu.isa.table import SYNC_UNITS, InstructionSpec, Kind, Unit
from npu.sim.functional import control, dma, matrix, scalar, vector
from npu.sim.functional.control import Loop
from npu.sim.functional.handlers import HALT, Handler, HandlerBuilder, InstructionFault, fault_handler
from npu.sim.functional.memory import Dram, Sram

__all__ = ["DECODED_PROGRAMS", "HALT", "HANDLERS_BY_UNIT", "FunctionalSimulator", "Handler", "InstructionFault",
           "SimStats", "SimulationError", "UnknownInstructionError", "handler_builder"]


class SimulationError(UserError, RuntimeError):
    """The program did something the machine does not allow; names pc and instruction."""

    def __init__(self, message: str, pc: int, instruction: str, source_line: int | None = None,
                 source: str | None = None):
        self.message, self.pc, self.instruction, self.source_line = message, pc, instruction, source_line
        self.source = source
        where = f" (source line {source_line})" if source_line else ""
        prefix = f"{source}: " if source else ""
        super().__init__(f"{prefix}pc {pc}{where}: `{instruction}`: {message}")


class UnknownInstructionError(LookupError):
    """An instruction of the ISA table that no unit's handler table executes (a simulator bug)."""


# Which unit module executes each mnemonic; every instruction of npu.isa.table has exactly one.
HANDLERS_BY_UNIT: dict[Unit, dict[str, HandlerBuilder]] = {
    Unit.CONTROL: control.HANDLERS, Unit.SCALAR: scalar.HANDLERS, Unit.DMA: dma.HANDLERS,
    Unit.MATRIX: matrix.HANDLERS, Unit.VECTOR: vector.HANDLERS,
}


def handler_builder(spec: InstructionSpec) -> HandlerBuilder:
    """The builder of `spec`'s handler, from the table of the unit the ISA table assigns it to."""
    builder = HANDLERS_BY_UNIT[spec.unit].get(spec.mnemonic)
    if builder is None:
        raise UnknownInstructionError(f"the {spec.unit.value} unit has no handler for `{spec.mnemonic}`")
    return builder


# load() keeps the decoded handlers of this many recent programs (a generation alternates
# between its refresh and in-block step programs); handlers hold only references to state
# that reset() clears in place, so a reused handler behaves exactly like a fresh one.
DECODED_PROGRAMS = 8


@dataclass
class SimStats:
    """What one run did."""

    instructions: int
    halted: bool
    by_mnemonic: dict[str, int]
    by_unit: dict[str, int]
    by_latency_class: dict[str, int]
    bytes_moved: dict[str, int]   # e.g. "dram_read", "vector_sram_write"
    macs: int
    trace: list[str] = field(default_factory=list)


class _SyncTracker:
    """Pending accesses of the decoupled units, cleared by `wait`."""

    def __init__(self) -> None:
        self.pending: dict[str, list[list]] = {unit: [] for unit in SYNC_UNITS}
        self.registers: set[str] = set()  # registers the vector unit has written, not yet waited on

    def access(self, unit: str, space: str, low: int, high: int, write: bool) -> None:
        for other, entries in self.pending.items():
            if other == unit or not entries:
                continue
            # ISA rule 4: a DMA into matrix SRAM is ordered after earlier tile ops' weight reads
            refill = unit == "dma" and other == "matrix" and space == "matrix_sram"
            for other_space, other_low, other_high, other_write in entries:
                if other_space == space and other_low < high and low < other_high and (write or other_write) \
                        and not (refill and not other_write):
                    verb = "writes" if write else "reads"
                    other_verb = "writes" if other_write else "reads"
                    raise InstructionFault(f"the {unit} unit {verb} {space}[{low}, {high}) while the {other} unit "
                                           f"{other_verb} [{other_low}, {other_high}); insert `wait {other}` first")
        entries = self.pending.get(unit)
        if entries is None:
            return
        if entries:
            last = entries[-1]
            if last[0] == space and last[3] == write and low <= last[2] and high >= last[1]:
                last[1], last[2] = min(last[1], low), max(last[2], high)
                return
        entries.append([space, low, high, write])

    def wait(self, mask: int) -> None:
        for bit, unit in enumerate(SYNC_UNITS):
            if mask >> bit & 1:
                self.pending[unit].clear()
                if unit == "vector":
                    self.registers.clear()


class FunctionalSimulator:
    """The dnpu as numpy arrays: DRAM bytes, four SRAMs, register files, matrix accumulators.

    sim = FunctionalSimulator(load_npu_config("dnpu-edge"), dram_size=1 << 20)
    sim.dram.write(0, logits, "bf16"); sim.load(assemble(text)); stats = sim.run()

    The unit modules' handlers read and write its state directly: the register files
    (int_regs, fp_regs, addr_regs), the SRAMs, dram, accumulators, active_loops, `sync` (the
    pending accesses of the decoupled units) and `traffic` (DMA bytes, counted live).
    """

    def __init__(self, config: NPUConfig, dram_size: int = 1 << 24, strict: bool = False,
                 check_sync: bool = True, trace: bool = False, trace_limit: int = 100_000):
        self.config = config
        self.strict, self.check_sync = strict, check_sync
        self.trace_enabled, self.trace_limit = trace, trace_limit
        self.vlen, self.mlen, self.blen = config.vlen, config.mlen, config.blen
        self.dram = Dram(dram_size, config.mx_block)
        vector_bytes = config.vector_element_bytes
        self.vector_sram = Sram("vector SRAM", config.vector_sram.size_bytes // vector_bytes, np.float32,
                                vector_bytes, config.formats.vector, strict)
        self.matrix_sram = Sram("matrix SRAM", config.matrix_sram.size_bytes // 2, np.float32, 2, "bf16", strict)
        self.fp_sram = Sram("FP SRAM", config.fp_sram.size_bytes // 4, np.float32, 4, "fp32", strict)
        self.int_sram = Sram("INT SRAM", config.int_sram.size_bytes // 4, np.int32, 4, None, strict)
        self.srams = {"vector_sram": self.vector_sram, "matrix_sram": self.matrix_sram,
                      "fp_sram": self.fp_sram, "int_sram": self.int_sram}
        self.program: Program | None = None
        self._decoded: dict[bytes, tuple] = {}  # words -> (instructions, texts, handlers)
        self.reset()

    # ---- state -----------------------------------------------------------------------------
    def reset(self) -> None:
        """Registers, accumulator, loop stack and counters to zero (memories keep their data).

        State objects are cleared in place: the pre-decoded handlers hold references to them.
        """
        if not hasattr(self, "int_regs"):
            self.int_regs: list[int] = [0] * 17  # index 16 swallows writes to r0
            self.fp_regs: list[np.float32] = [np.float32(0.0)] * 8
            self.addr_regs: list[int] = [0] * 8
            self._loops: list[Loop] = []
            self.sync = _SyncTracker()
            self.traffic: Counter[str] = Counter()
            self._counts: list[int] = []
        self.int_regs[:] = [0] * 17
        self.fp_regs[:] = [np.float32(0.0)] * 8
        self.addr_regs[:] = [0] * 8
        self._loops.clear()
        self.sync.wait((1 << len(SYNC_UNITS)) - 1)
        self.traffic.clear()
        self._counts[:] = [0] * (len(self.program) + 1 if self.program is not None else 0)
        self.accumulators = np.zeros((self.config.accumulators, self.blen, self.mlen), dtype=np.float32)
        self.pc = 0
        self._executed = 0

    def int_reg(self, index: int) -> int:
        return self.int_regs[index]

    def fp_reg(self, index: int) -> float:
        return float(self.fp_regs[index])

    # ---- loading ---------------------------------------------------------------------------
    def load(self, program: Program | np.ndarray | list[int]) -> None:
        """Decode every word once; illegal words become handlers that fault when reached."""
        if not isinstance(program, Program):
            program = Program(np.asarray(program, dtype=np.uint32))
        key = program.words.tobytes()
        cached = self._decoded.get(key)
        if cached is not None:  # handlers depend only on the words (and this machine)
            # A generation alternates between a few step programs: reuse their handlers.
            self._instructions, self._texts, self._handlers = cached
            self.program = program
            self.reset()
            return
        self.program = program
        self._instructions: list[Instruction | None] = []
        self._texts: list[str] = []
        handlers: list[Handler] = []
        for pc, word in enumerate(program.words):
            try:
                instruction = decode(int(word))
            except EncodingError as err:
                self._instructions.append(None)
                self._texts.append(f".word {int(word):#010x}")
                handlers.append(fault_handler(f"illegal instruction: {err}"))
                continue
            self._instructions.append(instruction)
            self._texts.append(format_instruction(instruction))
            handlers.append(self._build(pc, instruction))
        self._texts.append("<end of program>")
        handlers.append(fault_handler("ran past the end of the program without `halt`"))
        self._handlers = handlers
        if len(self._decoded) >= DECODED_PROGRAMS:
            self._decoded.pop(next(iter(self._decoded)))
        self._decoded[key] = (self._instructions, self._texts, handlers)
        self.reset()

    # ---- running ---------------------------------------------------------------------------
    def run(self, max_instructions: int = 10_000_000) -> SimStats:
        """Execute from the current pc until `halt`; errors raise SimulationError."""
        if self.program is None:
            raise SimulationError("no program loaded; call load() first", 0, "<none>")
        handlers, counts, loops = self._handlers, self._counts, self._loops
        trace: list[str] = []
        pc, executed, halted = self.pc, 0, False
        try:
            while executed < max_instructions:
                next_pc = handlers[pc]()
                counts[pc] += 1
                executed += 1
                if self.trace_enabled and len(trace) < self.trace_limit:
                    trace.append(f"{pc:6d}: {self._texts[pc]}")
                if next_pc == HALT:
                    halted = True
                    break
                if loops and next_pc == loops[-1].end:
                    next_pc = self._loop_end(next_pc)
                pc = next_pc
        except InstructionFault as fault:
            self._raise(pc, str(fault))
        except (MemoryAccessError, ValueError, FloatingPointError) as err:
            self._raise(pc, f"{type(err).__name__}: {err}")
        self.pc = pc
        self._executed += executed
        if not halted:
            self._raise(pc, f"instruction limit {max_instructions} reached without `halt`")
        return self._stats(halted, trace)

    # ---- stepping interface (for other drivers of the same handlers, e.g. the cycle simulator) --
    # run() is exactly: next_pc = handler(pc)(); stop on HALT; pc = advance_loops(next_pc);
    # an InstructionFault (or a MemoryAccessError, ValueError or FloatingPointError) raised by a
    # handler becomes raise_at(pc, message). A driver that follows the same steps executes
    # scalar and control instructions with exactly the functional simulator's semantics.

    @property
    def decoded_instructions(self) -> list[Instruction | None]:
        """The loaded program decoded, one entry per pc; None for a word that does not decode."""
        return list(self._instructions)

    def handler(self, pc: int) -> Handler:
        """The pre-decoded handler of `pc`: calling it executes the instruction and returns the pc
        it continues at (HALT after `halt`). pc == len(program) faults "ran past the end"."""
        return self._handlers[pc]

    @property
    def active_loops(self) -> list[Loop]:
        """The live stack of active hardware loops, innermost last (cleared in place, never
        replaced). A hot driver loop may inline advance_loops as `if stack and next_pc ==
        stack[-1].end: next_pc = advance_loops(next_pc)` (advance_loops only acts there)."""
        return self._loops

    def advance_loops(self, next_pc: int) -> int:
        """The pc to execute after an instruction returned `next_pc`: the end of the innermost
        active hardware loop jumps back to its start, or leaves the loop when its count runs out."""
        loops = self._loops
        while loops and next_pc == loops[-1].end:  # _loop_end, inlined: drivers call this per instruction
            top = loops[-1]
            top.remaining -= 1
            if top.remaining > 0:
                return top.start
            loops.pop()
        return next_pc

    def instruction_text(self, pc: int) -> str:
        """Disassembly of the instruction at `pc` ("<end of program>" one past the end)."""
        return self._texts[pc]

    def raise_at(self, pc: int, message: str) -> NoReturn:
        """Raise SimulationError for `pc` (its instruction and source line), as run() does."""
        self.pc = pc
        line = None
        if self.program is not None and pc < len(self.program.source_lines):
            line = self.program.source_lines[pc]
        raise SimulationError(message, pc, self._texts[pc], line) from None

    def _raise(self, pc: int, message: str) -> NoReturn:
        self.raise_at(pc, message)

    def _loop_end(self, next_pc: int) -> int:
        loops = self._loops
        while loops and next_pc == loops[-1].end:
            top = loops[-1]
            top.remaining -= 1
            if top.remaining > 0:
                return top.start
            loops.pop()
        return next_pc

    def _stats(self, halted: bool, trace: list[str]) -> SimStats:
        by_mnemonic: Counter[str] = Counter()
        by_unit: Counter[str] = Counter()
        by_latency: Counter[str] = Counter()
        traffic: Counter[str] = Counter(self.traffic)
        macs = 0
        for pc, count in enumerate(self._counts[:-1]):
            instruction = self._instructions[pc]
            if not count or instruction is None:
                continue
            spec = instruction.spec
            by_mnemonic[spec.mnemonic] += count
            by_unit[spec.unit.value] += count
            by_latency[spec.latency] += count
            for key, nbytes in self._static_traffic(instruction).items():
                traffic[key] += nbytes * count
            if spec.mnemonic in ("mm", "mma", "mmt", "mmta"):
                macs += count * self.blen * self.mlen * self.mlen
        return SimStats(sum(by_mnemonic.values()), halted, dict(by_mnemonic), dict(by_unit), dict(by_latency),
                        dict(traffic), macs, trace)

    def _static_traffic(self, instruction: Instruction) -> dict[str, int]:
        """SRAM bytes an instruction with a fixed footprint moves (DMA traffic is counted live)."""
        name, group = instruction.mnemonic, instruction.spec.group
        row = self.vlen * self.vector_sram.element_bytes
        words = self.vlen * 4
        if name in ("mm", "mma", "mmt", "mmta"):
            return {"vector_sram_read": self.blen * self.mlen * self.vector_sram.element_bytes,
                    "matrix_sram_read": self.mlen * self.mlen * 2}
        if name == "mwb":
            return {"vector_sram_write": self.blen * self.mlen * self.vector_sram.element_bytes}
        if name in ("lw", "sw"):
            return {f"int_sram_{'read' if name == 'lw' else 'write'}": 4}
        if name in ("flw", "fsw"):
            return {f"fp_sram_{'read' if name == 'flw' else 'write'}": 4}
        table = {
            "vldf": {"fp_sram_read": words, "vector_sram_write": row},
            "vstf": {"vector_sram_read": row, "fp_sram_write": words},
            "vldi": {"int_sram_read": words, "vector_sram_write": row},
            "vsti": {"vector_sram_read": row, "int_sram_write": words},
            "vieq": {"int_sram_read": words, "vector_sram_write": row},
            "vrank": {"vector_sram_read": 2 * row, "int_sram_read": words, "int_sram_write": words},
            "vtopk": {"vector_sram_read": row, "int_sram_read": words, "vector_sram_write": row},
            "vseli": {"vector_sram_read": row, "int_sram_read": 2 * words, "int_sram_write": words},
            "vsum": {"vector_sram_read": row}, "vmaxr": {"vector_sram_read": row},
            "vargmax": {"vector_sram_read": row}, "vbcast": {"vector_sram_write": row},
        }
        if name in table:
            return table[name]
        if group.startswith("Vector"):
            reads = sum(1 for f in instruction.spec.fields if f.kind is Kind.INT_REG and f.name != "vd")
            return {"vector_sram_read": reads * row, "vector_sram_write": row}
        return {}

    # ---- handler construction --------------------------------------------------------------
    def _build(self, pc: int, ins: Instruction) -> Handler:
        """The handler of one instruction: its unit's builder, wrapped in the register sync check."""
        spec = ins.spec
        if spec.dllm and not self.config.dllm_instructions:
            return fault_handler(f"{spec.mnemonic} is a dLLM instruction; "
                                 f"{self.config.name} has no dLLM instructions")
        handler = handler_builder(spec)(self, pc, ins)
        if self.check_sync and spec.mnemonic != "wait":
            handler = self._guard_registers(ins, handler)
        return handler

    def _guard_registers(self, ins: Instruction, inner: Handler) -> Handler:
        return guard_registers(ins, inner, self.sync.registers)


def guard_registers(ins: Instruction, inner: Handler, pending: set[str]) -> Handler:
    """Wrap `inner` so that reading or overwriting a register the vector unit still owes (a name in
    `pending`, the sync tracker's live set) is a sync error; the registers it accumulates join `pending`."""
    accumulated = ins.spec.accumulates  # the ISA table's registers the vector unit writes back
    keys, owed = set(), set()
    for operand in ins.spec.fields:
        value = ins.operands[operand.name]
        if operand.kind is Kind.INT_REG and value != 0:
            (owed if operand.name in accumulated else keys).add(f"r{value}")
        elif operand.kind is Kind.FP_REG:
            (owed if operand.name in accumulated else keys).add(f"f{value}")
    if not keys and not owed:
        return inner
    frozen_keys = frozenset(keys)

    def guarded() -> int:
        if pending and not frozen_keys.isdisjoint(pending):
            names = ", ".join(sorted(frozen_keys & pending))
            raise InstructionFault(f"register {names} is still being written by the vector unit; "
                                   f"insert `wait vector`")
        next_pc = inner()
        if owed:
            pending.update(owed)
        return next_pc
    return guarded
