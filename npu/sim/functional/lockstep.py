"""Lock-step functional simulator: one program run on many memory images ("lanes") at once.

Why: a compiled tiny-model step executes ~30 k instructions on rows of 64-128 elements, so the
one-image simulator (npu.sim.functional.simulator) spends its time in numpy's per-call overhead,
not arithmetic. `make verify` runs the same step programs for 50 prompts; here each instruction
is ONE numpy call over every prompt's memory (a leading lane axis), which is where the speed comes
from (docs/compiler.md, "Functional simulator speed").

Semantics are exactly the one-image simulator's, lane by lane (tests/test_lockstep_sim.py compares
SHA-256 digests of every memory after every compiled tiny-model step program and every kernel):

- Every lane of a group shares the program counter, the hardware-loop stack and the pending-access
  tracker (they depend only on addresses and control flow). Integer and DRAM-address registers hold
  a Python int while all lanes agree, else a per-lane numpy array ("varying": a token id read with
  `lw`, an argmax index, an embedding row address). FP registers are per-lane float32 arrays.
- A varying value may flow through arithmetic, `sw`/`fsw`, DMA *DRAM* addresses, vargmax / vtopk /
  vieq operands. Where an instruction needs one value - an SRAM address, a DMA shape, a loop count,
  a branch decision - and the lanes disagree, the group splits before the instruction runs: one
  group per distinct value, each continuing alone from that pc (raise `Diverged`, the run loop
  partitions). Groups never merge again within a run.
- Scalar integer and address instructions reuse npu.sim.functional.scalar's handlers: directly when
  their operands are uniform, once per lane on that lane's registers when not.
- The errors are the one-image simulator's SimulationError with the same message, pc and
  instruction; `source` names the lanes of the group that faulted.

Not supported: strict mode (read-before-write tracking) - use FunctionalSimulator for that.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

import numpy as np

from numpy.lib.stride_tricks import as_strided

from npu.hw import numerics
from npu.hw.config import NPUConfig
from npu.hw.rows import MemoryAccessError, decode_rows, element_alignment, encode_rows, row_bytes
from npu.isa.assembler import Program, format_instruction
from npu.isa.encoding import EncodingError, Instruction, decode
from npu.isa.table import DRAM_FORMATS, SMOOTH_MODES, STORE_SCALE_RULES, SYNC_UNITS, Kind, Unit
from npu.sim.functional import control, scalar, vector
from npu.sim.functional.dma import checked_transfer_span
from npu.sim.functional.control import Loop
from npu.sim.functional.handlers import (
    HALT,
    INT32_MAX,
    INT32_MIN,
    Handler,
    InstructionFault,
    fault_handler,
)
from npu.sim.functional.memory import Sram, dram_bytes
from npu.sim.functional.simulator import SimulationError, _SyncTracker, guard_registers

__all__ = ["Diverged", "LaneDram", "LaneSram", "LockstepSimulator", "LockstepStats"]

_ONE, _ZERO = np.float32(1.0), np.float32(0.0)


class Diverged(Exception):
    """Raised by a handler, before any side effect, when its lanes need different control:
    `key` holds one value per lane of the running group; the run loop splits the group by it."""

    def __init__(self, key: np.ndarray):
        super().__init__("lanes diverge")
        self.key = np.asarray(key)


def _collapse(values: np.ndarray) -> int | np.ndarray:
    """A per-lane integer array as a Python int when every lane holds the same value."""
    first = values[0]
    if (values == first).all():
        return int(first)
    return values


def _uniform(value: int | np.ndarray) -> int:
    """The one value of a register the instruction needs uniform; Diverged when lanes differ."""
    if type(value) is int:
        return value
    raise Diverged(value)


class LaneDram:
    """Byte-addressed DRAM images, one row per lane (np.zeros: pages not touched stay unallocated)."""

    def __init__(self, lanes: int, size_bytes: int, mx_block: int):
        self.data = np.zeros((lanes, size_bytes), dtype=np.uint8)
        self.mx_block = mx_block

    @property
    def size(self) -> int:
        return self.data.shape[1]

    def _check(self, low: int, high: int, what: str) -> None:
        if low < 0 or high > self.size:
            raise MemoryAccessError(f"{what}: DRAM bytes [{low:#x}, {high:#x}) outside [0, {self.size:#x})")

    def write(self, addr: int, data: bytes | np.ndarray, fmt: str | None = None,
              lanes: int | Sequence[int] | slice = slice(None)) -> int:
        """npu.sim.functional.memory.Dram.write into the given lanes (default: all)."""
        raw = dram_bytes(data, fmt, self.mx_block)
        self._check(addr, addr + raw.size, "DRAM write")
        self.data[lanes, addr:addr + raw.size] = raw
        return int(raw.size)

    def read(self, lane: int, addr: int, shape: int | tuple[int, int], fmt: str | None = None) -> np.ndarray:
        """npu.sim.functional.memory.Dram.read of one lane."""
        if fmt is None:
            count = int(np.prod(shape))
            self._check(addr, addr + count, "DRAM read")
            return self.data[lane, addr:addr + count].copy()
        rows, cols = (1, shape) if isinstance(shape, int) else shape
        nbytes = row_bytes(fmt, cols, self.mx_block)
        self._check(addr, addr + rows * nbytes, "DRAM read")
        values = decode_rows(self.data[lane, addr:addr + rows * nbytes].reshape(rows, nbytes), fmt, cols,
                             self.mx_block)
        return values.reshape(cols) if isinstance(shape, int) else values


class LaneSram(Sram):
    """One SRAM per lane: `per_lane` is (lanes, elements); rounding is Sram's.

    Shared panels (the matrix SRAM, `shares_panels`): a DMA load that writes the same values into
    every lane (a weight panel: the same DRAM bytes in every lane) stores them once, in `shared`,
    and records the element range in `uniform`; `per_lane` is then stale there. A write that
    differs between lanes first copies the shared values of the ranges it overlaps into every
    lane (copy on write) and takes those ranges out of `uniform`; a tile op reads a weight tile
    inside one uniform range from `shared` (one copy for every lane). Where an element's value is
    kept is thus: in `shared` inside a uniform range, else in `per_lane`.

    `data` is for the host (tests, checks, preloads): it first copies every shared range into
    every lane, so it always shows, and lets the host change, what each lane's SRAM holds."""

    def __init__(self, lanes: int, name: str, elements: int, dtype: type, element_bytes: int, fmt: str | None,
                 shares_panels: bool = False):
        self.name, self.element_bytes, self.fmt, self.written = name, element_bytes, fmt, None
        self.per_lane = np.zeros((lanes, elements), dtype=dtype)
        self.shares_panels = shares_panels
        self.shared = np.zeros(elements if shares_panels else 0, dtype=dtype)
        self.uniform: list[tuple[int, int]] = []  # disjoint, sorted, never touching

    @property
    def data(self) -> np.ndarray:
        """Every lane's elements, (lanes, elements), with the shared panels copied in."""
        self.unshare(0, self.size)
        return self.per_lane

    @property
    def size(self) -> int:
        return self.per_lane.shape[1]

    def unshare(self, low: int, high: int, copy: bool = True) -> None:
        """Copy the shared values of elements [low, high) into every lane; that part of every
        uniform range is then kept per lane (the rest of each range stays shared). copy=False
        when the caller is about to overwrite all of [low, high) in every lane."""
        kept = []
        for a, b in self.uniform:
            if b <= low or high <= a:
                kept.append((a, b))
                continue
            lo, hi = max(a, low), min(b, high)
            if copy:
                self.per_lane[:, lo:hi] = self.shared[lo:hi]
            if a < lo:
                kept.append((a, lo))
            if hi < b:
                kept.append((hi, b))
        self.uniform = kept

    def share(self, low: int, high: int, values: np.ndarray) -> None:
        """Elements [low, high) of every lane become `values` (already rounded), stored once.
        The parts of other uniform ranges outside [low, high) stay shared; touching ranges merge
        (a weight tile loaded by several DMAs then reads as one)."""
        self.shared[low:high] = values
        pieces = [(low, high)]
        for a, b in self.uniform:
            if b <= low or high <= a:
                pieces.append((a, b))
                continue
            if a < low:
                pieces.append((a, low))
            if high < b:
                pieces.append((high, b))
        pieces.sort()
        merged = [pieces[0]]
        for a, b in pieces[1:]:
            if a == merged[-1][1]:
                merged[-1] = (merged[-1][0], b)
            else:
                merged.append((a, b))
        self.uniform = merged

    def shared_range(self, low: int, high: int) -> bool:
        """Whether elements [low, high) all lie in one uniform range (read them from `shared`)."""
        for a, b in self.uniform:
            if a <= low and high <= b:
                return True
        return False

    def overlaps_shared(self, low: int, high: int) -> bool:
        for a, b in self.uniform:
            if a < high and low < b:
                return True
        return False


@dataclass
class LockstepStats:
    """What one lock-step run did: instructions executed per lane (those of the lanes run),
    and how many groups the lanes ended in (1: no divergence)."""

    instructions: np.ndarray
    groups: int


@dataclass
class _Group:
    """A set of lanes at one pc with their own copy of the shared control state."""

    lanes: np.ndarray
    pc: int
    int_regs: list
    fp_regs: list
    addr_regs: list
    loops: list[Loop]
    pending: dict[str, list[list]]
    owed: set[str]
    budget: int


class _ScalarView:
    """The machine npu.sim.functional.scalar's handlers see when run for one lane (slow path)."""

    def __init__(self, sim: LockstepSimulator):
        self.int_regs: list[int] = [0] * 17
        self.addr_regs: list[int] = [0] * 8
        self.fp_regs = [np.float32(0)] * 8
        self.config, self.vlen, self.mlen, self.blen, self.strict = sim.config, sim.vlen, sim.mlen, sim.blen, False


class LockstepSimulator:
    """The dnpu for `lanes` memory images that run the same program in lock step.

    sim = LockstepSimulator(load_npu_config("dnpu-edge"), lanes=50, dram_size=1 << 22)
    sim.dram.write(addr, values, "bf16", lanes=3); sim.load(program); stats = sim.run()
    """

    def __init__(self, config: NPUConfig, lanes: int, dram_size: int = 1 << 24, check_sync: bool = True):
        if lanes < 1:
            raise ValueError(f"LockstepSimulator: lanes={lanes} must be at least 1")
        self.config, self.lanes, self.check_sync = config, lanes, check_sync
        self.vlen, self.mlen, self.blen = config.vlen, config.mlen, config.blen
        self.strict = False
        self.dram = LaneDram(lanes, dram_size, config.mx_block)
        vector_bytes = config.vector_element_bytes
        self.vector_sram = LaneSram(lanes, "vector SRAM", config.vector_sram.size_bytes // vector_bytes, np.float32,
                                    vector_bytes, config.formats.vector)
        self.matrix_sram = LaneSram(lanes, "matrix SRAM", config.matrix_sram.size_bytes // 2, np.float32, 2, "bf16",
                                    shares_panels=True)
        self.fp_sram = LaneSram(lanes, "FP SRAM", config.fp_sram.size_bytes // 4, np.float32, 4, "fp32")
        self.int_sram = LaneSram(lanes, "INT SRAM", config.int_sram.size_bytes // 4, np.int32, 4, None)
        self.srams = {"vector_sram": self.vector_sram, "matrix_sram": self.matrix_sram,
                      "fp_sram": self.fp_sram, "int_sram": self.int_sram}
        self.accumulators = np.zeros((lanes, config.accumulators, self.blen, self.mlen), dtype=np.float32)
        # the running group's state, mutated in place (the handlers hold references to these)
        self.int_regs: list = [0] * 17
        self.fp_regs: list = [np.zeros(lanes, np.float32) for _ in range(8)]
        self.addr_regs: list = [0] * 8
        self._loops: list[Loop] = []
        self.sync = _SyncTracker()
        self.selector: list = [slice(None)]  # [lane selector]: slice(None) = every lane, else an index array
        self.width: list[int] = [lanes]       # [lanes in the running group]
        self.program: Program | None = None
        self._decoded: dict[bytes, tuple] = {}

    @property
    def active_loops(self) -> list[Loop]:
        return self._loops

    # ---- loading ---------------------------------------------------------------------------
    def load(self, program: Program | np.ndarray | list[int]) -> None:
        """Decode every word once (cached per program); illegal words fault when reached."""
        if not isinstance(program, Program):
            program = Program(np.asarray(program, dtype=np.uint32))
        self.program = program
        key = program.words.tobytes()
        cached = self._decoded.get(key)
        if cached is not None:
            self._texts, self._handlers = cached
            return
        texts: list[str] = []
        handlers: list[Handler] = []
        for pc, word in enumerate(program.words):
            try:
                instruction = decode(int(word))
            except EncodingError as err:
                texts.append(f".word {int(word):#010x}")
                handlers.append(fault_handler(f"illegal instruction: {err}"))
                continue
            texts.append(format_instruction(instruction))
            handlers.append(self._build(pc, instruction))
        texts.append("<end of program>")
        handlers.append(fault_handler("ran past the end of the program without `halt`"))
        if len(self._decoded) >= 8:
            self._decoded.pop(next(iter(self._decoded)))
        self._decoded[key] = (texts, handlers)
        self._texts, self._handlers = texts, handlers

    # ---- running ---------------------------------------------------------------------------
    def run(self, lanes: Sequence[int] | None = None, max_instructions: int = 10_000_000) -> LockstepStats:
        """Run the loaded program from pc 0 on `lanes` (default: all) until every lane halts.

        Registers, loops, pending accesses and accumulators start at zero, as after
        FunctionalSimulator.load / reset; memories keep their data."""
        if self.program is None:
            raise SimulationError("no program loaded; call load() first", 0, "<none>")
        chosen = np.arange(self.lanes) if lanes is None else np.asarray(lanes, dtype=np.int64)
        if chosen.size == 0:
            return LockstepStats(np.zeros(0, np.int64), 0)
        if chosen.min() < 0 or chosen.max() >= self.lanes or np.unique(chosen).size != chosen.size:
            raise ValueError(f"LockstepSimulator.run: lanes {chosen.tolist()} must be distinct and "
                             f"in [0, {self.lanes})")
        counts = np.zeros(self.lanes, np.int64)
        self.accumulators[chosen] = 0
        n = chosen.size
        todo = [_Group(chosen, 0, [0] * 17, [np.zeros(n, np.float32) for _ in range(8)], [0] * 8, [],
                       {unit: [] for unit in SYNC_UNITS}, set(), max_instructions)]
        groups = 0
        while todo:
            group = todo.pop()
            executed, halted, split = self._run_group(group)
            counts[group.lanes] += executed
            if split is not None:
                todo.extend(reversed(split))
                continue
            groups += 1
            if not halted:
                self._raise(group, group.pc, f"instruction limit {max_instructions} reached without `halt`")
        return LockstepStats(counts[chosen], groups)

    def _enter(self, group: _Group) -> None:
        """Make `group` the running one: copy its state into the objects the handlers hold."""
        self.int_regs[:] = group.int_regs
        self.fp_regs[:] = group.fp_regs
        self.addr_regs[:] = group.addr_regs
        self._loops[:] = group.loops
        for unit in SYNC_UNITS:
            self.sync.pending[unit][:] = group.pending[unit]
        self.sync.registers.clear()
        self.sync.registers.update(group.owed)
        full = group.lanes.size == self.lanes and bool((group.lanes == np.arange(self.lanes)).all())
        self.selector[0] = slice(None) if full else group.lanes
        self.width[0] = group.lanes.size

    def _run_group(self, group: _Group) -> tuple[int, bool, list[_Group] | None]:
        """Run one group until halt, the budget, or a divergence (then: its subgroups)."""
        self._enter(group)
        handlers, loops = self._handlers, self._loops
        pc, executed, budget = group.pc, 0, group.budget
        try:
            while executed < budget:
                next_pc = handlers[pc]()
                executed += 1
                if next_pc == HALT:
                    group.pc = pc
                    return executed, True, None
                if loops and next_pc == loops[-1].end:
                    while loops and next_pc == loops[-1].end:
                        top = loops[-1]
                        top.remaining -= 1
                        if top.remaining > 0:
                            next_pc = top.start
                            break
                        loops.pop()
                pc = next_pc
        except Diverged as diverged:
            return executed, False, self._split(group, pc, budget - executed, diverged.key)
        except InstructionFault as fault:
            self._raise(group, pc, str(fault))
        except (MemoryAccessError, ValueError, FloatingPointError) as err:
            self._raise(group, pc, f"{type(err).__name__}: {err}")
        group.pc = pc
        return executed, False, None

    def _split(self, group: _Group, pc: int, budget: int, key: np.ndarray) -> list[_Group]:
        """One group per distinct value of `key` (in order of first lane), each at `pc` with a copy
        of the running state restricted to its lanes."""
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        parts = []
        for label in np.argsort(first):
            positions = np.flatnonzero(inverse == label)

            def pick(value):
                return value if type(value) is int else _collapse(value[positions])
            parts.append(_Group(group.lanes[positions], pc, [pick(v) for v in self.int_regs],
                                [v[positions] for v in self.fp_regs], [pick(v) for v in self.addr_regs],
                                [Loop(top.start, top.end, top.remaining) for top in self._loops],
                                copy.deepcopy(self.sync.pending), set(self.sync.registers), budget))
        return parts

    def _raise(self, group: _Group, pc: int, message: str) -> NoReturn:
        line = None
        if self.program is not None and pc < len(self.program.source_lines):
            line = self.program.source_lines[pc]
        shown = group.lanes.tolist()
        lanes = f"lanes {shown[:8]}{' ...' if len(shown) > 8 else ''}"
        raise SimulationError(message, pc, self._texts[pc], line, source=lanes) from None

    def instruction_text(self, pc: int) -> str:
        return self._texts[pc]

    # ---- handler construction --------------------------------------------------------------
    def _build(self, pc: int, ins: Instruction) -> Handler:
        spec = ins.spec
        if spec.dllm and not self.config.dllm_instructions:
            return fault_handler(f"{spec.mnemonic} is a dLLM instruction; "
                                 f"{self.config.name} has no dLLM instructions")
        builder = _BUILDERS.get(spec.mnemonic)
        if builder is None:
            if spec.unit is Unit.SCALAR:
                handler = _build_scalar_integer(self, pc, ins)
            else:
                raise LookupError(f"the lock-step simulator has no handler for `{spec.mnemonic}`")
        else:
            handler = builder(self, pc, ins)
        if self.check_sync and spec.mnemonic != "wait":
            handler = guard_registers(ins, handler, self.sync.registers)
        return handler


# ---- control -----------------------------------------------------------------------------------
def _build_branch(sim: LockstepSimulator, pc: int, ins: Instruction) -> Handler:
    """beq / bne / blt / bge: control.build_branch when both registers are uniform; else the
    per-lane outcome, and lanes that disagree on it split first."""
    inner, jump, regs, following = control.build_branch(sim, pc, ins), control.build_jump(sim, pc, ins), \
        sim.int_regs, pc + 1
    a, b = ins.operands["rs1"], ins.operands["rs2"]
    compare = {"beq": np.equal, "bne": np.not_equal, "blt": np.less, "bge": np.greater_equal}[ins.mnemonic]

    def branch() -> int:
        x, y = regs[a], regs[b]
        if type(x) is int and type(y) is int:
            return inner()
        taken = np.broadcast_to(compare(x, y), (max(np.size(x), np.size(y)),))
        if not (taken == taken[0]).all():
            raise Diverged(taken)
        return jump() if taken[0] else following
    return branch


def _build_loop(sim: LockstepSimulator, pc: int, ins: Instruction) -> Handler:
    inner, regs = control.build_loop(sim, pc, ins), sim.int_regs
    if ins.mnemonic == "loopi":
        return inner
    count = ins.operands["count"]

    def loop() -> int:
        _uniform(regs[count])
        return inner()
    return loop


# ---- scalar: integer and address registers -------------------------------------------------------
def _register_operands(ins: Instruction) -> tuple[list[int], list[int]]:
    """The int and address register indices an instruction names."""
    ints, addrs = [], []
    for operand in ins.spec.fields:
        if operand.kind is Kind.INT_REG:
            ints.append(ins.operands[operand.name])
        elif operand.kind is Kind.ADDR_REG:
            addrs.append(ins.operands[operand.name])
    return ints, addrs


def _build_scalar_integer(sim: LockstepSimulator, pc: int, ins: Instruction) -> Handler:
    """An integer / address-register instruction of npu.sim.functional.scalar: its own handler on
    the shared registers when the registers it names are uniform; else once per lane on that
    lane's values (a private register file), the results collapsed back."""
    fast = scalar.HANDLERS[ins.mnemonic](sim, pc, ins)
    view = _ScalarView(sim)
    slow = scalar.HANDLERS[ins.mnemonic](view, pc, ins)
    regs, aregs, width = sim.int_regs, sim.addr_regs, sim.width
    int_names, addr_names = _register_operands(ins)
    if not int_names and not addr_names:
        return fast

    def per_lane() -> int:
        n = width[0]
        lane_ints = [np.full(n, v, np.int64) if type(v) is int else v for v in regs]
        lane_addrs = [np.full(n, v, np.uint64) if type(v) is int else v for v in aregs]
        out_ints = np.empty((17, n), np.int64)
        out_addrs = np.empty((8, n), np.uint64)
        following = 0
        for j in range(n):
            view.int_regs[:] = [int(v[j]) for v in lane_ints]
            view.addr_regs[:] = [int(v[j]) for v in lane_addrs]
            following = slow()
            out_ints[:, j] = view.int_regs
            out_addrs[:, j] = view.addr_regs
        regs[:] = [_collapse(row) for row in out_ints]
        aregs[:] = [_collapse(row) for row in out_addrs]
        return following

    def integer() -> int:
        for i in int_names:
            if type(regs[i]) is not int:
                return per_lane()
        for i in addr_names:
            if type(aregs[i]) is not int:
                return per_lane()
        return fast()
    return integer


def _word_addresses(sim: LockstepSimulator, base: int | np.ndarray, offset: int, sram: Sram, space: str,
                    write: bool, what: str) -> tuple:
    """The (lane, word) index of a scalar load / store at base + offset; a base that differs between
    lanes (a row chosen by an argmax) addresses each lane's own word. Bounds and the pending
    accesses are checked for every lane's word, as the one-image simulator checks its one."""
    size, sync, lanes = sram.size, sim.sync, sim.selector[0]
    if type(base) is int:
        addr = base + offset
        if not 0 <= addr < size:
            raise InstructionFault(f"{what} word {addr} outside [0, {size})")
        sync.access("scalar", space, addr, addr + 1, write)
        return lanes, addr
    addrs = base + offset
    for addr in addrs.tolist():
        if not 0 <= addr < size:
            raise InstructionFault(f"{what} word {addr} outside [0, {size})")
    for addr in np.unique(addrs).tolist():
        sync.access("scalar", space, addr, addr + 1, write)
    return (np.arange(sim.lanes) if type(lanes) is slice else lanes), addrs


def _build_int_memory(sim: LockstepSimulator, pc: int, ins: Instruction) -> Handler:
    """lw / sw: one INT SRAM word per lane at base + offset."""
    ops, regs, following, rd = ins.operands, sim.int_regs, pc + 1, ins.operands.get("rd", 0) or 16
    base, offset, sram = ops["base"], ops["offset"], sim.int_sram
    data = sram.per_lane
    write, source = ins.mnemonic == "sw", ops.get("rs", 0)

    def memory() -> int:
        at = _word_addresses(sim, regs[base], offset, sram, "int_sram", write, "INT SRAM")
        if write:
            data[at] = regs[source]
        else:
            regs[rd] = _collapse(data[at].astype(np.int64))
        return following
    return memory


# ---- scalar: floating point (per-lane arrays) ----------------------------------------------------
def _build_fp_memory(sim: LockstepSimulator, pc: int, ins: Instruction) -> Handler:
    ops, regs, fregs, following = ins.operands, sim.int_regs, sim.fp_regs, pc + 1
    base, offset, sram = ops["base"], ops["offset"], sim.fp_sram
    data = sram.per_lane
    write = ins.mnemonic == "fsw"
    freg = ops["fs"] if write else ops["fd"]

    def memory() -> int:
        at = _word_addresses(sim, regs[base], offset, sram, "fp_sram", write, "FP SRAM")
        if write:
            data[at] = fregs[freg]
        else:
            fregs[freg] = data[at].astype(np.float32)
        return following
    return memory


def _build_flui(sim: LockstepSimulator, pc: int, ins: Instruction) -> Handler:
    fregs, following, d, width = sim.fp_regs, pc + 1, ins.operands["fd"], sim.width
    value = np.array([ins.operands["value"] << 16], dtype=np.uint32).view(np.float32)[0]

    def flui() -> int:
        fregs[d] = np.full(width[0], value, np.float32)
        return following
    return flui


def _build_fp_binary(sim: LockstepSimulator, pc: int, ins: Instruction) -> Handler:
    fregs, following = sim.fp_regs, pc + 1
    d, a, b = ins.operands["fd"], ins.operands["fs1"], ins.operands["fs2"]
    operation = scalar._FP_BINARY_OPERATIONS[ins.mnemonic]

    def binary() -> int:
        fregs[d] = operation(fregs[a], fregs[b]).astype(np.float32)
        return following
    return binary


def _build_fp_unary(sim: LockstepSimulator, pc: int, ins: Instruction) -> Handler:
    name, fregs, following = ins.mnemonic, sim.fp_regs, pc + 1
    d, s = ins.operands["fd"], ins.operands["fs"]
    hardware = scalar._FP_HARDWARE_UNARY.get(name)
    simple = scalar._FP_SIMPLE_UNARY.get(name)

    def unary() -> int:
        x = fregs[s]
        fregs[d] = (hardware(x) if hardware is not None else np.asarray(simple(x))).astype(np.float32)
        return following
    return unary


def _build_fp_compare(sim: LockstepSimulator, pc: int, ins: Instruction) -> Handler:
    regs, fregs, following = sim.int_regs, sim.fp_regs, pc + 1
    rd, a, b = ins.operands.get("rd", 0) or 16, ins.operands["fs1"], ins.operands["fs2"]
    compare = scalar._FP_COMPARISONS[ins.mnemonic]

    def fcompare() -> int:
        regs[rd] = _collapse(compare(fregs[a], fregs[b]).astype(np.int64))
        return following
    return fcompare


def _build_int_to_float(sim: LockstepSimulator, pc: int, ins: Instruction) -> Handler:
    regs, fregs, following, width = sim.int_regs, sim.fp_regs, pc + 1, sim.width
    d, s = ins.operands["fd"], ins.operands["rs"]

    def int_to_float() -> int:
        value = regs[s]
        fregs[d] = (np.full(width[0], np.float32(value), np.float32) if type(value) is int
                    else value.astype(np.float32))
        return following
    return int_to_float


def _build_bits_to_float(sim: LockstepSimulator, pc: int, ins: Instruction) -> Handler:
    regs, fregs, following, width = sim.int_regs, sim.fp_regs, pc + 1, sim.width
    d, s = ins.operands["fd"], ins.operands["rs"]

    def bits_to_float() -> int:
        bits = np.broadcast_to(np.asarray(regs[s], np.int64) & 0xFFFFFFFF, (width[0],))
        fregs[d] = bits.astype(np.uint32).view(np.float32).copy()
        return following
    return bits_to_float


def _build_float_bits(sim: LockstepSimulator, pc: int, ins: Instruction) -> Handler:
    regs, fregs, following = sim.int_regs, sim.fp_regs, pc + 1
    rd, s = ins.operands.get("rd", 0) or 16, ins.operands["fs"]

    def float_bits() -> int:
        bits = np.asarray(fregs[s], np.float32).view(np.uint32).astype(np.int64)
        regs[rd] = _collapse(((bits + (1 << 31)) & 0xFFFFFFFF) - (1 << 31))
        return following
    return float_bits


def _build_float_to_int(sim: LockstepSimulator, pc: int, ins: Instruction) -> Handler:
    regs, fregs, following = sim.int_regs, sim.fp_regs, pc + 1
    rd, s = ins.operands.get("rd", 0) or 16, ins.operands["fs"]

    def float_to_int() -> int:
        x = fregs[s]
        if np.isnan(x).any():
            raise InstructionFault(f"fcvt.i.f of NaN in f{s}")
        regs[rd] = _collapse(np.clip(np.rint(x.astype(np.float64)), INT32_MIN, INT32_MAX).astype(np.int64))
        return following
    return float_to_int


# ---- DMA ---------------------------------------------------------------------------------------
def _rows_view(data: np.ndarray, start: int, stride: int, rows: int, width: int,
               write: bool = True) -> np.ndarray | None:
    """Every lane's data[start + stride * r + c] (r < rows, c < width) as a (lanes, rows, width)
    view, in bounds (checked by the caller). To write through, rows must not overlap (then it is
    the fancy-indexed write of the one-image simulator); a view to read needs stride >= 0. Else
    None (index instead)."""
    if rows > 1 and (stride < 0 or (write and stride < width)):
        return None
    item = data.itemsize
    return as_strided(data[:, start:], shape=(data.shape[0], rows, width),
                      strides=(data.strides[0], (stride if rows > 1 else width) * item, item))


_SRAM_BY_SUFFIX = {"v": "vector_sram", "m": "matrix_sram", "f": "fp_sram", "i": "int_sram"}


def _build_transfer(sim: LockstepSimulator, pc: int, ins: Instruction) -> Handler:
    """npu.sim.functional.dma.build_transfer per lane; the DRAM address may differ between lanes
    (an embedding row chosen by a token id), the SRAM side and the shape may not."""
    name, ops, regs, aregs, selector = ins.mnemonic, ins.operands, sim.int_regs, sim.addr_regs, sim.selector
    following = pc + 1
    fmt = DRAM_FORMATS[ops["fmt"]]
    target = _SRAM_BY_SUFFIX[name[-1]]
    sram = sim.srams[target]
    store, kv = name.startswith("dst"), "kv" in name
    scale_rule = STORE_SCALE_RULES.get(name, "ocp")
    if (fmt == "int32") != (target == "int_sram"):
        message = ("INT SRAM transfers use the int32 format" if target == "int_sram"
                   else f"int32 is for INT SRAM only; {sram.name} holds floating-point values")
        return fault_handler(f"{name} with format {fmt}: {message}")
    dram, vector_sram, mx_block, sync = sim.dram, sim.vector_sram, sim.config.mx_block, sim.sync
    align = element_alignment(fmt)
    data = sram.per_lane
    every_lane = np.arange(sim.lanes)
    shares_panels = sram.shares_panels
    bf16_to_bf16 = fmt == "bf16" and sram.fmt == "bf16"

    def transfer() -> int:
        first, rows, cols, dstride = (_uniform(regs[ops[key]]) for key in ("sram", "rows", "cols", "dstride"))
        sstride = cols if kv else _uniform(regs[ops["sstride"]])
        scale_at = _uniform(regs[ops["scale"]]) if kv else 0
        base = aregs[ops["dram"]]
        if rows < 0 or cols < 0:
            raise InstructionFault(f"negative shape rows={rows}, cols={cols}")
        if rows == 0 or cols == 0:
            return following
        nbytes = row_bytes(fmt, cols, mx_block)
        varying = type(base) is not int
        bases = base.astype(np.int64) if varying else np.int64(base)
        if varying:
            lows = [int(v) for v in base]
            misaligned = next((v for v in lows if v % align), None)
            if misaligned is not None or dstride % align:
                shown = misaligned if misaligned is not None else lows[0]
                raise InstructionFault(f"DRAM address {shown:#x} / stride {dstride} not aligned to {align} bytes "
                                       f"for {fmt}")
            span = dstride * (rows - 1)
            low, high = min(lows) + min(span, 0), max(lows) + max(span, 0) + nbytes
        else:
            if base % align or dstride % align:
                raise InstructionFault(f"DRAM address {base:#x} / stride {dstride} not aligned to {align} bytes "
                                       f"for {fmt}")
            span = dstride * (rows - 1)
            low, high = base + min(span, 0), base + max(span, 0) + nbytes
        index, sram_low, sram_high = checked_transfer_span(dram, low, high, sram, first, sstride, rows, cols)
        lanes = selector[0]
        lane_index = every_lane if type(lanes) is slice else lanes
        scale = None
        if kv:
            if scale_at < 0 or scale_at + cols > vector_sram.size:
                raise InstructionFault(f"scale row vector SRAM [{scale_at}, {scale_at + cols}) "
                                       f"outside [0, {vector_sram.size})")
            sync.access("dma", "vector_sram", scale_at, scale_at + cols, False)
            scale = vector_sram.per_lane[lanes, scale_at:scale_at + cols]
        sync.access("dma", target, sram_low, sram_high, not store)
        row_starts = np.arange(rows, dtype=np.int64) * dstride
        if varying:
            byte_index = (bases[:, None, None] + row_starts[None, :, None]) + np.arange(nbytes)[None, None, :]
            dram_at = (lane_index[:, None, None], byte_index)
        else:
            byte_index = (base + row_starts)[:, None] + np.arange(nbytes)[None, :]
            dram_at = (lanes, byte_index) if type(lanes) is slice else (lane_index[:, None, None], byte_index[None])
        sram_at = (lanes, index) if type(lanes) is slice else (lane_index[:, None, None], index[None])
        count = lane_index.size
        full = type(lanes) is slice  # every lane: strided views instead of gathers where rows do not overlap
        dram_view = _rows_view(dram.data, base, dstride, rows, nbytes, store) if full and not varying else None
        sram_view = _rows_view(data, first, sstride, rows, cols, not store) if full else None
        if store:
            values = data[sram_at] if sram_view is None else sram_view
            if scale is not None:
                values = values * numerics.hw_recip(scale)[:, None, :]
            encoded = encode_rows(values.reshape(count * rows, cols), fmt, mx_block, scale_rule)
            if dram_view is None:
                dram.data[dram_at] = encoded.reshape(count, rows, nbytes)
            else:
                dram_view[...] = encoded.reshape(count, rows, nbytes)
            return following
        else:
            raw = dram.data[dram_at] if dram_view is None else dram_view
            if count > 1 and np.array_equal(raw[1], raw[0]) and (raw == raw[0]).all():  # (weights) decode once
                values = decode_rows(raw[0], fmt, cols, mx_block)[None]
            else:
                values = decode_rows(raw.reshape(count * rows, nbytes), fmt, cols, mx_block).reshape(count, rows, cols)
            if scale is not None:
                values = values * scale[:, None, :]
            if shares_panels:
                contiguous = rows == 1 or sstride == cols  # elements [sram_low, sram_high) exactly
                if full and contiguous and values.shape[0] == 1:  # one copy for every lane: a shared panel
                    sram.share(sram_low, sram_high, sram.round(values).reshape(-1))
                    return following
                if sram.uniform:  # copy on write, unless every lane's copy is overwritten whole
                    sram.unshare(sram_low, sram_high, copy=not (full and contiguous))
            if not (bf16_to_bf16 and scale is None and not np.isnan(values).any()):
                values = sram.round(values)  # (bf16 rows decode to bf16 values: only a NaN would change)
            if sram_view is None:
                data[sram_at] = values
            else:
                sram_view[...] = values
        return following
    return transfer


# ---- matrix ------------------------------------------------------------------------------------
def _build_matrix(sim: LockstepSimulator, pc: int, ins: Instruction) -> Handler:
    """mm / mma / mmt / mmta / mwb of npu.sim.functional.matrix, every lane in one numpy call."""
    name, ops, regs, following, selector = ins.mnemonic, ins.operands, sim.int_regs, pc + 1, sim.selector
    vector_sram, matrix_sram, sync, mlen, blen = sim.vector_sram, sim.matrix_sram, sim.sync, sim.mlen, sim.blen
    acc, count = ops["acc"], sim.accumulators.shape[1]
    if acc >= count:
        return fault_handler(f"{name}: accumulator {acc} does not exist: {sim.config.name} has {count} "
                             f"(`accumulators` in its preset)")
    accumulators, V, M = sim.accumulators, vector_sram.per_lane, matrix_sram.per_lane
    offsets = np.arange(blen, dtype=np.int64)[:, None], np.arange(mlen, dtype=np.int64)[None, :]
    tile = mlen * mlen
    accumulate, transpose = name in ("mma", "mmta"), name in ("mmt", "mmta")
    first_key = "dst" if name == "mwb" else "act"

    def activation_rows(write: bool) -> np.ndarray:
        """The BLEN rows of MLEN elements, checked: a view of every lane's rows, or an index."""
        first, stride = _uniform(regs[ops[first_key]]), _uniform(regs[ops["stride"]])
        index = first + stride * offsets[0] + offsets[1]
        low, high = int(index.min()), int(index.max()) + 1
        if low < 0 or high > vector_sram.size:
            raise InstructionFault(f"vector SRAM elements [{low}, {high}) outside [0, {vector_sram.size})")
        sync.access("matrix", "vector_sram", low, high, write)
        lanes = selector[0]
        if type(lanes) is slice:
            view = _rows_view(V, first, stride, blen, mlen, write)
            return (lanes, index) if view is None else view
        return (lanes[:, None, None], index[None])

    def writeback() -> int:
        at = activation_rows(True)
        values = vector_sram.round(accumulators[selector[0], acc])
        if type(at) is tuple:
            V[at] = values
        else:
            at[...] = values
        return following

    def multiply() -> int:
        w_at = _uniform(regs[ops["w"]])
        at = activation_rows(False)
        act = V[at] if type(at) is tuple else at
        if w_at < 0 or w_at + tile > matrix_sram.size:
            raise InstructionFault(f"weight tile matrix SRAM [{w_at}, {w_at + tile}) outside [0, {matrix_sram.size})")
        if w_at % mlen:
            raise InstructionFault(f"weight tile address {w_at} is not aligned to a matrix SRAM row of {mlen}")
        sync.access("matrix", "matrix_sram", w_at, w_at + tile, False)
        lanes = selector[0]
        if matrix_sram.shared_range(w_at, w_at + tile):  # a weight panel: one copy serves every lane
            weight = matrix_sram.shared[None, w_at:w_at + tile]
        else:
            if matrix_sram.uniform:
                matrix_sram.unshare(w_at, w_at + tile)  # part shared, part per lane: per lane
            weight = M[lanes, w_at:w_at + tile]
            if weight.shape[0] > 1 and (weight == weight[0]).all():  # the same tile in every lane
                weight = weight[:1]
        weight = weight.reshape(-1, mlen, mlen)
        start = accumulators[lanes, acc] if accumulate else np.zeros(act.shape[:1] + (blen, mlen), np.float32)
        accumulators[lanes, acc] = numerics.hw_matmul_accumulate(
            start, act, weight.swapaxes(-1, -2) if transpose else weight)
        return following
    return writeback if name == "mwb" else multiply


# ---- vector ------------------------------------------------------------------------------------
def _row_checker(sim: LockstepSimulator, sram: Sram, space: str, aligned: bool):
    """vector.row_checker for a uniform row address (the lanes that disagree split first)."""
    size, sync, vlen, regs = sram.size, sim.sync, sim.vlen, sim.int_regs

    def check(register: int, write: bool) -> int:
        addr = _uniform(regs[register])
        if addr < 0 or addr + vlen > size:
            raise InstructionFault(f"{sram.name} elements [{addr}, {addr + vlen}) outside [0, {size})")
        if aligned and addr % vlen:
            raise InstructionFault(f"{sram.name} address {addr} is not aligned to a row of VLEN={vlen}")
        sync.access("vector", space, addr, addr + vlen, write)
        return addr
    return check


# The element-wise hardware functions (npu.hw.numerics) a bf16 vector SRAM feeds: a function of
# one element's bits, so on bf16 inputs (65,536 patterns) one table holds every result, rounded
# as the vector SRAM stores it. Not for a swapped entry (npu.sim.functional.recording records calls).
_TABLED_FUNCTIONS = frozenset({numerics.hw_exp, numerics.hw_recip, numerics.hw_rsqrt, numerics.hw_silu})
_TABLES: dict = {}
_LOW_HALF = np.uint32(0xFFFF)


def _bf16_table(operation, sram: Sram) -> np.ndarray | None:
    """round(operation(x)) for every bf16 bit pattern x (index = the pattern), when `sram` holds
    bf16 values; else None."""
    if sram.fmt != "bf16":
        return None
    table = _TABLES.get(operation)
    if table is None:
        inputs = (np.arange(1 << 16, dtype=np.uint32) << 16).view(np.float32)
        table = _TABLES[operation] = sram.round(operation(inputs))
    return table


# Integer-register operands of vector instructions that are values, not SRAM row addresses.
_VECTOR_VALUE_OPERANDS = frozenset({"ridx", "base", "rs", "k"})


def _vector_handler(sim: LockstepSimulator, pc: int, ins: Instruction) -> Handler:
    """A vector instruction whose row addresses differ between lanes splits them before it runs."""
    inner, regs = _vector_body(sim, pc, ins), sim.int_regs
    addresses = [ins.operands[f.name] for f in ins.spec.fields
                 if f.kind is Kind.INT_REG and f.name not in _VECTOR_VALUE_OPERANDS]

    def vector_instruction() -> int:
        for register in addresses:
            if type(regs[register]) is not int:
                raise Diverged(regs[register])
        return inner()
    return vector_instruction


def _vector_body(sim: LockstepSimulator, pc: int, ins: Instruction) -> Handler:
    """Every vector instruction: the row arithmetic of npu.sim.functional.vector on (lanes, VLEN)."""
    name, ops, regs, fregs, following, vlen = ins.mnemonic, ins.operands, sim.int_regs, sim.fp_regs, pc + 1, sim.vlen
    V, I, F, selector = sim.vector_sram.per_lane, sim.int_sram.per_lane, sim.fp_sram.per_lane, sim.selector
    rnd = sim.vector_sram.round
    vrow = _row_checker(sim, sim.vector_sram, "vector_sram", True)
    frow = _row_checker(sim, sim.fp_sram, "fp_sram", False)
    irow = _row_checker(sim, sim.int_sram, "int_sram", False)

    # The operation tables are looked up when the handler is built, as the one-image simulator
    # does, so npu.sim.functional.recording's swapped entries are used here too.
    if name in vector._BINARY_OPERATIONS:
        operation = vector._BINARY_OPERATIONS[name]
        d, a, b = ops["vd"], ops["vs1"], ops["vs2"]

        def binary() -> int:
            x, y = vrow(a, False), vrow(b, False)
            lanes = selector[0]
            out = operation(V[lanes, x:x + vlen], V[lanes, y:y + vlen])
            z = vrow(d, True)
            V[lanes, z:z + vlen] = rnd(out)
            return following
        return binary
    if name in vector._UNARY_OPERATIONS:
        operation = vector._UNARY_OPERATIONS[name]
        d, s = ops["vd"], ops["vs"]
        table = _bf16_table(operation, sim.vector_sram) if operation in _TABLED_FUNCTIONS else None
        if table is not None:
            def unary_by_table() -> int:
                x = vrow(s, False)
                lanes = selector[0]
                rows = V[lanes, x:x + vlen]
                bits = rows.view(np.uint32)
                if (bits & _LOW_HALF).any():  # not bf16 values (a host write): compute them
                    out = rnd(operation(rows))
                else:
                    out = table[bits >> 16]
                z = vrow(d, True)
                V[lanes, z:z + vlen] = out
                return following
            return unary_by_table

        def unary() -> int:
            x = vrow(s, False)
            lanes = selector[0]
            out = operation(V[lanes, x:x + vlen])
            z = vrow(d, True)
            V[lanes, z:z + vlen] = rnd(out)
            return following
        return unary
    if name in vector._SCALAR_OPERATIONS:
        operation = vector._SCALAR_OPERATIONS[name]
        d, s, fs = ops["vd"], ops["vs"], ops["fs"]

        def with_scalar() -> int:
            x = vrow(s, False)
            lanes = selector[0]
            out = operation(V[lanes, x:x + vlen], fregs[fs][:, None])
            z = vrow(d, True)
            V[lanes, z:z + vlen] = rnd(out)
            return following
        return with_scalar
    if name == "vbcast":
        d, fs = ops["vd"], ops["fs"]

        def broadcast() -> int:
            z = vrow(d, True)
            V[selector[0], z:z + vlen] = rnd(np.repeat(fregs[fs][:, None], vlen, axis=1))
            return following
        return broadcast
    if name == "vrothalf":
        d, s, group = ops["vd"], ops["vs"], 1 << ops["glog2"]
        if not 2 <= group <= vlen:
            return fault_handler(f"vrothalf group 2^{ops['glog2']} = {group} must be in [2, VLEN={vlen}]")

        def rotate_half() -> int:
            x = vrow(s, False)
            lanes = selector[0]
            rows = V[lanes, x:x + vlen]
            grouped = rows.reshape(rows.shape[0], -1, group)
            out = np.concatenate([-grouped[..., group // 2:], grouped[..., :group // 2]], axis=-1)
            z = vrow(d, True)
            V[lanes, z:z + vlen] = out.reshape(rows.shape[0], vlen)
            return following
        return rotate_half
    if name in ("vsum", "vmaxr"):
        fd, s = ops["fd"], ops["vs"]

        def reduce() -> int:
            x = vrow(s, False)
            rows = V[selector[0], x:x + vlen]
            if name == "vsum":
                fregs[fd] = (fregs[fd] + numerics.hw_tree_sum(rows)).astype(np.float32)
            else:
                fregs[fd] = numerics.hw_maximum(fregs[fd], numerics.hw_max_reduce(rows)).astype(np.float32)
            return following
        return reduce
    if name == "vldf":
        d, s = ops["vd"], ops["fsrc"]

        def load_fp() -> int:
            x = frow(s, False)
            z = vrow(d, True)
            lanes = selector[0]
            V[lanes, z:z + vlen] = rnd(F[lanes, x:x + vlen])
            return following
        return load_fp
    if name == "vstf":
        d, s = ops["fdst"], ops["vs"]

        def store_fp() -> int:
            x = vrow(s, False)
            z = frow(d, True)
            lanes = selector[0]
            F[lanes, z:z + vlen] = V[lanes, x:x + vlen]
            return following
        return store_fp
    if name == "vldi":
        d, s = ops["vd"], ops["isrc"]

        def load_int() -> int:
            x = irow(s, False)
            z = vrow(d, True)
            lanes = selector[0]
            V[lanes, z:z + vlen] = rnd(I[lanes, x:x + vlen].astype(np.float32))
            return following
        return load_int
    if name == "vsti":
        d, s = ops["idst"], ops["vs"]

        def store_int() -> int:
            x = vrow(s, False)
            lanes = selector[0]
            rows = V[lanes, x:x + vlen]
            if np.isnan(rows).any():
                raise InstructionFault(f"vsti: NaN in vector SRAM row {x} cannot become an integer")
            z = irow(d, True)
            I[lanes, z:z + vlen] = np.clip(np.rint(rows.astype(np.float64)), INT32_MIN, INT32_MAX).astype(np.int32)
            return following
        return store_int
    if name == "vieq":
        d, s, value = ops["vd"], ops["isrc"], ops["rs"]

        def int_equal() -> int:
            x = irow(s, False)
            z = vrow(d, True)
            lanes = selector[0]
            wanted = regs[value] if type(regs[value]) is int else regs[value][:, None]
            V[lanes, z:z + vlen] = np.where(I[lanes, x:x + vlen] == wanted, _ONE, _ZERO)
            return following
        return int_equal
    if name == "vargmax":
        fmax, ridx, s, base = ops["fmax"], ops["ridx"] or 16, ops["vs"], ops["base"]

        def argmax() -> int:
            x = vrow(s, False)
            rows = V[selector[0], x:x + vlen]
            if np.isnan(rows).any():
                rows = np.where(np.isnan(rows), -np.inf, rows).astype(np.float32)
            lane = np.argmax(rows, axis=1)
            best = rows[np.arange(rows.shape[0]), lane]
            wins = best > fregs[fmax]
            if wins.any():
                fregs[fmax] = np.where(wins, best, fregs[fmax]).astype(np.float32)
                index = np.asarray(regs[base], np.int64) + lane
                index = ((index + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
                regs[ridx] = _collapse(np.where(wins, index, np.asarray(regs[ridx], np.int64)))
            return following
        return argmax
    if name == "vrank":
        d, c, o = ops["vd"], ops["vcand"], ops["vother"]
        lane_numbers = np.arange(vlen)

        def rank() -> int:
            x, y = vrow(c, False), vrow(o, False)
            lanes = selector[0]
            cand, other = V[lanes, x:x + vlen], V[lanes, y:y + vlen]
            earlier = (y + lane_numbers)[None, :] < (x + lane_numbers)[:, None]
            beats = (other[:, None, :] > cand[:, :, None]) | ((other[:, None, :] == cand[:, :, None]) & earlier)
            z = irow(d, False)
            irow(d, True)
            I[lanes, z:z + vlen] += beats.sum(axis=2).astype(np.int32)
            return following
        return rank
    if name == "vtopk":
        d, rk, e, k = ops["vd"], ops["vrank"], ops["velig"], ops["k"]

        def topk() -> int:
            ranks = irow(rk, False)
            x = vrow(e, False)
            lanes = selector[0]
            limit = regs[k] if type(regs[k]) is int else regs[k][:, None]
            mask = (V[lanes, x:x + vlen] != 0) & (I[lanes, ranks:ranks + vlen] < limit)
            z = vrow(d, True)
            V[lanes, z:z + vlen] = np.where(mask, _ONE, _ZERO)
            return following
        return topk
    if name == "vthresh":
        d, c, e, tau = ops["vd"], ops["vconf"], ops["velig"], ops["tau"]

        def threshold() -> int:
            x, y = vrow(c, False), vrow(e, False)
            lanes = selector[0]
            mask = (V[lanes, y:y + vlen] != 0) & (V[lanes, x:x + vlen] >= fregs[tau][:, None])
            z = vrow(d, True)
            V[lanes, z:z + vlen] = np.where(mask, _ONE, _ZERO)
            return following
        return threshold
    if name == "vsel":
        d, a, b, m = ops["vd"], ops["vs1"], ops["vs2"], ops["vmask"]

        def select() -> int:
            x, y, w = vrow(a, False), vrow(b, False), vrow(m, False)
            lanes = selector[0]
            out = np.where(V[lanes, w:w + vlen] != 0, V[lanes, x:x + vlen], V[lanes, y:y + vlen])
            z = vrow(d, True)
            V[lanes, z:z + vlen] = out
            return following
        return select
    if name == "vseli":
        d, a, b, m = ops["idst"], ops["isrc1"], ops["isrc2"], ops["vmask"]

        def select_int() -> int:
            x, y, w = irow(a, False), irow(b, False), vrow(m, False)
            lanes = selector[0]
            out = np.where(V[lanes, w:w + vlen] != 0, I[lanes, x:x + vlen], I[lanes, y:y + vlen])
            z = irow(d, True)
            I[lanes, z:z + vlen] = out
            return following
        return select_int
    if name == "vsmscale":
        d, s, mode = ops["vd"], ops["vs"], SMOOTH_MODES[ops["mode"]]

        def smoothing_scale() -> int:
            x = vrow(s, False)
            z = vrow(d, True)
            lanes = selector[0]
            V[lanes, z:z + vlen] = rnd(numerics.smoothing_factor(V[lanes, x:x + vlen], mode))
            return following
        return smoothing_scale
    raise LookupError(f"the lock-step simulator has no vector handler for `{name}`")


_BUILDERS = {
    "halt": control.build_halt, "nop": control.build_nop, "wait": control.build_wait, "j": control.build_jump,
    **dict.fromkeys(("beq", "bne", "blt", "bge"), _build_branch),
    "loop": _build_loop, "loopi": _build_loop,
    "lw": _build_int_memory, "sw": _build_int_memory,
    "flw": _build_fp_memory, "fsw": _build_fp_memory, "flui": _build_flui,
    **dict.fromkeys(scalar._FP_BINARY_OPERATIONS, _build_fp_binary),
    **dict.fromkeys([*scalar._FP_SIMPLE_UNARY, *scalar._FP_HARDWARE_UNARY], _build_fp_unary),
    **dict.fromkeys(scalar._FP_COMPARISONS, _build_fp_compare),
    "fcvt.f.i": _build_int_to_float, "fcvt.i.f": _build_float_to_int,
    "fmv.f.i": _build_bits_to_float, "fmv.i.f": _build_float_bits,
    **dict.fromkeys(("mm", "mma", "mmt", "mmta", "mwb"), _build_matrix),
    **dict.fromkeys(("dld.v", "dst.v", "dld.m", "dld.f", "dst.f", "dld.i", "dst.i", "dldkv.v", "dldkv.m",
                     "dstkv.v", "dstnc.v", "dstnc.f", "dstkvnc.v"), _build_transfer),
    **dict.fromkeys(vector.HANDLERS, _vector_handler),
}
