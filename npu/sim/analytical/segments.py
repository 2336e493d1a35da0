"""Closed-form timing of dnpu code between two `wait`s, shared by every analytical estimate.

The dnpu overlaps its three queued units (DMA, matrix, vector) with the front end, and only a
`wait` makes the front end stop for them. So a program is a sequence of *segments*, each ending
in a `wait` (or `halt`), and a segment's time has a closed form:

    unit u:   start_u = max(carry_u, first_u + 1)             (its first op is dispatched at first_u)
              end_u   = max(start_u + busy_u, last_u + 1 + e_last_u)   (unit- or front-end-bound)
              done_u  = end_u + tail_u                         (result latency, systolic drain)
    segment:  t = max(frontend, done_u + 1 for u the wait drains, SRAM port cycles / ports)

`busy_u` sums the unit's per-instruction times from `npu.sim.cost.latency.instruction_timing`
plus the stalls the unit causes itself (a row read before the op writing it finishes, a weight
tile that loads longer than the previous tile op ran, DRAM slower than the SRAM port). Units the
wait does not drain carry their remaining work into the next segment. No event list: the
per-instruction costs are summed and combined with max, exactly once per segment. The one
coupling the sums cannot see, in-order dispatch into bounded unit queues (the front end waits
for a full queue, so a unit's ops dispatch late behind another's), enters through `frontend`
and `first_u`/`last_u`: the builder keeps a running estimate of each unit's op starts.

`SegmentBuilder` accumulates one segment from instructions - a program trace feeds it one
dynamic instruction at a time (npu.sim.analytical.program), the static walk feeds it loop bodies
and extrapolates them (`repeat`; npu.sim.analytical.static); `SegmentClock` times segments in order.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from npu.hw.config import NPUConfig
from npu.isa.table import BY_MNEMONIC, DRAM_FORMATS, Unit
from npu.sim.cost.dram import make_dram
from npu.hw.technology import LatencyParameters
from npu.sim.cost.latency import DmaShape, InstructionTiming, instruction_timing, tile_op_first_result

QUEUED_UNITS = ("dma", "matrix", "vector")
SRAMS = ("vector_sram", "matrix_sram", "fp_sram", "int_sram")
MATRIX_OPS = ("mm", "mma", "mmt", "mmta")
DMA_CHUNK_BYTES = 2048  # the cycle simulator's default DRAM request size
QUEUE_DEPTH = 8         # the cycle simulator's default unit queue depth


@dataclass(frozen=True)
class UnitWork:
    """What one queued unit does in a segment (cycles; positions are front-end cycles)."""

    ops: int = 0
    busy: float = 0.0     # per-op times summed, the unit's own stalls included
    first: float = 0.0    # front-end cycle at which its first op is dispatched
    last: float = 0.0     # front-end cycle at which its last op is dispatched
    last_op: float = 0.0  # time of that last op
    tail: float = 0.0     # cycles after the unit is free until its last result is visible
    ports: Mapping[str, float] = field(default_factory=dict)    # SRAM port cycles it holds
    windows: Mapping[str, float] = field(default_factory=dict)  # its longest single port hold
    gaps: Mapping[str, float] = field(default_factory=dict)     # its shortest idle gap between holds


@dataclass(frozen=True)
class Segment:
    """Code up to and including one `wait` (waits = the units it drains) or `halt` (waits None)."""

    label: str
    frontend: float                      # dispatch cycles: instructions, scalar stalls, branch bubbles
    units: Mapping[str, UnitWork]
    ports: Mapping[str, float]           # SRAM port cycles used
    waits: frozenset[str] | None
    count: int = 1                       # identical repetitions
    instructions: int = 0                # executed instructions (one repetition)
    actions: Mapping[str, float] = field(default_factory=dict)  # energy actions (one repetition)
    resources: Mapping[str, float] = field(default_factory=dict)  # see SegmentBuilder.resources
    queue_stalls: float = 0.0            # of `frontend`: dispatch waiting for a full unit queue

    @property
    def frontend_active(self) -> float:
        """Front-end cycles of its own work (the cycle simulator's busy + own stalls)."""
        return self.frontend - self.queue_stalls


@dataclass(frozen=True)
class SegmentGroup:
    """Segments (or groups) that run `count` times in a row, e.g. the body of a loop with waits."""

    items: tuple["Segment | SegmentGroup", ...]
    count: int = 1


@dataclass(frozen=True)
class DramPipe:
    """The bandwidth DRAM model of the cycle simulator in closed form: a pipe plus a latency."""

    bytes_per_cycle: float
    read_latency: int
    write_latency: int
    chunk_bytes: int = DMA_CHUNK_BYTES

    @classmethod
    def for_config(cls, config: NPUConfig, chunk_bytes: int = DMA_CHUNK_BYTES) -> "DramPipe":
        backend = make_dram("bandwidth", config)
        return cls(backend.bytes_per_cycle, backend.read_latency, backend.write_latency, chunk_bytes)


def dma_request_sizes(dram_bytes: int, rows: int, base: int = 0, dstride: int | None = None,
                      chunk: int = DMA_CHUNK_BYTES) -> list[int]:
    """DRAM request sizes of a DMA, split as the cycle simulator splits them (chunk-aligned)."""
    if rows <= 0 or dram_bytes <= 0:
        return []
    per_row = dram_bytes // rows
    offset = base % chunk
    contiguous = rows == 1 or dstride is None or dstride == per_row
    ranges = [(offset, dram_bytes)] if contiguous else [(offset + i * dstride, per_row) for i in range(rows)]
    sizes = []
    for low, length in ranges:
        high = low + length
        while low < high:
            piece = min(high, (low // chunk + 1) * chunk) - low
            sizes.append(piece)
            low += piece
    return sizes


def dma_time(timing: InstructionTiming, sizes: Sequence[int], pipe: DramPipe, setup_extra: float = 0.0) -> float:
    """Cycles from a DMA's start to its end: setup, then its chunks through the SRAM port and DRAM.

    With P port cycles and D = bytes / bandwidth DRAM cycles in total, the last chunk finishes
    after setup + latency + max(D + p_last, P + d_last) (loads; stores read the port first).
    """
    if not sizes:
        return float(timing.dma_setup + setup_extra)
    total = sum(sizes)
    port = timing.sram_port_cycles
    dram = total / pipe.bytes_per_cycle
    port_last = port * sizes[-1] / total
    dram_last = sizes[-1] / pipe.bytes_per_cycle
    start = timing.dma_setup + setup_extra
    if timing.dram_write:
        return start + pipe.write_latency + max(port + dram_last, port * sizes[0] / total + dram)
    return start + pipe.read_latency + max(math.ceil(dram - 1e-9) + port_last, port + dram_last)


def instruction_actions(timing: InstructionTiming, weight_load: bool = False) -> Counter:
    """Energy actions of one execution (the same bookkeeping as the cycle simulator)."""
    actions: Counter = Counter()
    actions["mac"] += timing.macs
    for energy_class, lanes in timing.lane_ops:
        actions[energy_class] += lanes
    if timing.unit == "dma":
        if timing.dram_bytes:
            direction = "write" if timing.dram_write else "read"
            actions[f"dram_{direction}_bytes"] += timing.dram_bytes
            sram_direction = "read" if timing.dram_write else "write"
            actions[f"{timing.sram_memory}_{sram_direction}_bytes"] += timing.sram_bytes
            for traffic in timing.traffic:
                if traffic.memory == "vector_sram" and timing.sram_memory != "vector_sram":
                    actions["vector_sram_read_bytes"] += traffic.read_bytes  # the KV smoothing scales
    else:
        for traffic in timing.traffic:
            if traffic.read_bytes:
                actions[f"{traffic.memory}_read_bytes"] += traffic.read_bytes
            if traffic.write_bytes:
                actions[f"{traffic.memory}_write_bytes"] += traffic.write_bytes
    if weight_load:
        actions["matrix_sram_read_bytes"] += timing.weight_bytes
    return actions


class CostCache:
    """Per-instruction costs already looked up, shared by the builders of one walk: a step has a
    few hundred distinct (instruction, operands, DMA shape) combinations but millions of
    dynamic instructions, and a builder lives only until the next `wait`."""

    def __init__(self, config: NPUConfig, params: LatencyParameters, chunk_bytes: int):
        self.config, self.params, self.chunk_bytes = config, params, chunk_bytes
        self.timings: dict[tuple, InstructionTiming] = {}
        self.actions: dict[tuple, Counter] = {}
        self.request_sizes: dict[tuple, list[int]] = {}

    def timing(self, mnemonic: str, operands: Mapping[str, int] | None = None,
               shape: DmaShape | None = None) -> tuple[tuple, InstructionTiming]:
        """(lookup key, timing) of one instruction."""
        key = (mnemonic, tuple(sorted((operands or {}).items())), shape)
        timing = self.timings.get(key)
        if timing is None:
            timing = self.timings[key] = instruction_timing(mnemonic, self.config, operands, shape, self.params)
        return key, timing

    def instruction_actions(self, key: tuple, timing: InstructionTiming, weight_load: bool = False) -> Counter:
        """instruction_actions(timing, weight_load), looked up once per key (do not modify it)."""
        found = self.actions.get((key, weight_load))
        if found is None:
            found = self.actions[(key, weight_load)] = instruction_actions(timing, weight_load)
        return found

    def dma_request_sizes(self, dram_bytes: int, rows: int, base: int, dstride: int | None) -> list[int]:
        """dma_request_sizes with this walk's chunk size; only base modulo the chunk matters."""
        key = (dram_bytes, rows, base % self.chunk_bytes, dstride)
        sizes = self.request_sizes.get(key)
        if sizes is None:
            sizes = self.request_sizes[key] = dma_request_sizes(dram_bytes, rows, base % self.chunk_bytes, dstride,
                                                                self.chunk_bytes)
        return sizes


class _UnitState:
    """Running sums of one unit inside the segment under construction (unit-local clock)."""

    def __init__(self) -> None:
        self.ops = 0
        self.busy = 0.0
        self.first = 0.0
        self.last = 0.0
        self.last_op = 0.0
        self.done = 0.0  # latest result visibility, unit-local clock
        self.ports: Counter = Counter()
        self.windows: dict[str, float] = {}
        self.gaps: dict[str, float] = {}

    def hold(self, memory: str, cycles: float, window: float, gap: float) -> None:
        """Port use of one op: `cycles` in holds of up to `window`, at least `gap` apart."""
        self.ports[memory] += cycles
        self.windows[memory] = max(self.windows.get(memory, 0.0), window)
        self.gaps[memory] = min(self.gaps.get(memory, math.inf), gap)

    def add(self, dispatch: float, start: float, occupancy: float, latency: float) -> None:
        """One op dispatched at `dispatch` that starts at local `start` (>= busy)."""
        if self.ops == 0:
            self.first = dispatch
        self.ops += 1
        end = start + occupancy
        self.last, self.last_op = dispatch, end - self.busy
        self.busy = end
        self.done = max(self.done, start + latency)

    def add_beside(self, dispatch: float, start: float, latency: float) -> None:
        """One op that runs beside the unit's pipeline (the matrix unit's `mwb`): it counts and
        delays the unit's results, but does not occupy it."""
        if self.ops == 0:
            self.first = dispatch
        self.ops += 1
        self.last, self.last_op = dispatch, 0.0
        self.done = max(self.done, start + latency)

    def work(self) -> UnitWork:
        return UnitWork(self.ops, self.busy, self.first, self.last, self.last_op, max(0.0, self.done - self.busy),
                        dict(self.ports), dict(self.windows), dict(self.gaps))


@dataclass
class _Snapshot:
    frontend: float
    instructions: int
    busy: dict[str, float]
    done: dict[str, float]
    last: dict[str, float]
    ops: dict[str, int]
    unit_ports: dict[str, dict[str, float]]   # plain dicts: copied at every loop pass
    ports: dict[str, float]
    actions: dict[str, float]
    resources: dict[str, float]
    queue_stalls: float
    queue_clock: dict[str, float]


class SegmentBuilder:
    """Accumulates one segment from instructions in program order.

    Dependencies are given as hashable keys: `reads`/`writes` of scalar registers (front-end
    scoreboard) and of vector rows (vector-unit stalls). A trace passes real register numbers
    and addresses; `repeat()` runs a loop body until it is in steady state and extrapolates.
    """

    def __init__(self, config: NPUConfig, label: str = "", params: LatencyParameters | None = None,
                 pipe: DramPipe | None = None, matrix_busy: bool = False,
                 queue_depth: int | None = QUEUE_DEPTH, costs: CostCache | None = None):
        self.config, self.label, self.params = config, label, params or config.technology.latency
        self.pipe = pipe or DramPipe.for_config(config)
        self.costs = costs or CostCache(config, self.params, self.pipe.chunk_bytes)
        self.frontend = 0.0
        # Bounded unit queues: the front end dispatches in order, and an op for a unit whose
        # queue is full waits until the op `queue_depth` before it has started. That couples the
        # units (a GEMM's matrix ops cannot dispatch while the next panel's DMAs fill the DMA
        # queue), so each unit's op starts are also estimated in front-end time, from the
        # segment's start (work carried in from the previous segment is not counted).
        self.queue_depth, self.queue_stalls = queue_depth, 0.0
        self.queue_starts = {name: deque(maxlen=queue_depth) for name in QUEUED_UNITS}  # None: unbounded
        self.queue_clock = dict.fromkeys(QUEUED_UNITS, 0.0)  # front-end cycle each unit is free
        self.instructions = 0
        self.units = {name: _UnitState() for name in QUEUED_UNITS}
        self.ports: Counter = Counter()
        self.actions: Counter = Counter()
        # Cycles each resource needs, for naming what bounds an operator: the front end, the
        # vector unit, matrix tile ops, weight loads the array waits for, DMA SRAM-port cycles, DRAM.
        self.resources: Counter = Counter()
        self.register_ready: dict[Hashable, float] = {}
        self.pair_at: float | None = None  # front-end cycle of a queued dispatch a scalar may share
        self.row_ready: dict[Hashable, float] = {}
        # Matrix unit: time from the last tile op's start to the unit's current end; a new tile
        # loads while that op runs, so only load - gap is exposed. Infinite while busy from before.
        self.since_tile_op = math.inf if matrix_busy else 0.0
        # Unit-local cycles each accumulator holds its last result / its last `mwb` has read it,
        # and the write-back path is free; a tile op's first result lands `first_result` after it starts.
        self.accumulator_ready: dict[int, float] = {}
        self.writeback_end: dict[int, float] = {}
        self.writeback_free = 0.0
        self.first_result = tile_op_first_result(config, self.params)

    # ---- timing lookups ----------------------------------------------------------------------
    def timing(self, mnemonic: str, operands: Mapping[str, int] | None = None,
               shape: DmaShape | None = None) -> InstructionTiming:
        return self.costs.timing(mnemonic, operands, shape)[1]

    # ---- instructions ------------------------------------------------------------------------
    def _dispatch(self, reads: Iterable[Hashable], unit: str | None = None, queued: bool = False,
                  pairs: bool = False) -> float:
        """Front-end cycle at which the next instruction dispatches (after scoreboard stalls and,
        for a queued `unit`, until its queue has room). With paired issue (NPUConfig.paired_issue)
        a scalar instruction that `pairs` shares the cycle of the queued instruction just before
        it when its operands are ready by then (cycle simulator: `pair_at`)."""
        reads = tuple(reads)
        at = self.frontend
        for register in reads:
            at = max(at, self.register_ready.get(register, 0.0))
        pair_at, self.pair_at = self.pair_at, None
        self.instructions += 1
        self.actions["instruction"] += 1
        if pairs and pair_at is not None and at == self.frontend == pair_at + 1 \
                and all(self.register_ready.get(register, 0.0) <= pair_at for register in reads):
            return pair_at
        if unit is not None:
            starts = self.queue_starts[unit]
            if starts.maxlen is not None and len(starts) == starts.maxlen and starts[0] > at:
                self.queue_stalls += starts[0] - at
                at = starts[0]
        self.frontend = at + self.params.dispatch
        if (unit is not None or queued) and self.config.paired_issue:
            self.pair_at = at
        return at

    def _queued(self, unit: str, at: float, stall: float, occupancy: float) -> float:
        """Record an op's start in front-end time: after its dispatch at `at`, the unit's previous
        op and `stall` cycles of the unit's own (dependencies, exposed weight load). Returns it."""
        start = max(self.queue_clock[unit], at + 1) + stall
        starts = self.queue_starts[unit]
        if starts.maxlen is not None:
            starts.append(start)
        self.queue_clock[unit] = start + occupancy
        return start

    def control(self, mnemonic: str = "nop", taken: bool = False, reads: Iterable[Hashable] = ()) -> None:
        """A control instruction (loop entry, nop, a branch - taken ones cost a bubble)."""
        self._dispatch(reads)
        if taken:
            self.frontend += self.params.taken_branch_penalty

    def scalar(self, mnemonic: str, reads: Iterable[Hashable] = (), writes: Iterable[Hashable] = ()) -> None:
        writes = tuple(writes)
        key, timing = self.costs.timing(mnemonic)
        at = self._dispatch(tuple(reads) + writes, pairs=not timing.ports)
        for register in writes:
            self.register_ready[register] = at + timing.latency
        for use in timing.ports:
            self.ports[use.memory] += use.cycles
        self.actions.update(self.costs.instruction_actions(key, timing))

    def vector(self, mnemonic: str, reads: Iterable[Hashable] = (), writes: Iterable[Hashable] = (),
               registers: Iterable[Hashable] = (), operands: Mapping[str, int] | None = None,
               register_writes: Iterable[Hashable] = ()) -> None:
        """A vector op; `reads`/`writes` are vector-row keys, `registers` the scalar registers it
        reads, `register_writes` those it accumulates into (ready when its result is)."""
        key, timing = self.costs.timing(mnemonic, operands)
        at = self._dispatch(registers, "vector")
        unit = self.units["vector"]
        start = previous_end = unit.busy
        for row in (*reads, *writes):
            start = max(start, self.row_ready.get(row, 0.0))
        unit.add(at, start, timing.occupancy, timing.latency)
        issued = self._queued("vector", at, start - previous_end, timing.occupancy)
        for register in register_writes:
            self.register_ready[register] = issued + timing.latency
        self.resources["vector"] += unit.busy - previous_end
        for row in writes:
            self.row_ready[row] = start + timing.latency
        for use in timing.ports:
            self.ports[use.memory] += use.cycles
            gap = start - previous_end + timing.occupancy - use.cycles if unit.ops > 1 else math.inf
            unit.hold(use.memory, use.cycles, use.cycles, gap)
        self.actions.update(self.costs.instruction_actions(key, timing))

    def matrix(self, mnemonic: str, new_tile: bool = False, registers: Iterable[Hashable] = (),
               acc: int = 0) -> None:
        """A tile op into accumulator `acc` (`new_tile`: its weight tile is not the one the array
        holds), or `mwb` of `acc` on the write-back path beside the array (cycle simulator:
        _matrix), whose own queue is taken never to fill (at most `accumulators` are pending)."""
        key, timing = self.costs.timing(mnemonic)
        at = self._dispatch(registers, None if mnemonic == "mwb" else "matrix", queued=True)
        unit = self.units["matrix"]
        start = previous_end = unit.busy
        if mnemonic == "mwb":  # after its accumulator's last result and the previous write-back
            start = max(self.writeback_free, self.accumulator_ready.get(acc, 0.0))
            unit.add_beside(at, start, timing.latency)
            self.writeback_free = self.writeback_end[acc] = start + timing.occupancy
        else:
            # its first result may land only after the accumulator's last write-back has read it
            start = max(start, self.writeback_end.get(acc, -math.inf) - self.first_result)
            if new_tile:
                exposed = max(0.0, timing.weight_load_cycles - self.since_tile_op)
                start += exposed
                self.resources["weight_load"] += exposed
                self.ports["matrix_sram"] += timing.weight_load_cycles
                load_gap = max(0.0, max(self.since_tile_op, timing.occupancy) - timing.weight_load_cycles)
                unit.hold("matrix_sram", timing.weight_load_cycles, timing.weight_load_cycles, load_gap)
            unit.add(at, start, timing.occupancy, timing.latency)
            self.resources["matrix"] += timing.occupancy
            self.accumulator_ready[acc] = start + timing.latency
            # cycles since the op that switched to the held tile started: the next tile may
            # stream in under every op that reuses this one (cycle simulator: shadow_free)
            self.since_tile_op = timing.occupancy if new_tile else self.since_tile_op + timing.occupancy
            self._queued("matrix", at, start - previous_end, timing.occupancy)
        for use in timing.ports:
            self.ports[use.memory] += use.cycles
            gap = math.inf if mnemonic == "mwb" else unit.busy - previous_end - use.cycles
            unit.hold(use.memory, use.cycles, use.cycles, gap)
        self.actions.update(self.costs.instruction_actions(key, timing, new_tile and mnemonic != "mwb"))

    def dma(self, mnemonic: str, fmt: str, rows: int, cols: int, *, base: int = 0, dstride: int | None = None,
            registers: Iterable[Hashable] = ()) -> None:
        """A DMA of rows x cols elements (`dstride` None or equal to the row size = contiguous)."""
        key, timing = self.costs.timing(mnemonic, {"fmt": DRAM_FORMATS.index(fmt)}, DmaShape(max(rows, 0), max(cols, 0)))
        at = self._dispatch(registers, "dma")
        extra_ports = timing.ports[1:] if timing.dram_bytes else ()
        setup_extra = sum(use.cycles for use in extra_ports)
        sizes = self.costs.dma_request_sizes(timing.dram_bytes, rows, base, dstride)
        duration = dma_time(timing, sizes, self.pipe, setup_extra)
        unit = self.units["dma"]
        unit.add(at, unit.busy, duration, duration)
        self._queued("dma", at, 0.0, duration)
        self.resources["dram"] += timing.dram_bytes / self.pipe.bytes_per_cycle
        self.resources["dma_port"] += timing.sram_port_cycles + setup_extra + timing.dma_setup
        for use in timing.ports:
            self.ports[use.memory] += use.cycles
        if sizes:
            total = sum(sizes)
            chunk_port = timing.sram_port_cycles * max(sizes) / total
            chunk_dram = max(sizes) / self.pipe.bytes_per_cycle
            latency = self.pipe.write_latency if timing.dram_write else self.pipe.read_latency
            between = timing.dma_setup + setup_extra + (0.0 if timing.dram_write else latency)
            gap = min(between, max(0.0, chunk_dram - chunk_port)) if len(sizes) > 1 else between
            unit.hold(timing.sram_memory, timing.sram_port_cycles, math.ceil(chunk_port), gap)
        self.actions.update(self.costs.instruction_actions(key, timing))

    def instruction(self, mnemonic: str, **kwargs) -> None:
        """Any instruction by mnemonic (dispatches to the unit's method)."""
        unit = BY_MNEMONIC[mnemonic].unit
        if unit is Unit.CONTROL:
            self.control(mnemonic, **kwargs)
        elif unit is Unit.SCALAR:
            self.scalar(mnemonic, **kwargs)
        elif unit is Unit.VECTOR:
            self.vector(mnemonic, **kwargs)
        elif unit is Unit.MATRIX:
            self.matrix(mnemonic, **kwargs)
        else:
            self.dma(mnemonic, **kwargs)

    # ---- loops --------------------------------------------------------------------------
    def _snapshot(self) -> _Snapshot:
        units = self.units
        return _Snapshot(self.frontend, self.instructions, {u: s.busy for u, s in units.items()},
                         {u: s.done for u, s in units.items()}, {u: s.last for u, s in units.items()},
                         {u: s.ops for u, s in units.items()}, {u: dict(s.ports) for u, s in units.items()},
                         dict(self.ports), dict(self.actions), dict(self.resources),
                         self.queue_stalls, dict(self.queue_clock))

    @staticmethod
    def _step(before: _Snapshot, after: _Snapshot) -> tuple[float, ...]:
        """How far one loop pass moves the front end and each unit."""
        step = (after.frontend - before.frontend, *(after.busy[u] - before.busy[u] for u in QUEUED_UNITS),
                *(after.queue_clock[u] - before.queue_clock[u] for u in QUEUED_UNITS))
        return tuple(round(value, 6) for value in step)

    @staticmethod
    def _steady(before: _Snapshot, after: _Snapshot) -> bool:
        """Whether no unit used in the pass falls further behind the front end (else its queue
        is still filling, and the front end will soon wait for it)."""
        frontend = after.frontend - before.frontend
        return all(after.queue_clock[u] - before.queue_clock[u] <= frontend + 1e-6
                   for u in QUEUED_UNITS if after.ops[u] > before.ops[u])

    def repeat(self, count: int, body) -> None:
        """Run `body(self)` `count` times: for real until two passes move every clock alike (the
        loop's steady state, e.g. once its unit queues are full), then the last pass extrapolated.

        The last real pass sees the loop-carried state (the previous iteration's ops, full
        queues), so the remaining iterations are all like it.
        """
        if count <= 0:
            return
        body(self)
        done, previous = 1, None
        limit = 2 * (self.queue_depth or 0) + 3
        while done < count:
            before = self._snapshot()
            body(self)
            done += 1
            after = self._snapshot()
            step = self._step(before, after)
            if self.queue_depth is None or done >= limit or (step == previous and self._steady(before, after)):
                break
            previous = step
        repeats = count - done
        if repeats == 0:
            return
        shift = after.frontend - before.frontend
        self.frontend += repeats * shift
        if self.pair_at is not None:
            self.pair_at += repeats * shift
        self.instructions += repeats * (after.instructions - before.instructions)
        for name, unit in self.units.items():
            grown = after.busy[name] - before.busy[name]
            unit.busy += repeats * grown
            unit.done += repeats * grown
            unit.ops += repeats * (after.ops[name] - before.ops[name])
            if after.ops[name] > before.ops[name]:
                unit.last += repeats * shift
            for memory, cycles in after.unit_ports[name].items():
                unit.ports[memory] += repeats * (cycles - before.unit_ports[name].get(memory, 0))
        for mine, new, old in ((self.ports, after.ports, before.ports), (self.actions, after.actions, before.actions),
                               (self.resources, after.resources, before.resources)):
            for key in set(new) | set(old):
                mine[key] += repeats * (new.get(key, 0) - old.get(key, 0))
        # Times recorded in the unit-local and front-end clocks move with the extrapolation.
        for table, offset in ((self.register_ready, repeats * shift),):
            for key in table:
                table[key] += offset
        vector_shift = repeats * (after.busy["vector"] - before.busy["vector"])
        for key in self.row_ready:
            self.row_ready[key] += vector_shift
        matrix_shift = repeats * (after.busy["matrix"] - before.busy["matrix"])
        for table in (self.accumulator_ready, self.writeback_end):
            for key in table:
                table[key] += matrix_shift
        self.writeback_free += matrix_shift
        self.queue_stalls += repeats * (after.queue_stalls - before.queue_stalls)
        for name, starts in self.queue_starts.items():
            moved = repeats * (after.queue_clock[name] - before.queue_clock[name])
            self.queue_clock[name] += moved
            for index in range(len(starts)):
                starts[index] += moved

    # ---- closing -----------------------------------------------------------------------------
    def close(self, waits: Iterable[str] | None, count: int = 1, mnemonic: str = "wait") -> Segment:
        """End the segment with a `wait` on `waits` (None: `halt`, which also counts one dispatch)."""
        self.control(mnemonic)
        units = {name: state.work() for name, state in self.units.items() if state.ops}
        resources = dict(self.resources, frontend=self.frontend - self.queue_stalls)
        return Segment(self.label, self.frontend, units, dict(self.ports),
                       None if waits is None else frozenset(waits), count, self.instructions, dict(self.actions),
                       resources, self.queue_stalls)


@dataclass
class SegmentTotals:
    """What a sequence of segments adds up to."""

    cycles: float = 0.0
    by_label: Counter = field(default_factory=Counter)
    unit_busy: Counter = field(default_factory=Counter)      # incl. "frontend"
    unit_ops: Counter = field(default_factory=Counter)
    instructions: int = 0
    actions: Counter = field(default_factory=Counter)
    resources: Counter = field(default_factory=Counter)
    by_label_resources: dict[str, Counter] = field(default_factory=dict)
    by_label_actions: dict[str, Counter] = field(default_factory=dict)  # energy actions per label

    def add_scaled(self, delta: "SegmentTotals", times: int) -> None:
        """self += times x delta: extrapolates repetitions of a group (delta: one repetition)."""
        self.cycles += times * delta.cycles
        self.instructions += times * delta.instructions
        for name in ("by_label", "unit_busy", "unit_ops", "actions", "resources"):
            mine = getattr(self, name)
            for key, value in getattr(delta, name).items():
                mine[key] += times * value
        for per_label in ("by_label_resources", "by_label_actions"):
            mine_by_label = getattr(self, per_label)
            for label, counts in getattr(delta, per_label).items():
                mine = mine_by_label.setdefault(label, Counter())
                for key, value in counts.items():
                    mine[key] += times * value


class SegmentClock:
    """Times segments in program order, carrying unfinished unit work from one to the next."""

    def __init__(self, config: NPUConfig):
        self.ports = {memory: getattr(config, memory).ports for memory in SRAMS}
        self.free = {unit: 0.0 for unit in QUEUED_UNITS}  # cycles until the unit is free (from now)
        self.done = {unit: 0.0 for unit in QUEUED_UNITS}  # cycles until its last result is visible
        self.totals = SegmentTotals()

    def _once(self, segment: Segment) -> float:
        """One repetition: its cycles; port blocking is added to the blocked unit's active time."""
        ends, dones = {}, {}
        for unit in QUEUED_UNITS:
            ends[unit], dones[unit] = self.free[unit], self.done[unit]
        active = sorted((work.first, unit) for unit, work in segment.units.items() if work.ops)
        for position, (_, unit) in enumerate(active):
            work = segment.units[unit]
            start = unblocked = max(self.free[unit], work.first + 1)
            for _, earlier in active[:position]:
                if self._blocked_by(work, segment.units[earlier]):
                    start = max(start, ends[earlier])
            self.totals.unit_busy[unit] += start - unblocked
            end = max(start + work.busy, work.last + 1 + work.last_op)
            ends[unit], dones[unit] = end, max(end + work.tail, self.done[unit])
        if segment.waits is None:
            time = max([segment.frontend] + list(dones.values()))
            drained = QUEUED_UNITS
        else:
            time = max([segment.frontend] + [dones[u] + 1 for u in segment.waits])
            drained = tuple(segment.waits)
        for memory, cycles in segment.ports.items():  # ports the work that must finish here holds
            undrained = sum(work.ports.get(memory, 0.0) for unit, work in segment.units.items() if unit not in drained)
            time = max(time, (cycles - undrained) / self.ports[memory])
        for unit in QUEUED_UNITS:
            drain = unit in drained
            self.free[unit] = 0.0 if drain else max(0.0, ends[unit] - time)
            self.done[unit] = 0.0 if drain else max(0.0, dones[unit] - time)
        return time

    def _blocked_by(self, later: UnitWork, earlier: UnitWork) -> bool:
        """On a one-port SRAM, ports are granted in dispatch order: a unit whose hold is longer
        than every gap the earlier-dispatched unit leaves must wait until that unit is done."""
        for memory, cycles in later.ports.items():
            if (cycles and self.ports[memory] == 1 and earlier.ports.get(memory)
                    and later.windows[memory] > earlier.gaps.get(memory, math.inf)):
                return True
        return False

    def advance(self, segment: Segment) -> float:
        """Cycles of all `segment.count` repetitions (repetitions 2.. take the steady-state time)."""
        if segment.count <= 0:
            return 0.0
        time = self._once(segment)
        if segment.count > 1:
            time += (segment.count - 1) * self._once(segment)
        totals = self.totals
        totals.cycles += time
        totals.by_label[segment.label] += time
        totals.unit_busy["frontend"] += segment.frontend_active * segment.count
        for unit, work in segment.units.items():
            totals.unit_busy[unit] += work.busy * segment.count
            totals.unit_ops[unit] += work.ops * segment.count
        totals.instructions += segment.instructions * segment.count
        label_actions = totals.by_label_actions.setdefault(segment.label, Counter())
        for action, amount in segment.actions.items():
            totals.actions[action] += amount * segment.count
            label_actions[action] += amount * segment.count
        label_resources = totals.by_label_resources.setdefault(segment.label, Counter())
        for resource, amount in segment.resources.items():
            totals.resources[resource] += amount * segment.count
            label_resources[resource] += amount * segment.count
        return time

    def run(self, items: Iterable["Segment | SegmentGroup"]) -> SegmentTotals:
        """Time segments and groups in order (a group: twice for real, then extrapolated)."""
        for item in items:
            if isinstance(item, Segment):
                self.advance(item)
            elif item.count > 0:
                self.run(item.items)
                if item.count > 1:  # the second pass, in steady state, accumulated on its own
                    outer, self.totals = self.totals, SegmentTotals()
                    self.run(item.items)
                    repetition, self.totals = self.totals, outer
                    self.totals.add_scaled(repetition, item.count - 1)
        return self.totals
