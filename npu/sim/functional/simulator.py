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
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn

import numpy as np

from npu.hw import numerics
from npu.hw.config import NPUConfig
from npu.hw.numerics import smoothing_factor
from npu.isa.assembler import Program, format_instruction
from npu.isa.encoding import EncodingError, Instruction, decode
from npu.isa.table import DRAM_FORMATS, MAX_LOOP_DEPTH, SMOOTH_MODES, SYNC_UNITS, Kind, Unit
from npu.hw.rows import MemoryAccessError, decode_rows, element_alignment, encode_rows, row_bytes
from npu.sim.functional.memory import Dram, Sram

Handler = Callable[[], int]
HALT = -1
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
MASK64 = (1 << 64) - 1


class SimulationError(RuntimeError):
    """The program did something the machine does not allow; names pc and instruction."""

    def __init__(self, message: str, pc: int, instruction: str, source_line: int | None = None):
        self.message, self.pc, self.instruction, self.source_line = message, pc, instruction, source_line
        where = f" (source line {source_line})" if source_line else ""
        super().__init__(f"pc {pc}{where}: `{instruction}`: {message}")


class InstructionFault(Exception):
    """Raised inside an instruction handler; run() turns it into a SimulationError with the pc.

    Public so that another driver of the handlers (the cycle simulator) can raise and catch it
    the same way, then report it with `raise_at`.
    """


_Fault = InstructionFault  # the name the handlers below use


def _wrap32(value: int) -> int:
    return ((value + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


# The most frequent scalar instructions (addi, add, sub, aaddi, aadd: loop counters and address
# steps, millions per compiled step) get handlers with _wrap32 inlined and no operation lambda,
# the same arithmetic in fewer calls; False builds the generic handlers for every instruction
# (the reference the tests compare against). Read when a program is loaded.
SPECIALISED_SCALAR = True
_BIAS32 = 1 << 31

# Scalar fexp / frecip / frsqrt remember their results by input bits (see _build_floating);
# False computes every one (the reference the tests compare against). Read when a program is loaded.
MEMOISED_UNARY = True
_UNARY_MEMO: dict[str, dict[bytes, np.float32]] = {}  # mnemonic -> input bits -> result

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


@dataclass
class _Loop:
    start: int
    end: int
    remaining: int


class _SyncTracker:
    """Pending accesses of the decoupled units, cleared by `wait`."""

    def __init__(self) -> None:
        self.pending: dict[str, list[list]] = {unit: [] for unit in SYNC_UNITS}
        self.registers: set[str] = set()  # registers the vector unit has written, not yet waited on

    def access(self, unit: str, space: str, low: int, high: int, write: bool) -> None:
        for other, entries in self.pending.items():
            if other == unit or not entries:
                continue
            for other_space, other_low, other_high, other_write in entries:
                if other_space == space and other_low < high and low < other_high and (write or other_write):
                    verb = "writes" if write else "reads"
                    other_verb = "writes" if other_write else "reads"
                    raise _Fault(f"the {unit} unit {verb} {space}[{low}, {high}) while the {other} unit "
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
    """The dnpu as numpy arrays: DRAM bytes, four SRAMs, register files, matrix accumulator.

    sim = FunctionalSimulator(load_npu_config("dnpu-edge"), dram_size=1 << 20)
    sim.dram.write(0, logits, "bf16"); sim.load(assemble(text)); stats = sim.run()
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
            self._loops: list[_Loop] = []
            self._sync = _SyncTracker()
            self._traffic: Counter[str] = Counter()
            self._counts: list[int] = []
        self.int_regs[:] = [0] * 17
        self.fp_regs[:] = [np.float32(0.0)] * 8
        self.addr_regs[:] = [0] * 8
        self._loops.clear()
        self._sync.wait((1 << len(SYNC_UNITS)) - 1)
        self._traffic.clear()
        self._counts[:] = [0] * (len(self.program) + 1 if self.program is not None else 0)
        self.accumulator = np.zeros((self.blen, self.mlen), dtype=np.float32)
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
                handlers.append(self._fault_handler(f"illegal instruction: {err}"))
                continue
            self._instructions.append(instruction)
            self._texts.append(format_instruction(instruction))
            handlers.append(self._build(pc, instruction))
        self._texts.append("<end of program>")
        handlers.append(self._fault_handler("ran past the end of the program without `halt`"))
        self._handlers = handlers
        if len(self._decoded) >= DECODED_PROGRAMS:
            self._decoded.pop(next(iter(self._decoded)))
        self._decoded[key] = (self._instructions, self._texts, handlers)
        self.reset()

    @staticmethod
    def _fault_handler(message: str) -> Handler:
        def fault() -> int:
            raise _Fault(message)
        return fault

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
        except _Fault as fault:
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
    def active_loops(self) -> list[_Loop]:
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
        traffic: Counter[str] = Counter(self._traffic)
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
        spec = ins.spec
        if spec.dllm and not self.config.dllm_instructions:
            return self._fault_handler(f"{spec.mnemonic} is a dLLM instruction; "
                                       f"{self.config.name} has no dLLM instructions")
        builders = {Unit.CONTROL: self._build_control, Unit.DMA: self._build_dma,
                    Unit.MATRIX: self._build_matrix, Unit.VECTOR: self._build_vector}
        if spec.unit is Unit.SCALAR:
            if spec.group.startswith("DRAM address"):
                handler = self._build_address(pc, ins)
            elif spec.group.startswith("Scalar floating"):
                handler = self._build_floating(pc, ins)
            else:
                handler = self._build_scalar(pc, ins)
        else:
            handler = builders[spec.unit](pc, ins)
        if self.check_sync and spec.mnemonic != "wait":
            handler = self._guard_registers(ins, handler)
        return handler

    def _guard_registers(self, ins: Instruction, inner: Handler) -> Handler:
        """Reading or overwriting a register the vector unit still owes is a sync error."""
        accumulated = {"vsum": ("fd",), "vmaxr": ("fd",), "vargmax": ("fmax", "ridx")}.get(ins.mnemonic, ())
        keys = set()
        for operand in ins.spec.fields:
            value = ins.operands[operand.name]
            if operand.kind is Kind.INT_REG and value != 0 and operand.name not in accumulated:
                keys.add(f"r{value}")
            elif operand.kind is Kind.FP_REG and operand.name not in accumulated:
                keys.add(f"f{value}")
        owed = {f"{'f' if name.startswith('f') else 'r'}{ins.operands[name]}" for name in accumulated}
        owed.discard("r0")
        pending = self._sync.registers
        if not keys and not owed:
            return inner
        frozen_keys = frozenset(keys)

        def guarded() -> int:
            if pending and not frozen_keys.isdisjoint(pending):
                names = ", ".join(sorted(frozen_keys & pending))
                raise _Fault(f"register {names} is still being written by the vector unit; insert `wait vector`")
            next_pc = inner()
            if owed:
                pending.update(owed)
            return next_pc
        return guarded

    # ---- control ---------------------------------------------------------------------------
    def _build_control(self, pc: int, ins: Instruction) -> Handler:
        name, ops, regs = ins.mnemonic, ins.operands, self.int_regs
        following = pc + 1
        size = len(self.program)
        loops = self._loops

        if name == "halt":
            return lambda: HALT
        if name == "nop":
            return lambda: following
        if name == "wait":
            mask, sync = ops["units"], self._sync
            def wait() -> int:
                sync.wait(mask)
                return following
            return wait
        if name in ("j", "beq", "bne", "blt", "bge"):
            target = pc + ops["target"]

            def jump() -> int:
                if not 0 <= target <= size:
                    raise _Fault(f"branch target {target} is outside the program [0, {size}]")
                if loops and not loops[-1].start <= target <= loops[-1].end:
                    raise _Fault(f"branch to {target} leaves the hardware loop body "
                                 f"[{loops[-1].start}, {loops[-1].end})")
                return target
            if name == "j":
                return jump
            a, b = ops["rs1"], ops["rs2"]
            compare = {"beq": int.__eq__, "bne": int.__ne__, "blt": int.__lt__, "bge": int.__ge__}[name]

            def branch() -> int:
                return jump() if compare(regs[a], regs[b]) else following
            return branch
        # loop / loopi
        end = following + ops["end"]
        fixed_count = ops["count"] if name == "loopi" else None
        count_reg = ops["count"]

        def loop() -> int:
            count = fixed_count if fixed_count is not None else regs[count_reg]
            if count < 0:
                raise _Fault(f"loop count r{count_reg} = {count} is negative")
            if ops["end"] < 1 or end > size:
                raise _Fault(f"loop body [{following}, {end}) is empty or runs past the program end {size}")
            if loops and end > loops[-1].end:
                raise _Fault(f"loop body [{following}, {end}) is not nested inside the enclosing loop "
                             f"[{loops[-1].start}, {loops[-1].end})")
            if count == 0:
                return end
            if len(loops) >= MAX_LOOP_DEPTH:
                raise _Fault(f"hardware loops nested deeper than {MAX_LOOP_DEPTH}")
            loops.append(_Loop(following, end, count))
            return following
        return loop

    # ---- scalar integer --------------------------------------------------------------------
    def _build_scalar(self, pc: int, ins: Instruction) -> Handler:
        name, ops, regs = ins.mnemonic, ins.operands, self.int_regs
        following = pc + 1
        rd = ops.get("rd", 0) or 16
        if name in ("lw", "sw"):
            base, offset, sram, sync, strict = ops["base"], ops["offset"], self.int_sram, self._sync, self.strict
            data, written = sram.data, sram.written
            write = name == "sw"
            source = ops.get("rs", 0)

            def memory() -> int:
                addr = regs[base] + offset
                if not 0 <= addr < sram.size:
                    raise _Fault(f"INT SRAM word {addr} outside [0, {sram.size})")
                sync.access("scalar", "int_sram", addr, addr + 1, write)
                if write:
                    data[addr] = regs[source]
                    if written is not None:
                        written[addr] = True
                else:
                    if strict and not written[addr]:
                        raise _Fault(f"INT SRAM word {addr} read before it was ever written (strict mode)")
                    regs[rd] = int(data[addr])
                return following
            return memory
        a, b = ops.get("rs1", 0), ops.get("rs2", 0)
        if name == "lui":
            value = _wrap32(ops["imm"] << 16)

            def lui() -> int:
                regs[rd] = value
                return following
            return lui
        if SPECIALISED_SCALAR and name == "addi":
            bias = ops["imm"] + _BIAS32  # _wrap32(x + imm) = ((x + imm + 2**31) & 0xFFFFFFFF) - 2**31

            def addi() -> int:
                regs[rd] = ((regs[a] + bias) & 0xFFFFFFFF) - 0x80000000  # literals: no global lookups
                return following
            return addi
        if SPECIALISED_SCALAR and name in ("add", "sub"):
            if name == "add":
                def add() -> int:
                    regs[rd] = ((regs[a] + regs[b] + 0x80000000) & 0xFFFFFFFF) - 0x80000000
                    return following
                return add

            def sub() -> int:
                regs[rd] = ((regs[a] - regs[b] + 0x80000000) & 0xFFFFFFFF) - 0x80000000
                return following
            return sub
        if "imm" in ops or "shamt" in ops:
            imm = ops.get("imm", ops.get("shamt"))
            operation = {
                "addi": lambda x: x + imm, "andi": lambda x: x & imm, "ori": lambda x: x | imm,
                "slti": lambda x: int(x < imm), "slli": lambda x: x << imm,
                "srli": lambda x: (x & 0xFFFFFFFF) >> imm, "srai": lambda x: x >> imm,
            }[name]

            def immediate() -> int:
                regs[rd] = _wrap32(operation(regs[a]))
                return following
            return immediate
        operation = {
            "add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
            "and": lambda x, y: x & y, "or": lambda x, y: x | y, "xor": lambda x, y: x ^ y,
            "sll": lambda x, y: x << (y & 31), "srl": lambda x, y: (x & 0xFFFFFFFF) >> (y & 31),
            "sra": lambda x, y: x >> (y & 31), "slt": lambda x, y: int(x < y),
            "sltu": lambda x, y: int((x & 0xFFFFFFFF) < (y & 0xFFFFFFFF)),
            "min": min, "max": max,
        }[name]

        def register() -> int:
            regs[rd] = _wrap32(operation(regs[a], regs[b]))
            return following
        return register

    # ---- scalar floating point -------------------------------------------------------------
    def _build_floating(self, pc: int, ins: Instruction) -> Handler:
        name, ops, regs, fregs = ins.mnemonic, ins.operands, self.int_regs, self.fp_regs
        following = pc + 1
        f32 = np.float32
        if name in ("flw", "fsw"):
            base, offset, sram, sync, strict = ops["base"], ops["offset"], self.fp_sram, self._sync, self.strict
            data, written = sram.data, sram.written
            write = name == "fsw"
            freg = ops["fs"] if write else ops["fd"]

            def memory() -> int:
                addr = regs[base] + offset
                if not 0 <= addr < sram.size:
                    raise _Fault(f"FP SRAM word {addr} outside [0, {sram.size})")
                sync.access("scalar", "fp_sram", addr, addr + 1, write)
                if write:
                    data[addr] = fregs[freg]
                    if written is not None:
                        written[addr] = True
                else:
                    if strict and not written[addr]:
                        raise _Fault(f"FP SRAM word {addr} read before it was ever written (strict mode)")
                    fregs[freg] = f32(data[addr])
                return following
            return memory
        if name == "flui":
            value = np.array([ops["value"] << 16], dtype=np.uint32).view(np.float32)[0]

            def flui() -> int:
                fregs[ops["fd"]] = value
                return following
            return flui
        if name in ("fadd", "fsub", "fmul", "fmax", "fmin"):
            d, a, b = ops["fd"], ops["fs1"], ops["fs2"]
            operation = {"fadd": np.add, "fsub": np.subtract, "fmul": np.multiply,
                         "fmax": np.maximum, "fmin": np.minimum}[name]

            def binary() -> int:
                fregs[d] = f32(operation(fregs[a], fregs[b]))
                return following
            return binary
        if name in ("fmov", "fneg", "fabs", "fexp", "frecip", "frsqrt"):
            d, s = ops["fd"], ops["fs"]
            vector_op = {"fexp": numerics.hw_exp, "frecip": numerics.hw_recip, "frsqrt": numerics.hw_rsqrt}.get(name)
            simple = {"fmov": lambda x: x, "fneg": np.negative, "fabs": np.abs}.get(name)
            if MEMOISED_UNARY and vector_op is not None:
                # The hardware functions are pure functions of the input's bits, and a program
                # feeds them few distinct values: remember each result by the input's bit pattern.
                memo = _UNARY_MEMO.setdefault(name, {})

                def unary_memoised() -> int:
                    x = fregs[s]
                    if type(x) is not f32:
                        fregs[d] = vector_op(np.array([x], dtype=f32))[0]
                        return following
                    key = x.tobytes()
                    result = memo.get(key)
                    if result is None:
                        if len(memo) >= 4096:
                            memo.clear()
                        result = memo[key] = vector_op(np.array([x], dtype=f32))[0]
                    fregs[d] = result
                    return following
                return unary_memoised

            def unary() -> int:
                x = fregs[s]
                fregs[d] = f32(simple(x)) if vector_op is None else vector_op(np.array([x], dtype=f32))[0]
                return following
            return unary
        if name in ("flt", "fle", "feq"):
            rd, a, b = ops["rd"] or 16, ops["fs1"], ops["fs2"]
            compare = {"flt": np.less, "fle": np.less_equal, "feq": np.equal}[name]

            def fcompare() -> int:
                regs[rd] = int(compare(fregs[a], fregs[b]))
                return following
            return fcompare
        if name == "fcvt.f.i":
            d, s = ops["fd"], ops["rs"]

            def int_to_float() -> int:
                fregs[d] = f32(regs[s])
                return following
            return int_to_float
        if name == "fmv.f.i":
            d, s = ops["fd"], ops["rs"]

            def bits_to_float() -> int:
                fregs[d] = np.array([regs[s] & 0xFFFFFFFF], dtype=np.uint32).view(f32)[0]
                return following
            return bits_to_float
        rd, s = ops["rd"] or 16, ops["fs"]
        if name == "fmv.i.f":
            def float_bits() -> int:
                regs[rd] = _wrap32(int(np.array([fregs[s]], dtype=f32).view(np.uint32)[0]))
                return following
            return float_bits

        def float_to_int() -> int:  # fcvt.i.f
            x = fregs[s]
            if np.isnan(x):
                raise _Fault(f"fcvt.i.f of NaN in f{s}")
            regs[rd] = int(min(max(np.rint(np.float64(x)), INT32_MIN), INT32_MAX))
            return following
        return float_to_int

    # ---- DRAM address registers ------------------------------------------------------------
    def _build_address(self, pc: int, ins: Instruction) -> Handler:
        name, ops, regs, aregs = ins.mnemonic, ins.operands, self.int_regs, self.addr_regs
        following, d = pc + 1, ops["ad"]
        if SPECIALISED_SCALAR and name == "aaddi":
            source, imm = ops["as"], ops["imm"]

            def aaddi() -> int:
                aregs[d] = (aregs[source] + imm) & MASK64
                return following
            return aaddi
        if SPECIALISED_SCALAR and name == "aadd":
            source, step = ops["as"], ops["rs"]

            def aadd() -> int:
                aregs[d] = (aregs[source] + regs[step]) & MASK64
                return following
            return aadd
        compute = {
            "amov": lambda: regs[ops["rs"]] & 0xFFFFFFFF,
            "aadd": lambda: aregs[ops["as"]] + regs[ops["rs"]],
            "amac": lambda: aregs[ops["as"]] + regs[ops["rs1"]] * regs[ops["rs2"]],
            "aset": lambda: (regs[ops["rhi"]] & 0xFFFFFFFF) << 32 | regs[ops["rlo"]] & 0xFFFFFFFF,
            "aaddi": lambda: aregs[ops["as"]] + ops["imm"],
        }[name]

        def address() -> int:
            aregs[d] = compute() & MASK64
            return following
        return address

    # ---- DMA -------------------------------------------------------------------------------
    def _build_dma(self, pc: int, ins: Instruction) -> Handler:
        name, ops, regs, aregs = ins.mnemonic, ins.operands, self.int_regs, self.addr_regs
        following = pc + 1
        fmt = DRAM_FORMATS[ops["fmt"]]
        target = {"v": "vector_sram", "m": "matrix_sram", "f": "fp_sram", "i": "int_sram"}[name[-1]]
        sram = self.srams[target]
        store = name.startswith("dst")
        kv = "kv" in name
        if (fmt == "int32") != (target == "int_sram"):
            message = ("INT SRAM transfers use the int32 format" if target == "int_sram"
                       else f"int32 is for INT SRAM only; {sram.name} holds floating-point values")
            return self._fault_handler(f"{name} with format {fmt}: {message}")
        dram, vector, mx_block, traffic, sync = self.dram, self.vector_sram, self.config.mx_block, self._traffic, self._sync
        strict, align = self.strict, element_alignment(fmt)
        space = target

        def transfer() -> int:
            base = aregs[ops["dram"]]
            first, rows, cols, dstride = regs[ops["sram"]], regs[ops["rows"]], regs[ops["cols"]], regs[ops["dstride"]]
            sstride = cols if kv else regs[ops["sstride"]]
            if rows < 0 or cols < 0:
                raise _Fault(f"negative shape rows={rows}, cols={cols}")
            if rows == 0 or cols == 0:
                return following
            nbytes = row_bytes(fmt, cols, mx_block)
            if base % align or dstride % align:
                raise _Fault(f"DRAM address {base:#x} / stride {dstride} not aligned to {align} bytes for {fmt}")
            starts = base + dstride * np.arange(rows, dtype=np.int64)
            low, high = int(starts.min()), int(starts.max()) + nbytes
            if low < 0 or high > dram.size:
                raise _Fault(f"DRAM bytes [{low:#x}, {high:#x}) outside [0, {dram.size:#x})")
            index = first + sstride * np.arange(rows, dtype=np.int64)[:, None] + np.arange(cols)[None, :]
            sram_low, sram_high = int(index.min()), int(index.max()) + 1
            if sram_low < 0 or sram_high > sram.size:
                raise _Fault(f"{sram.name} elements [{sram_low}, {sram_high}) outside [0, {sram.size})")
            scale = None
            if kv:
                scale_at = regs[ops["scale"]]
                if scale_at < 0 or scale_at + cols > vector.size:
                    raise _Fault(f"scale row vector SRAM [{scale_at}, {scale_at + cols}) outside [0, {vector.size})")
                sync.access("dma", "vector_sram", scale_at, scale_at + cols, False)
                if strict and not vector.written[scale_at:scale_at + cols].all():
                    raise _Fault(f"scale row at vector SRAM {scale_at} read before it was written (strict mode)")
                scale = vector.data[scale_at:scale_at + cols]
            sync.access("dma", space, sram_low, sram_high, not store)
            byte_index = starts[:, None] + np.arange(nbytes)[None, :]
            if store:
                if strict and not sram.written[index].all():
                    raise _Fault(f"{sram.name} elements [{sram_low}, {sram_high}) read before written (strict mode)")
                values = sram.data[index]
                if scale is not None:
                    values = values * numerics.hw_recip(scale)[None, :]
                dram.data[byte_index] = encode_rows(values, fmt, mx_block)
                traffic["dram_write"] += rows * nbytes
                traffic[f"{space}_read"] += rows * cols * sram.element_bytes
            else:
                values = decode_rows(dram.data[byte_index], fmt, cols, mx_block)
                if scale is not None:
                    values = values * scale[None, :]
                sram.data[index] = sram.round(values)
                if sram.written is not None:
                    sram.written[index] = True
                traffic["dram_read"] += rows * nbytes
                traffic[f"{space}_write"] += rows * cols * sram.element_bytes
            return following
        return transfer

    # ---- matrix unit -----------------------------------------------------------------------
    def _build_matrix(self, pc: int, ins: Instruction) -> Handler:
        name, ops, regs = ins.mnemonic, ins.operands, self.int_regs
        following = pc + 1
        vector, matrix, sync, strict = self.vector_sram, self.matrix_sram, self._sync, self.strict
        blen, mlen = self.blen, self.mlen
        offsets = np.arange(blen, dtype=np.int64)[:, None], np.arange(mlen, dtype=np.int64)[None, :]

        def rows_index(first: int, stride: int, write: bool) -> np.ndarray:
            index = first + stride * offsets[0] + offsets[1]
            low, high = int(index.min()), int(index.max()) + 1
            if low < 0 or high > vector.size:
                raise _Fault(f"vector SRAM elements [{low}, {high}) outside [0, {vector.size})")
            if strict and not write and not vector.written[index].all():
                raise _Fault(f"activation rows at vector SRAM {first} read before written (strict mode)")
            sync.access("matrix", "vector_sram", low, high, write)
            return index

        if name == "mwb":
            def writeback() -> int:
                index = rows_index(regs[ops["dst"]], regs[ops["stride"]], True)
                vector.data[index] = vector.round(self.accumulator)
                if vector.written is not None:
                    vector.written[index] = True
                return following
            return writeback
        accumulate, transpose = name in ("mma", "mmta"), name in ("mmt", "mmta")
        tile = mlen * mlen

        def multiply() -> int:
            act = vector.data[rows_index(regs[ops["act"]], regs[ops["stride"]], False)]
            w_at = regs[ops["w"]]
            if w_at < 0 or w_at + tile > matrix.size:
                raise _Fault(f"weight tile matrix SRAM [{w_at}, {w_at + tile}) outside [0, {matrix.size})")
            if w_at % mlen:
                raise _Fault(f"weight tile address {w_at} is not aligned to a matrix SRAM row of {mlen}")
            if strict and not matrix.written[w_at:w_at + tile].all():
                raise _Fault(f"weight tile at matrix SRAM {w_at} read before written (strict mode)")
            sync.access("matrix", "matrix_sram", w_at, w_at + tile, False)
            weight = matrix.data[w_at:w_at + tile].reshape(mlen, mlen)
            start = self.accumulator if accumulate else np.zeros_like(self.accumulator)
            self.accumulator = numerics.hw_matmul_accumulate(start, act, weight.T if transpose else weight)
            return following
        return multiply

    # ---- vector unit -----------------------------------------------------------------------
    def _row_checker(self, sram: Sram, space: str, span: int, aligned: bool) -> Callable[[int, bool], int]:
        """Checks one access of `span` elements at `addr` (bounds, alignment, strict, sync)."""
        size, written, strict, sync, vlen = sram.size, sram.written, self.strict, self._sync, self.vlen

        def check(addr: int, write: bool) -> int:
            if addr < 0 or addr + span > size:
                raise _Fault(f"{sram.name} elements [{addr}, {addr + span}) outside [0, {size})")
            if aligned and addr % vlen:
                raise _Fault(f"{sram.name} address {addr} is not aligned to a row of VLEN={vlen}")
            if written is not None:
                if write:
                    written[addr:addr + span] = True
                elif strict and not written[addr:addr + span].all():
                    raise _Fault(f"{sram.name} elements [{addr}, {addr + span}) read before written (strict mode)")
            sync.access("vector", space, addr, addr + span, write)
            return addr
        return check

    def _build_vector(self, pc: int, ins: Instruction) -> Handler:
        name, ops, regs, fregs = ins.mnemonic, ins.operands, self.int_regs, self.fp_regs
        following, vlen = pc + 1, self.vlen
        V, I = self.vector_sram.data, self.int_sram.data
        vrow = self._row_checker(self.vector_sram, "vector_sram", vlen, aligned=True)
        frow = self._row_checker(self.fp_sram, "fp_sram", vlen, aligned=False)
        irow = self._row_checker(self.int_sram, "int_sram", vlen, aligned=False)
        rnd = self.vector_sram.round
        f32 = np.float32
        one, zero = f32(1.0), f32(0.0)

        def r(field_name: str) -> int:
            return ops[field_name]

        if ins.spec.opcode == 40:  # vector-vector element-wise
            operation = {
                "vadd": np.add, "vsub": np.subtract, "vmul": np.multiply, "vmax": np.maximum,
                "vmin": np.minimum, "vgt": lambda x, y: np.where(x > y, one, zero),
                "vge": lambda x, y: np.where(x >= y, one, zero), "veq": lambda x, y: np.where(x == y, one, zero),
                "vamax": lambda x, y: np.maximum(x, np.abs(y)),
            }[name]
            d, a, b = r("vd"), r("vs1"), r("vs2")

            def binary() -> int:
                x, y = vrow(regs[a], False), vrow(regs[b], False)
                out = operation(V[x:x + vlen], V[y:y + vlen])
                z = vrow(regs[d], True)
                V[z:z + vlen] = rnd(out)
                return following
            return binary
        if ins.spec.opcode == 41:  # unary
            operation = {
                "vmov": lambda x: x, "vneg": np.negative, "vabs": np.abs, "vexp": numerics.hw_exp,
                "vrecip": numerics.hw_recip, "vrsqrt": numerics.hw_rsqrt, "vsilu": numerics.hw_silu,
            }[name]
            d, s = r("vd"), r("vs")

            def unary() -> int:
                x = vrow(regs[s], False)
                out = operation(V[x:x + vlen])
                z = vrow(regs[d], True)
                V[z:z + vlen] = rnd(out)
                return following
            return unary
        if ins.spec.opcode == 42:  # vector-scalar
            operation = {
                "vadds": np.add, "vsubs": np.subtract, "vmuls": np.multiply, "vmaxs": np.maximum,
                "vmins": np.minimum, "vges": lambda x, y: np.where(x >= y, one, zero),
                "vgts": lambda x, y: np.where(x > y, one, zero),
            }[name]
            d, s, fs = r("vd"), r("vs"), r("fs")

            def scalar() -> int:
                x = vrow(regs[s], False)
                out = operation(V[x:x + vlen], fregs[fs])
                z = vrow(regs[d], True)
                V[z:z + vlen] = rnd(out)
                return following
            return scalar
        if name == "vbcast":
            d, fs = r("vd"), r("fs")

            def broadcast() -> int:
                z = vrow(regs[d], True)
                V[z:z + vlen] = rnd(np.full(vlen, fregs[fs], dtype=f32))
                return following
            return broadcast
        if name == "vrothalf":
            d, s, group = r("vd"), r("vs"), 1 << r("glog2")
            if not 2 <= group <= vlen:
                return self._fault_handler(f"vrothalf group 2^{r('glog2')} = {group} must be in [2, VLEN={vlen}]")

            def rotate_half() -> int:
                x = vrow(regs[s], False)
                lanes = V[x:x + vlen].reshape(-1, group)
                out = np.concatenate([-lanes[:, group // 2:], lanes[:, :group // 2]], axis=1).reshape(-1)
                z = vrow(regs[d], True)
                V[z:z + vlen] = out
                return following
            return rotate_half
        if name in ("vsum", "vmaxr"):
            fd, s = r("fd"), r("vs")
            tree_sum = numerics.hw_tree_sum

            def reduce() -> int:
                x = vrow(regs[s], False)
                row = V[x:x + vlen]
                if name == "vsum":
                    fregs[fd] = f32(fregs[fd] + tree_sum(row))
                else:
                    fregs[fd] = f32(np.maximum(fregs[fd], row.max()))
                return following
            return reduce
        if name in ("vldf", "vstf", "vldi", "vsti", "vieq"):
            return self._build_vector_transfer(name, ops, following, vrow, frow, irow)
        if name == "vargmax":
            fmax, ridx, s, base = r("fmax"), r("ridx") or 16, r("vs"), r("base")

            def argmax() -> int:
                x = vrow(regs[s], False)
                row = V[x:x + vlen]
                if np.isnan(row).any():
                    row = np.where(np.isnan(row), -np.inf, row).astype(f32)
                lane = int(np.argmax(row))
                if row[lane] > fregs[fmax]:
                    fregs[fmax] = f32(row[lane])
                    regs[ridx] = _wrap32(regs[base] + lane)
                return following
            return argmax
        if name == "vrank":
            d, c, o = r("vd"), r("vcand"), r("vother")
            lanes = np.arange(vlen)
            rank_row = self._row_checker(self.int_sram, "int_sram", vlen, aligned=False)

            def rank() -> int:
                x, y = vrow(regs[c], False), vrow(regs[o], False)
                cand, other = V[x:x + vlen], V[y:y + vlen]
                earlier = (y + lanes)[None, :] < (x + lanes)[:, None]
                beats = (other[None, :] > cand[:, None]) | ((other[None, :] == cand[:, None]) & earlier)
                z = rank_row(regs[d], False)
                rank_row(z, True)
                I[z:z + vlen] += beats.sum(axis=1).astype(np.int32)
                return following
            return rank
        if name == "vtopk":
            d, rk, e, k = r("vd"), r("vrank"), r("velig"), r("k")

            def topk() -> int:
                ranks = irow(regs[rk], False)
                x = vrow(regs[e], False)
                mask = (V[x:x + vlen] != 0) & (I[ranks:ranks + vlen] < regs[k])
                z = vrow(regs[d], True)
                V[z:z + vlen] = np.where(mask, one, zero)
                return following
            return topk
        if name == "vthresh":
            d, c, e, tau = r("vd"), r("vconf"), r("velig"), r("tau")

            def threshold() -> int:
                x, y = vrow(regs[c], False), vrow(regs[e], False)
                mask = (V[y:y + vlen] != 0) & (V[x:x + vlen] >= fregs[tau])
                z = vrow(regs[d], True)
                V[z:z + vlen] = np.where(mask, one, zero)
                return following
            return threshold
        if name == "vsel":
            d, a, b, m = r("vd"), r("vs1"), r("vs2"), r("vmask")

            def select() -> int:
                x, y, w = vrow(regs[a], False), vrow(regs[b], False), vrow(regs[m], False)
                out = np.where(V[w:w + vlen] != 0, V[x:x + vlen], V[y:y + vlen])
                z = vrow(regs[d], True)
                V[z:z + vlen] = out
                return following
            return select
        if name == "vseli":
            d, a, b, m = r("idst"), r("isrc1"), r("isrc2"), r("vmask")

            def select_int() -> int:
                x, y, w = irow(regs[a], False), irow(regs[b], False), vrow(regs[m], False)
                out = np.where(V[w:w + vlen] != 0, I[x:x + vlen], I[y:y + vlen])
                z = irow(regs[d], True)
                I[z:z + vlen] = out
                return following
            return select_int
        # vsmscale
        d, s, mode = r("vd"), r("vs"), SMOOTH_MODES[r("mode")]

        def smoothing_scale() -> int:
            x = vrow(regs[s], False)
            z = vrow(regs[d], True)
            V[z:z + vlen] = rnd(smoothing_factor(V[x:x + vlen], mode))
            return following
        return smoothing_scale

    def _build_vector_transfer(self, name: str, ops: dict[str, int], following: int, vrow, frow, irow) -> Handler:
        regs, vlen = self.int_regs, self.vlen
        V, F, I = self.vector_sram.data, self.fp_sram.data, self.int_sram.data
        rnd = self.vector_sram.round
        one, zero = np.float32(1.0), np.float32(0.0)
        if name == "vldf":
            d, s = ops["vd"], ops["fsrc"]

            def load_fp() -> int:
                x = frow(regs[s], False)
                z = vrow(regs[d], True)
                V[z:z + vlen] = rnd(F[x:x + vlen])
                return following
            return load_fp
        if name == "vstf":
            d, s = ops["fdst"], ops["vs"]

            def store_fp() -> int:
                x = vrow(regs[s], False)
                z = frow(regs[d], True)
                F[z:z + vlen] = V[x:x + vlen]
                return following
            return store_fp
        if name == "vldi":
            d, s = ops["vd"], ops["isrc"]

            def load_int() -> int:
                x = irow(regs[s], False)
                z = vrow(regs[d], True)
                V[z:z + vlen] = rnd(I[x:x + vlen].astype(np.float32))
                return following
            return load_int
        if name == "vsti":
            d, s = ops["idst"], ops["vs"]

            def store_int() -> int:
                x = vrow(regs[s], False)
                row = V[x:x + vlen]
                if np.isnan(row).any():
                    raise _Fault(f"vsti: NaN in vector SRAM row {x} cannot become an integer")
                z = irow(regs[d], True)
                I[z:z + vlen] = np.clip(np.rint(row.astype(np.float64)), INT32_MIN, INT32_MAX).astype(np.int32)
                return following
            return store_int
        d, s, value = ops["vd"], ops["isrc"], ops["rs"]

        def int_equal() -> int:  # vieq
            x = irow(regs[s], False)
            z = vrow(regs[d], True)
            V[z:z + vlen] = np.where(I[x:x + vlen] == regs[value], one, zero)
            return following
        return int_equal
