"""Static cost of a program: its loops costed from a few iterations and their trip counts.

A compiled step executes millions of instructions (an LLaDA-8B step: 13 M) but is a few ten
thousand words of straight-line code and zero-overhead hardware loops. `static_segments` walks
the program once in program order, as the dynamic trace (npu.sim.analytical.program) does - the
functional simulator executes the scalar and control instructions, so register values (DMA
shapes and addresses, vector rows, loop counts, branch outcomes) are the program's own, and the
data instructions are fed to a `SegmentBuilder` by the same `DataIssuer` - except that a
hardware loop runs only as many iterations as its timing needs:

- a loop body without `wait` stays inside one segment: `SegmentBuilder.repeat` runs it until
  two iterations move every clock alike, then extrapolates the rest;
- a loop body with `wait`s is a sequence of segments per iteration: once the last p iterations
  (p = 1.. MAX_PERIOD, e.g. one KV head load per p query heads) closed the same segments as the
  p before them, the middle iterations become a `SegmentGroup` of those segments x their count
  (`SegmentClock` extrapolates groups from two real passes); the last iteration runs for real.

After skipping iterations the walk's machine state - integer and address registers, INT SRAM
when the body stores to it, the weight tile the array holds - is set to what those iterations
would have left: each is checked to advance by the same amount per p iterations (addresses,
counters) and extrapolated linearly. So a step costs a few hundred thousand builder calls
instead of a trace of every instruction, and agrees with the trace wherever the skipped
iterations are like the ones run (tests compare the two on compiled steps).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from npu.hw.config import NPUConfig
from npu.hw.technology import EnergyTable, LatencyParameters
from npu.isa.assembler import Program
from npu.isa.table import Unit
from npu.sim.analytical.program import (
    DataIssuer,
    ProgramEstimate,
    decode_program,
    estimate_segments,
    region_lookup,
)
from npu.sim.analytical.segments import DMA_CHUNK_BYTES, CostCache, DramPipe, SegmentBuilder, SegmentGroup
from npu.sim.functional import FunctionalSimulator

MAX_PERIOD = 8  # longest repeating pattern of loop iterations looked for (GQA: query heads per KV head)


# The machine state a loop iteration advances: integer + address registers + the weight tile the
# array holds (one int64 vector), and INT SRAM when the loop body stores to it.
State = tuple[np.ndarray, "np.ndarray | None"]


class _Halted(Exception):
    """The walk reached `halt`: the program's segments are complete."""


class _Walk:
    """One walk of a program in program order, collecting its segments and segment groups."""

    def __init__(self, program: Program, config: NPUConfig, params: LatencyParameters | None,
                 pipe: DramPipe, region: Callable[[int], str]):
        self.functional = functional = FunctionalSimulator(config, dram_size=64, check_sync=False)
        functional.load(program)
        self.decoded = decode_program(functional)
        self.handlers = [functional.handler(pc) for pc in range(len(program))]
        self.regs, self.aregs = functional.int_regs, functional.addr_regs
        self.int_memory = functional.int_sram.data
        self.issuer = DataIssuer(functional, config.mlen)
        self.config, self.params, self.pipe, self.region = config, params, pipe, region
        self.costs = CostCache(config, params or config.technology.latency, pipe.chunk_bytes)
        self.items: list = []
        self.builder = self._builder(False)
        # prefix counts: does [start, end) hold a wait (or halt) / an INT SRAM store?
        waits, stores = [0], [0]
        for item in self.decoded:
            name = item.mnemonic if item is not None else ""
            waits.append(waits[-1] + (name in ("wait", "halt")))
            stores.append(stores[-1] + (name == "sw"))
        self.waits, self.stores = waits, stores

    def _builder(self, matrix_busy: bool) -> SegmentBuilder:
        return SegmentBuilder(self.config, params=self.params, pipe=self.pipe, matrix_busy=matrix_busy,
                              costs=self.costs)

    # ---- straight-line code ------------------------------------------------------------------
    def walk(self, pc: int, end: int) -> None:
        """Walk [pc, end): scalar and control instructions execute, data instructions are costed,
        a `wait` closes the segment, a loop goes to `loop`."""
        decoded, handlers = self.decoded, self.handlers
        while pc < end:
            item = decoded[pc]
            if item is None:
                handlers[pc]()  # raises: an illegal word
                raise RuntimeError(f"pc {pc}: the functional simulator accepted an undecodable instruction")
            unit, name = item.unit, item.mnemonic
            builder = self.builder
            if unit is Unit.SCALAR:
                builder.scalar(name, reads=item.reads, writes=item.writes)
                pc = handlers[pc]()
            elif unit is not Unit.CONTROL:
                self.issuer.issue(builder, item)
                pc += 1
            elif name in ("loop", "loopi"):
                ops = item.operands
                count = ops["count"] if name == "loopi" else self.regs[ops["count"]]
                body_end = pc + 1 + ops["end"]
                builder.control(name, reads=item.reads)
                if count > 0:
                    self.loop(count, pc + 1, body_end)
                pc = body_end
            elif name == "wait":
                builder.label = self.region(pc)
                self.items.append(builder.close(item.waits))
                self.builder = self._builder("matrix" not in item.waits and builder.units["matrix"].ops > 0)
                pc += 1
            elif name == "halt":
                builder.label = self.region(pc)
                self.items.append(builder.close(None, mnemonic="halt"))
                raise _Halted
            else:
                next_pc = handlers[pc]()
                builder.control(name, taken=name != "nop" and next_pc != pc + 1, reads=item.reads)
                pc = next_pc

    # ---- loops -------------------------------------------------------------------------------
    def _state(self, memory: bool) -> State:
        """The state now (INT SRAM only if `memory`: copying it costs, and few loops store)."""
        tile = self.issuer.loaded_tile
        registers = np.array(self.regs + self.aregs + ([-1, 0] if tile is None else [tile[0], int(tile[1])]),
                             dtype=np.int64)
        return registers, (self.int_memory.astype(np.int64) if memory else None)

    def _set_state(self, state: State) -> None:
        registers, memory = state
        n, m = len(self.regs), len(self.aregs)
        self.regs[:] = [int(v) for v in registers[:n]]
        self.aregs[:] = [int(v) for v in registers[n:n + m]]
        address, transposed = int(registers[n + m]), bool(registers[n + m + 1])
        self.issuer.loaded_tile = None if address < 0 else (address, transposed)
        if memory is not None:
            self.int_memory[:] = memory

    @staticmethod
    def _advance(states: list[State], period: int) -> tuple[np.ndarray, np.ndarray | None] | None:
        """The per-`period` advance of the state if the last 2 x period iterations moved it alike."""
        if len(states) < 2 * period + 1:
            return None
        (r0, m0), (r1, m1), (r2, m2) = states[-1 - 2 * period], states[-1 - period], states[-1]
        step = r2 - r1
        if not np.array_equal(step, r1 - r0):
            return None
        if m2 is None:
            return step, None
        memory_step = m2 - m1
        if not np.array_equal(memory_step, m1 - m0):
            return None
        return step, memory_step

    def _skip(self, states: list[State], advance: tuple[np.ndarray, np.ndarray | None], periods: int) -> None:
        """Set the state `periods` advances past the last one walked (the iterations skipped)."""
        step, memory_step = advance
        registers, memory = states[-1]
        registers = registers + periods * step
        if memory is not None:
            memory = memory + periods * memory_step
        self._set_state((registers, memory))

    def loop(self, count: int, start: int, end: int) -> None:
        """A hardware loop of `count` iterations over the body [start, end) (see the module doc)."""
        memory = self.stores[end] > self.stores[start]
        if self.waits[end] > self.waits[start]:
            self._loop_with_waits(count, start, end, memory)
            return
        states: list = []

        def body(builder: SegmentBuilder) -> None:
            states.append(self._state(memory))
            self.walk(start, end)
        self.builder.repeat(count, body)
        done = len(states)
        if done == count:
            return
        states.append(self._state(memory))
        for period in range(1, min(MAX_PERIOD, done // 2) + 1):
            remaining = count - done
            if remaining % period:
                continue
            advance = self._advance(states, period)
            if advance is not None:
                self._skip(states, advance, remaining // period)
                return
        self._run_for_state(count - done, start, end)

    def _run_for_state(self, times: int, start: int, end: int) -> None:
        """Run loop iterations whose cost `repeat` has already extrapolated, only for the machine
        state they leave (it did not advance linearly): into a builder that is then dropped."""
        costed, self.builder = self.builder, self._builder(False)
        for _ in range(times):
            self.walk(start, end)
        self.builder = costed

    def _loop_with_waits(self, count: int, start: int, end: int, memory: bool) -> None:
        """A loop whose body closes segments: walk iterations until the last p repeat the p before
        them, then one SegmentGroup for the middle ones; the last iteration is walked for real."""
        states, marks = [self._state(memory)], [len(self.items)]
        done = 0
        searching = True
        while done < count:
            self.walk(start, end)
            done += 1
            states.append(self._state(memory))
            marks.append(len(self.items))
            remaining = count - done
            if not searching or remaining < 2:
                continue
            for period in range(1, min(MAX_PERIOD, done // 2) + 1):
                periods = (remaining - 1) // period  # the last iteration runs for real
                if periods < 1:
                    break
                closed = self.items[marks[-1 - period]:marks[-1]]
                if closed != self.items[marks[-1 - 2 * period]:marks[-1 - period]]:
                    continue
                advance = self._advance(states, period)
                if advance is None:
                    continue
                self.items.append(SegmentGroup(tuple(closed), periods))
                self._skip(states, advance, periods)
                done += periods * period
                searching = False
                break

    def run(self) -> list:
        """Walk from pc 0 to `halt`; the segments and groups in program order."""
        try:
            self.walk(0, len(self.decoded))
        except _Halted:
            return self.items
        raise RuntimeError("the program ran past its end without `halt`")


def static_segments(program: Program, config: NPUConfig, *, params: LatencyParameters | None = None,
                    dma_chunk_bytes: int = DMA_CHUNK_BYTES,
                    regions: Callable[[int], str] | None = None) -> list:
    """The program's segments and segment groups (see the module docstring), for SegmentClock."""
    walk = _Walk(program, config, params, DramPipe.for_config(config, dma_chunk_bytes),
                 regions or region_lookup(program))
    with np.errstate(invalid="ignore", over="ignore"):  # timing mode leaves FP registers meaningless
        return walk.run()


def estimate_static(program: Program, config: NPUConfig, *, params: LatencyParameters | None = None,
                    energy: EnergyTable | None = None, dma_chunk_bytes: int = DMA_CHUNK_BYTES,
                    regions: Callable[[int], str] | None = None) -> ProgramEstimate:
    """`estimate_program`'s figures from the static walk: cycles, per-region cycles, energy."""
    items = static_segments(program, config, params=params, dma_chunk_bytes=dma_chunk_bytes, regions=regions)
    return estimate_segments(items, config, energy)
