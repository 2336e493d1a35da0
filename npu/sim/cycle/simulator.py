"""Cycle-accurate (timing-directed) simulator of the dnpu: runs the functional simulator's binaries.

How it works, in the order an instruction meets it:

1. Front end. Fetches, decodes and dispatches one instruction per cycle, in program order.
   Scalar and control instructions execute here, for real, through the functional simulator's
   own pre-decoded handlers and its public stepping interface (`handler(pc)`, `advance_loops`,
   `raise_at`, `InstructionFault`), so registers, loop counts, branches and DMA addresses
   evolve exactly as there: one definition of the scalar and control semantics. A register
   scoreboard stalls an instruction whose register operands are not ready (scalar latencies;
   registers a vector reduction writes are ready when it completes).
   `wait u` stalls dispatch until unit u has completed everything it accepted.
   A taken branch costs a bubble; zero-overhead loops cost nothing.
2. Queues. DMA, matrix and vector instructions go to their unit's queue of `queue_depth`
   entries; a full queue stalls dispatch until its oldest entry starts. Register operands are
   read at dispatch (ISA rule 2).
3. Units. Each executes its queue in order, one instruction at a time entering execution, with
   the occupancy and latency of `npu.sim.cost.latency.instruction_timing`. All units overlap.
   A unit's instruction waits for: the unit (previous occupancy), data dependencies inside the unit
   (vector-SRAM rows an in-flight vector op still writes; the matrix accumulator before `mwb`,
   which is where the systolic drain is paid once per output tile; a weight tile still
   loading). The matrix unit's `mwb`s have their own queue and write-back path beside the
   array, so they overlap tile ops into other accumulators (`_matrix`). SRAM ports (`ports.PortPool`: DMA, vector unit, the array's activation feed,
   `mwb`, weight loads and scalar loads/stores all compete for the ports of the SRAMs they
   touch). Because units never wait on the front end, each instruction is scheduled the moment
   it is dispatched ("eager" scheduling): time advances by events, never cycle by cycle.
4. DMA and DRAM. A DMA is cut into requests of `dma_chunk_bytes` DRAM bytes. Loads issue their
   requests at the pace the SRAM port can absorb, hand them to the DRAM backend (`npu.sim.cost.dram`: the
   JEDEC model in the loop, or a fast bandwidth model) at their simulated issue cycles, and
   write each chunk into SRAM when its data has arrived and a port is free. Stores read each
   chunk through a port, then issue its DRAM write; the DMA completes with its last write.

Timing mode (default) skips the data arithmetic of DMA, matrix and vector instructions: compiled
step programs have data-independent control flow, so the dynamic instruction sequence is the
functional simulator's. A program whose branches depend on computed data (e.g. threshold
decoding's "count == 0" fallback) needs `execute_data=True`, which also runs every data
instruction's functional handler at dispatch (functional-simulator speed, exact results).
Timing mode does not check memory bounds or the synchronisation discipline: run the program
through the functional simulator (or with execute_data=True) for that.

There is no true deadlock in this machine (units never wait for the front end), so the guard
against a program that never finishes is the pair of limits `max_instructions` and
`max_cycles`; hitting one raises `CycleLimitError` with every unit's state and the stuck
instruction.
"""

from __future__ import annotations

import hashlib
from array import array
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

from npu.hw.config import NPUConfig
from npu.isa.assembler import Program
from npu.isa.encoding import Instruction
from npu.isa.table import DRAM_FORMATS, NUM_ADDR_REGS, NUM_FP_REGS, NUM_INT_REGS, Kind, Unit
from npu.hw.technology import EnergyTable, LatencyParameters
from npu.sim.cost.dram import ShiftProfile, make_dram
from npu.sim.cost.energy import energy_report
from npu.sim.cost.latency import DmaShape, InstructionTiming, instruction_timing, tile_op_first_result
from npu.sim.cycle.ports import PortPool
from npu.sim.cycle.stats import STALL_REASONS, CycleStats, TimelineEvent, UnitBreakdown
from npu.sim.functional import FunctionalSimulator, SimulationError
from npu.hw.rows import MemoryAccessError
from npu.sim.functional.simulator import HALT, InstructionFault

# Slot kinds: what the front end does with an instruction.
SCALAR, BRANCH, LOOP, WAIT, HALT_KIND, NOP, DMA, MATRIX, VECTOR, WRITEBACK, FAULT = range(11)
QUEUED_UNITS = ("dma", "matrix", "vector")
SRAMS = ("vector_sram", "matrix_sram", "fp_sram", "int_sram")

# Register scoreboard: one entry per npu.isa.table.register_number (r0..r15, f0..f7, a0..a7).
_SPACE_ID = {"v": 0, "f": 1, "i": 2}
_VALUE_FIELDS = ("k", "base", "rs", "ridx")                # int registers that hold values, not addresses

# DMAs reserve SRAM ports for all their chunks at once where that is exact (see _Run._read_run);
# False goes chunk by chunk (the reference the tests compare against).
FAST_DMA = True
# With FAST_DMA, a DMA whose plan recurs with the DRAM pipe idle at its start takes its DRAM
# completions and port runs from the plan's profile (offsets from its start, computed once; see
# BandwidthDram.shift_profile) instead of a dozen small numpy calls; False always computes them.
SHIFTED_DMA = True
# A DMA load that goes chunk by chunk waits once per run of chunks that use no SRAM port cycles
# (for their latest arrival) instead of once per chunk; False steps through every chunk.
SEGMENTED_CHUNKS = True


@dataclass(frozen=True)
class RunInputs:
    """The run-time inputs of one timing-mode run: a DRAM image of `size_bytes` holding `regions`
    ((address, bytes) pairs, e.g. a step program's parameters, constants and token ids).

    With inputs, a run starts from INT and FP SRAM cleared and this image, and the DMAs between
    DRAM and INT / FP SRAM move their data for real, so the scalar front end sees the step's
    parameters (q0, s0, k, ...) and every address it derives from them is the step's own. DMAs into
    vector and matrix SRAM, and the vector and matrix units, stay timing-only."""

    size_bytes: int
    regions: tuple[tuple[int, bytes], ...]

    def __post_init__(self) -> None:
        for address, data in self.regions:
            if address < 0 or address + len(data) > self.size_bytes:
                raise ValueError(f"run input of {len(data)} bytes at {address:#x} lies outside the "
                                 f"{self.size_bytes:#x}-byte input image")

    def digest(self) -> bytes:
        hasher = hashlib.sha256(f"inputs {self.size_bytes}".encode())
        for address, data in self.regions:
            hasher.update(f"|{address}:{len(data)}|".encode())
            hasher.update(data)
        return hasher.digest()


class CycleLimitError(SimulationError):
    """The run hit its instruction or cycle limit; `unit_states` says where everything stood."""

    def __init__(self, message: str, pc: int, instruction: str, source_line: int | None, unit_states: list[str]):
        self.unit_states = unit_states
        super().__init__(message + "\n  " + "\n  ".join(unit_states), pc, instruction, source_line)


@dataclass
class _Slot:
    """Everything the front end needs about one pc, prepared once at load()."""

    kind: int
    mnemonic: str
    track: str
    checks: tuple[int, ...] = ()          # scoreboard entries that must be ready at dispatch
    dests: tuple[int, ...] = ()           # scoreboard entries written (scalar: +latency; vector: done)
    timing: InstructionTiming | None = None
    operands: dict[str, int] | None = None
    row_reads: tuple[tuple[int, int], ...] = ()   # vector: (int register, space id) of rows read
    row_writes: tuple[tuple[int, int], ...] = ()  # vector: rows written
    port_memory: str = ""                 # scalar loads/stores: the SRAM they use
    # Copies of timing fields the dispatch loop and the units read per instruction (attribute
    # chains cost more than the work they guard on the hot path).
    latency: int = 0
    occupancy: int = 0
    row_keys: tuple[tuple[int, int], ...] = ()    # vector: row_reads + row_writes
    unit_port: str = ""                   # matrix/vector: the SRAM of its only port use ("": several or none)
    unit_port_cycles: int = 0

    def __post_init__(self) -> None:
        if self.timing is not None:
            self.latency, self.occupancy = self.timing.latency, self.timing.occupancy
            if len(self.timing.ports) == 1:
                self.unit_port, self.unit_port_cycles = self.timing.ports[0].memory, self.timing.ports[0].cycles
        self.row_keys = self.row_reads + self.row_writes


class _DmaPlan:
    """The chunks of a DMA shape (offsets from its base, DRAM bytes, SRAM port cycles), as arrays."""

    def __init__(self, offsets: list[int], sizes: list[int], cycles: list[int]):
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.cycles = cycles
        self.cycles_array = np.asarray(cycles, dtype=np.int64)
        self.through = np.cumsum(self.cycles_array)       # port cycles of chunks 0..i
        self.before = self.through - self.cycles_array    # port cycles of chunks 0..i-1
        self.total_cycles = int(self.through[-1])
        positive = np.flatnonzero(self.cycles_array > 0)
        # Indices of the chunks that use the port (None: all of them).
        self.positive = None if len(positive) == len(cycles) else positive
        # Offset from the DMA's first port cycle to the start of its last chunk that uses the
        # port, when no chunk waits (0 when none uses it).
        self.last_offset = int(self.before[positive[-1]]) if len(positive) else 0
        # The chunk-by-chunk load loop of _Run._dma in segments that end at a chunk using the
        # port: a chunk of no port cycles only waits for its data, so a segment's chunks wait for
        # the latest arrival among them (np.maximum.reduceat over these starts). None: every
        # chunk uses the port (no segments to merge).
        if self.positive is not None:
            starts = np.concatenate(([0], self.positive + 1))
            self.segment_starts = starts[starts < len(cycles)]
            self.positive_cycles = [cycles[i] for i in self.positive.tolist()]
        else:
            self.segment_starts, self.positive_cycles = None, cycles
        # What a backend that ignores addresses reads of the plan (request sizes, port cycles),
        # as one number: _Run.timing_inputs records it in place of the DRAM address.
        self.signature = int.from_bytes(hashlib.sha256(self.sizes.tobytes() + b"|" + self.cycles_array.tobytes())
                                        .digest()[:8], "little", signed=True)
        # Filled in on first use by _Run._dma (None: not yet; False: none exact for this plan).
        self.read_profile: _ReadProfile | None | bool = None
        self.write_profile: ShiftProfile | None | bool = None


@dataclass(frozen=True)
class _ReadProfile:
    """A DMA load of one plan that starts at `at` with the DRAM pipe idle: DRAM completions are
    at + dram.done (ShiftProfile), and _read_layout's result is `at` plus these offsets."""

    dram: ShiftProfile
    end: int
    run_starts: tuple[int, ...] | None   # None: no chunk uses the port
    run_ends: tuple[int, ...]
    last_earliest: int


@dataclass
class _DmaShapeInfo:
    """A DMA instruction (pc) with one shape (rows, cols): its timing and what _dma derives from it."""

    timing: InstructionTiming
    row_bytes: int                 # DRAM bytes per row
    stream_cycles: float           # DRAM bytes at peak bandwidth, in cycles (the cycle-limit check)
    extra_ports: tuple             # port uses before the stream (timing.ports[1:])
    tile_load: bool                # a load into matrix SRAM (may overwrite the array's tile)
    kv: bool
    dram_action: str               # live_actions keys and the KV scale row's vector SRAM bytes
    sram_action: str
    kv_bytes: int
    plans: dict = field(default_factory=dict)  # (base % chunk, dstride) -> _DmaPlan


class _UnitState:
    """Schedule state of one queued unit."""

    def __init__(self, name: str, depth: int):
        self.name = name
        self.free_at = 0          # cycle it can start its next instruction
        self.done_at = 0          # cycle everything it accepted has completed
        self.starts: deque[int] = deque(maxlen=depth)  # start cycles of its last `depth` instructions
        self.recent: deque[tuple[int, int, int, int, int]] = deque(maxlen=depth + 2)  # pc, dispatch, start, end, done
        self.busy = 0
        self.stalls: dict[str, int] = dict.fromkeys(STALL_REASONS, 0)
        self.count = 0

    def record(self, pc: int, dispatch: int, start: int, end: int, done: int) -> None:
        # _vector and _matrix inline these lines (they run millions of times); keep them in step.
        self.starts.append(start)
        self.recent.append((pc, dispatch, start, end, done))
        self.free_at = end
        if done > self.done_at:
            self.done_at = done
        self.count += 1


class CycleSimulator:
    """Timing simulator of one machine. Typical use:

        sim = CycleSimulator(load_npu_config("dnpu-edge"))
        sim.load(assemble(text))
        stats = sim.run()
        print(stats.summary()); stats.write_chrome_trace("run.json")

    Options: `dram` backend ("jedec", "jedec-reference" or "bandwidth"; see npu.sim.cost.dram),
    `queue_depth` per unit, `execute_data` (also compute data; preload memories through
    `sim.functional`), `record_timeline` (per instruction events for the Chrome trace, up to
    `timeline_limit`), `record_dram_trace` (JEDEC command trace for npu.sim.dram.check_trace),
    `dma_chunk_bytes` (DRAM request size).
    """

    def __init__(self, config: NPUConfig, *, dram: str = "jedec", queue_depth: int = 8,
                 execute_data: bool = False, dram_size: int = 1 << 24, record_timeline: bool = False,
                 timeline_limit: int = 1_000_000, record_dram_trace: bool = False,
                 dma_chunk_bytes: int = 2048, params: LatencyParameters | None = None,
                 energy: EnergyTable | None = None):
        if queue_depth < 1:
            raise ValueError(f"queue_depth must be at least 1, got {queue_depth}")
        if dma_chunk_bytes < 64 or dma_chunk_bytes & (dma_chunk_bytes - 1):
            raise ValueError(f"dma_chunk_bytes must be a power of two >= 64, got {dma_chunk_bytes}")
        self.config = config
        self.dram_backend_name = dram
        self.queue_depth = queue_depth
        self.execute_data = execute_data
        self.record_timeline, self.timeline_limit = record_timeline, timeline_limit
        self.record_dram_trace = record_dram_trace
        self.dma_chunk_bytes = dma_chunk_bytes
        # cycle counts and energies: the machine's technology unless given
        self.params = params or config.technology.latency
        self.energy_table = energy or config.technology.energy
        # The functional simulator executes scalar/control instructions (and, with
        # execute_data, everything); its DRAM image is only needed when data is computed.
        self.functional = FunctionalSimulator(config, dram_size=dram_size if execute_data else 64,
                                              check_sync=execute_data)
        self.dram = make_dram(dram, config, record_dram_trace)
        self.program: Program | None = None
        self._slots: list[_Slot] = []

    # ---- loading -----------------------------------------------------------------------------
    def load(self, program: Program) -> None:
        """Decode once (through the functional simulator) and prepare a slot per instruction."""
        self.functional.load(program)
        self.program = self.functional.program
        self._slots = [self._prepare(pc, ins) for pc, ins in enumerate(self.functional.decoded_instructions)]
        self._slots.append(_Slot(FAULT, "<end of program>", "control"))

    def _prepare(self, pc: int, ins: Instruction | None) -> _Slot:
        if ins is None:
            return _Slot(FAULT, ".word", "control")
        spec, ops = ins.spec, ins.operands
        if spec.dllm and not self.config.dllm_instructions:
            return _Slot(FAULT, spec.mnemonic, spec.unit.value)
        name = spec.mnemonic
        reads, writes = spec.registers_read(ops), spec.registers_written(ops)  # scoreboard entries
        if spec.unit is Unit.CONTROL:
            kind = {"halt": HALT_KIND, "nop": NOP, "wait": WAIT, "loop": LOOP, "loopi": LOOP}.get(name, BRANCH)
            return _Slot(kind, name, "control", reads, operands=ops)
        if spec.unit is Unit.SCALAR:
            timing = instruction_timing(spec, self.config, ops, params=self.params)
            memory = timing.ports[0].memory if timing.ports else ""
            # A scalar write must also wait for an older in-flight write of the same register.
            return _Slot(SCALAR, name, "scalar", reads + writes, writes, timing, ops, port_memory=memory)
        if spec.unit is Unit.DMA:
            fmt = DRAM_FORMATS[ops["fmt"]]
            if (fmt == "int32") != name.endswith(".i"):
                return _Slot(FAULT, name, "dma")
            return _Slot(DMA, name, "dma", reads, operands=ops)
        timing = instruction_timing(spec, self.config, ops, params=self.params)
        if spec.unit is Unit.MATRIX:
            return _Slot(WRITEBACK if name == "mwb" else MATRIX, name, "matrix", reads, timing=timing, operands=ops)
        row_reads, row_writes = [], []
        for field in spec.fields:
            if field.kind is not Kind.INT_REG or field.name in _VALUE_FIELDS:
                continue
            space = {"fsrc": "f", "fdst": "f", "isrc": "i", "isrc1": "i", "isrc2": "i", "idst": "i",
                     "vrank": "i"}.get(field.name, "v")
            if name == "vrank" and field.name == "vd":  # ranks accumulate in INT SRAM
                row_reads.append((ops[field.name], _SPACE_ID["i"]))
                row_writes.append((ops[field.name], _SPACE_ID["i"]))
            elif field.name in ("vd", "fdst", "idst"):
                row_writes.append((ops[field.name], _SPACE_ID[space]))
            else:
                row_reads.append((ops[field.name], _SPACE_ID[space]))
        return _Slot(VECTOR, name, "vector", reads, writes, timing, ops,
                     tuple(row_reads), tuple(row_writes))

    # ---- running -----------------------------------------------------------------------------
    def run(self, max_instructions: int = 10_000_000, max_cycles: int = 10**10,
            inputs: RunInputs | None = None) -> CycleStats:
        """Simulate from pc 0 until `halt` and every unit has finished; returns the statistics.
        `inputs`: the step's run-time inputs (see RunInputs); None runs on the memories as they are."""
        self._start_state(inputs)
        return _Run(self, max_instructions, max_cycles, inputs is not None).execute()

    # ---- exact reuse: what a run's timing depends on ---------------------------------------------
    # A run is a deterministic function of its start state (the program, this simulator's settings,
    # the limits and the memories the front end reads; registers, loops, units, ports and the DRAM
    # backend always start empty). `start_key` hashes exactly that. `timing_key` is coarser: the
    # hash of the values the timing model reads during the run - branch and loop outcomes (so the
    # dynamic instruction sequence), and the register operands of every DMA, matrix and vector
    # instruction that its schedule uses - which it gets from a pass of the front end alone
    # (scalar and control instructions; no unit scheduling). Runs with equal timing keys have
    # equal statistics. npu.sim.cycle.reuse uses both; tests/test_cycle_generation.py checks the
    # claim on programs with data-dependent branches.

    def start_key(self, max_instructions: int = 10_000_000, max_cycles: int = 10**10,
                  inputs: RunInputs | None = None) -> str:
        """SHA-256 of the whole start state of `run(max_instructions, max_cycles, inputs)`."""
        self._start_state(inputs)
        hasher = hashlib.sha256(b"dnpu cycle run start v1")
        hasher.update(self._settings_digest(max_instructions, max_cycles))
        if inputs is not None:  # the scalar memories were just cleared: the inputs are the state
            hasher.update(inputs.digest())
        for memory in self._front_end_memories():
            hasher.update(memory.tobytes())
        return hasher.hexdigest()

    def timing_key(self, max_instructions: int = 10_000_000, max_cycles: int = 10**10,
                   inputs: RunInputs | None = None) -> str:
        """SHA-256 of every value the timing of `run(max_instructions, max_cycles, inputs)` reads,
        from a run of the front end only; the memories are left as they were. Raises what the
        run would raise for a fault, a DMA outside DRAM or the instruction limit."""
        functional = self.functional
        saved_dram = functional.dram.data.copy()
        saved = [memory.copy() for memory in self._front_end_memories()[:2]]
        if self.execute_data:
            saved += [functional.vector_sram.data.copy(), functional.matrix_sram.data.copy()]
        try:
            self._start_state(inputs)
            trace = _Run(self, max_instructions, max_cycles, inputs is not None).timing_inputs()
        finally:
            functional.dram.data = saved_dram
            srams = [functional.int_sram, functional.fp_sram, functional.vector_sram, functional.matrix_sram]
            for sram, copy in zip(srams, saved):
                sram.data[:] = copy
        hasher = hashlib.sha256(b"dnpu cycle timing inputs v1")
        hasher.update(self._settings_digest(max_instructions, max_cycles))
        hasher.update(trace)
        return hasher.hexdigest()

    def settings_key(self, max_instructions: int = 10_000_000, max_cycles: int = 10**10) -> str:
        """SHA-256 of the loaded program, this simulator's settings and the limits (no memories)."""
        if self.program is None:
            raise SimulationError("no program loaded; call load() first", 0, "<none>")
        return self._settings_digest(max_instructions, max_cycles).hex()

    def _start_state(self, inputs: RunInputs | None) -> None:
        """The start state of a run: registers and loops cleared, the inputs placed, a new DRAM backend."""
        if self.program is None:
            raise SimulationError("no program loaded; call load() first", 0, "<none>")
        self.functional.reset()
        if inputs is not None:
            if self.execute_data:
                raise ValueError("RunInputs are for timing mode; with execute_data=True preload sim.functional")
            functional = self.functional
            functional.int_sram.data[:] = 0
            functional.fp_sram.data[:] = 0
            if functional.dram.size != inputs.size_bytes:
                functional.dram.data = np.zeros(inputs.size_bytes, dtype=np.uint8)
            else:
                functional.dram.data[:] = 0
            for address, data in inputs.regions:
                functional.dram.data[address:address + len(data)] = np.frombuffer(data, dtype=np.uint8)
        self.dram = make_dram(self.dram_backend_name, self.config, self.record_dram_trace)

    def _front_end_memories(self) -> list[np.ndarray]:
        """The memories a run can read or change: every one with execute_data, else those of the
        scalar front end (INT and FP SRAM, and the DRAM image their DMAs use)."""
        functional = self.functional
        memories = [functional.int_sram.data, functional.fp_sram.data, functional.dram.data]
        if self.execute_data:
            memories += [functional.vector_sram.data, functional.matrix_sram.data, functional.accumulators]
        return memories

    def _settings_digest(self, max_instructions: int, max_cycles: int) -> bytes:
        """Everything about this simulator and run that is not memory: machine, cost tables,
        options, limits, the program's words."""
        from npu.sim.cost import dram as dram_module

        settings = (self.config, self.params, self.energy_table, self.dram_backend_name, self.queue_depth,
                    self.execute_data, self.record_timeline, self.timeline_limit, self.record_dram_trace,
                    self.dma_chunk_bytes, max_instructions, max_cycles, FAST_DMA, SHIFTED_DMA, SEGMENTED_CHUNKS,
                    dram_module.FAST_SHIFT, dram_module._FIXED_POINT_PASSES, dram_module._BUSY_RUNS)
        hasher = hashlib.sha256(repr(settings).encode())
        hasher.update(np.ascontiguousarray(self.program.words, dtype="<u4").tobytes())
        return hasher.digest()


class _Run:
    """The state of one run (kept apart from the simulator so runs cannot leak into each other)."""

    def __init__(self, sim: CycleSimulator, max_instructions: int, max_cycles: int, scalar_dma: bool = False):
        self.sim = sim
        # which pcs run their functional handler at dispatch: every one with execute_data; with
        # RunInputs also the DMAs between DRAM and INT / FP SRAM (their data is the step's input)
        self.runs_handler = [sim.execute_data or (scalar_dma and slot.kind == DMA and slot.mnemonic[-2:] in (".i", ".f"))
                             for slot in sim._slots]
        self.config = sim.config
        self.params = sim.params
        self.max_instructions, self.max_cycles = max_instructions, max_cycles
        self.fsim = sim.functional
        self.slots = sim._slots
        self.units = {name: _UnitState(name, sim.queue_depth) for name in QUEUED_UNITS}
        self.vector_unit, self.matrix_unit = self.units["vector"], self.units["matrix"]
        self.writeback_queue = _UnitState("matrix write-back", sim.queue_depth)  # only its `starts` are used
        self.int_regs = self.fsim.int_regs   # cleared in place by reset, so this stays the live list
        self.pools = {name: PortPool(name, getattr(self.config, name).ports) for name in SRAMS}
        self.ready = [0] * (NUM_INT_REGS + NUM_FP_REGS + NUM_ADDR_REGS)  # register scoreboard
        self.row_ready: dict[int, int] = {}        # vector-unit row writes in flight
        self.fe_stalls: Counter[str] = Counter()
        self.counts = [0] * len(self.slots)
        self.live_actions: Counter[str] = Counter()  # actions that depend on run-time operands
        self.timeline: list[tuple[str, str, int, int, int]] = []
        self.timeline_complete = True
        self.sync_points: list[tuple[int, int]] = []  # (pc, cycle) after every `wait` and the `halt`
        self.dma_plans: dict[tuple, _DmaPlan] = {}
        self.dma_shapes: dict[tuple[int, int, int], _DmaShapeInfo] = {}  # by (pc, rows, cols)
        self.dram_capacity = sim.dram.capacity_bytes
        self.dma_chunk = sim.dma_chunk_bytes
        # matrix unit state
        self.loaded_tile: tuple[int, int] | None = None   # (matrix SRAM address, transposed)
        self.tile_ready = 0          # cycle the loaded tile is fully in the array
        self.shadow_free = 0         # cycle the weight double-buffer can take the next tile
        accumulators = self.config.accumulators
        self.acc_ready = [0] * accumulators  # cycle each accumulator holds every issued op's result
        self.wb_end = [0] * accumulators     # cycle the last `mwb` of each accumulator has read it
        self.wb_free = 0                     # cycle the write-back path can start the next `mwb`
        self.first_result = tile_op_first_result(self.config, self.params)
        # recent tile ops' activation rows (low, high, feed end) and `mwb` rows (low, high, end),
        # in order of their ends; entries that ended before the op that looks are dropped (the
        # array and the write-back path each run in order, so no later op needs them either),
        # and a queue of `depth` entries bounds how many can still be live
        self.feeds: deque[tuple[int, int, int]] = deque(maxlen=2 * sim.queue_depth)
        self.tile_loads: deque[tuple[int, int]] = deque(maxlen=2 * sim.queue_depth)  # (address, loaded)
        self.writebacks: deque[tuple[int, int, int]] = deque(maxlen=2 * sim.queue_depth + accumulators)
        self.pc = 0                  # pc being dispatched (for the units' records)

    # ---- the dispatch loop ---------------------------------------------------------------------
    def execute(self) -> CycleStats:
        # This loop runs once per dynamic instruction (13 M for a LLaDA-8B step), so it keeps
        # everything it touches in locals, counts front-end stalls in plain ints, builds timeline
        # events only when they are recorded, and inlines advance_loops' common case.
        fsim, slots, counts, ready = self.fsim, self.slots, self.counts, self.ready
        handlers = [fsim.handler(pc) for pc in range(len(slots))]
        advance_loops, loops = fsim.advance_loops, fsim.active_loops
        units, params, pools = self.units, self.params, self.pools
        # `mwb` has its own queue in front of the write-back path (its own `starts`)
        kind_units = {DMA: units["dma"], MATRIX: units["matrix"], VECTOR: units["vector"],
                      WRITEBACK: self.writeback_queue}
        vector_unit_run, matrix_unit_run, dma_unit_run = self._vector, self._matrix, self._dma
        depth = self.sim.queue_depth
        record = self.sim.record_timeline
        runs_handler = self.runs_handler
        max_cycles, max_instructions = self.max_cycles, self.max_instructions
        branch_penalty = params.taken_branch_penalty
        sync_points = self.sync_points
        halt = HALT
        stall_dependency = stall_queue = stall_port = stall_wait = stall_branch = 0
        pc, fe, executed, halted = 0, 0, 0, False
        # paired issue: the cycle of the last queued-unit dispatch a scalar instruction may share
        pairing, pair_at, paired = self.config.paired_issue, -1, 0
        try:
            while executed < max_instructions:
                slot = slots[pc]
                kind = slot.kind
                t = fe
                latest = 0  # the latest ready cycle of the register operands (paired issue reads it)
                checks = slot.checks
                if checks:
                    for entry in checks:
                        if ready[entry] > latest:
                            latest = ready[entry]
                    if latest > fe:
                        stall_dependency += latest - fe
                        t = latest
                if t > max_cycles:
                    self._limit(pc, t, f"instruction could not dispatch before the cycle limit {max_cycles}")
                if kind == SCALAR:
                    if pair_at >= 0 and t == fe == pair_at + 1 and latest <= pair_at and not slot.port_memory:
                        t = pair_at  # issued beside the queued instruction before it
                        paired += 1
                    pair_at = -1
                    if slot.port_memory:
                        granted = pools[slot.port_memory].reserve(t, 1)
                        if granted > t:
                            stall_port += granted - t
                            t = granted
                    next_pc = handlers[pc]()
                    done = t + slot.latency
                    for entry in slot.dests:
                        ready[entry] = done
                    fe = t + 1
                    if record:
                        self._event("scalar", slot.mnemonic, pc, t, fe)
                elif kind >= DMA:  # queued units (and faults)
                    if kind == FAULT:
                        handlers[pc]()
                        raise InstructionFault("the functional simulator accepted an instruction the timing model rejects")
                    starts = kind_units[kind].starts
                    if len(starts) == depth and starts[0] > t:
                        stall_queue += starts[0] - t
                        t = starts[0]
                    next_pc = handlers[pc]() if runs_handler[pc] else pc + 1
                    if kind == VECTOR:
                        start, end = vector_unit_run(slot, t, pc)
                    elif kind == MATRIX or kind == WRITEBACK:
                        start, end = matrix_unit_run(slot, t, pc)
                    else:
                        self.pc = pc
                        start, end = dma_unit_run(slot, t)
                    fe = t + 1
                    if pairing:
                        pair_at = t
                    if record:
                        self._event(slot.track, slot.mnemonic, pc, start, end)
                elif kind == WAIT:
                    pair_at = -1
                    event_start = t
                    mask = slot.operands["units"]
                    for bit, name in enumerate(QUEUED_UNITS):
                        if mask >> bit & 1 and units[name].done_at > t:
                            t = units[name].done_at
                    if t > fe:
                        stall_wait += t - fe
                    if t > max_cycles:
                        self._limit(pc, t, f"`wait` would last until cycle {t}, past the cycle limit {max_cycles}")
                    next_pc = handlers[pc]()
                    fe = t + 1
                    if record:
                        self._event("control", slot.mnemonic, pc, event_start, fe)
                    sync_points.append((pc, fe))
                elif kind == BRANCH:
                    pair_at = -1
                    next_pc = handlers[pc]()
                    fe = t + 1
                    if next_pc != pc + 1:
                        fe += branch_penalty
                        stall_branch += branch_penalty
                    if record:
                        self._event("control", slot.mnemonic, pc, t, fe)
                else:  # LOOP, NOP, HALT_KIND
                    pair_at = -1
                    next_pc = handlers[pc]()
                    fe = t + 1
                    if record:
                        self._event("control", slot.mnemonic, pc, t, fe)
                counts[pc] += 1
                executed += 1
                if next_pc == halt:
                    halted = True
                    sync_points.append((pc, -1))  # the run's end, known once the units drain
                    break
                if loops:
                    top = loops[-1]
                    if next_pc == top.end:  # fsim.advance_loops; its common case (another iteration) inlined
                        if top.remaining > 1:
                            top.remaining -= 1
                            next_pc = top.start
                        else:
                            next_pc = advance_loops(next_pc)
                pc = next_pc
                if executed & 1023 == 0:
                    self._prune(fe)
        except InstructionFault as fault:
            fsim.raise_at(pc, str(fault))
        except (MemoryAccessError, ValueError, FloatingPointError) as err:
            fsim.raise_at(pc, f"{type(err).__name__}: {err}")
        self.paired = paired
        self.fe_stalls.update(dependency=stall_dependency, queue_full=stall_queue, port_conflict=stall_port,
                              wait=stall_wait, branch=stall_branch)
        if not halted:
            self._limit(pc, fe, f"instruction limit {self.max_instructions} reached without `halt`")
        total = max([fe] + [u.done_at for u in units.values()])
        if total > max_cycles:
            self._limit(pc, total, f"the units finish at cycle {total}, past the cycle limit {max_cycles}")
        return self._stats(total, executed)

    def timing_inputs(self) -> bytes:
        """The run's front end alone, recording every value the timing model reads (see
        CycleSimulator.timing_key): per executed branch the pc it continues at, per `loop` its
        count, per vector instruction how recently each of its rows was written by a vector op (the
        only thing the vector unit reads of them; see _input_step), per tile op / `mwb` whether its rows overlap those of
        each recent op of the other kind and whether it switches the array's weight tile (the
        only questions `_matrix` asks of them; see _matrix_input_step), per DMA its shape, DRAM
        stride, DRAM address (as the DRAM backend sees it: the whole address for the JEDEC model,
        which maps it to banks and rows; its chunk sizes and port cycles for the bandwidth model,
        which reads only those) and, for a load into matrix SRAM, whether its span overlaps the
        tiles of the last tile switches and the tile in the array (`_dma` reads no other DMA's
        SRAM address).
        Every executed pc's record has a fixed length, so equal records mean equal instruction
        sequences with equal operands. Returns the SHA-256 digest of the record."""
        fsim, slots = self.fsim, self.slots
        regs, aregs = self.int_regs, fsim.addr_regs
        record: list[int] = []
        add, extend = record.append, record.extend
        self.row_writers: dict[int, int] = {}   # vector-unit row key -> index of its last writer
        self.vector_count = [0]                 # vector ops so far
        # A vector op starts no earlier than the previous one ends (occupancy >= 1 cycle each),
        # so the op d ops after a writer starts >= d cycles after it: with d >= every vector
        # op's latency the writer has completed (row_ready no longer delays anything).
        vector_slots = [slot for slot in slots if slot.kind == VECTOR]
        self.row_horizon = max((slot.latency for slot in vector_slots), default=0) + 1 \
            if all(slot.occupancy >= 1 for slot in vector_slots) else 1 << 62
        # the rows of the last tile ops / `mwb`s that `feeds` / `writebacks` can still hold
        self.key_feeds: deque[tuple[int, int]] = deque(maxlen=self.feeds.maxlen)
        self.key_writebacks: deque[tuple[int, int]] = deque(maxlen=self.writebacks.maxlen)
        self.key_hull = [0, 0]   # [low, high) around key_writebacks' rows (none yet: empty)
        # the array's weight tile ([tile] or [None]) and the addresses of the last tile switches,
        # as `_matrix` and `_dma` keep them (loaded_tile, tile_loads) but without their times
        self.key_loaded_tile: list[tuple[int, bool] | None] = [None]
        self.key_tile_loads: deque[int] = deque(maxlen=self.tile_loads.maxlen)
        if max(self.feeds.maxlen, self.writebacks.maxlen) > 62:
            raise ValueError(f"queue depth {self.sim.queue_depth}: the timing key's overlap bits "
                             f"({max(self.feeds.maxlen, self.writebacks.maxlen)}) exceed one 64-bit word")
        hasher = hashlib.sha256()
        steps = [self._input_step(pc, slot, fsim.handler(pc), add, extend) for pc, slot in enumerate(slots)]
        loops, advance_loops = fsim.active_loops, fsim.advance_loops
        max_instructions = self.max_instructions
        pc, executed, halted = 0, 0, False
        try:
            while executed < max_instructions:
                next_pc = steps[pc]()
                executed += 1
                if next_pc == HALT:
                    halted = True
                    break
                if loops and next_pc == loops[-1].end:
                    next_pc = advance_loops(next_pc)
                pc = next_pc
                if executed & 4095 == 0 and len(record) > 1 << 20:
                    hasher.update(array("q", record).tobytes())
                    record.clear()
        except InstructionFault as fault:
            fsim.raise_at(pc, str(fault))
        except (MemoryAccessError, ValueError, FloatingPointError) as err:
            fsim.raise_at(pc, f"{type(err).__name__}: {err}")
        if not halted:
            self._limit(pc, 0, f"instruction limit {self.max_instructions} reached without `halt`")
        hasher.update(array("q", record).tobytes())
        hasher.update(f"|executed {executed}".encode())
        return hasher.digest()

    def _input_step(self, pc: int, slot: _Slot, handler, add, extend):
        """What timing_inputs does at `pc`: a function returning the next pc (see timing_inputs)."""
        regs, aregs, kind, ops = self.int_regs, self.fsim.addr_regs, slot.kind, slot.operands
        following = pc + 1
        runs_handler = self.runs_handler[pc]
        if kind == BRANCH:
            def branch() -> int:
                next_pc = handler()
                add(next_pc)
                return next_pc
            return branch
        if kind == LOOP and slot.mnemonic == "loop":
            count = ops["count"]

            def loop() -> int:
                add(regs[count])
                return handler()
            return loop
        if kind == FAULT:
            def fault() -> int:
                handler()
                raise InstructionFault("the functional simulator accepted an instruction the timing model rejects")
            return fault
        if kind in (SCALAR, LOOP, WAIT, HALT_KIND, NOP):
            return handler
        if kind == VECTOR:
            # The vector unit reads a row only through row_ready: the completion of the last
            # vector op that wrote it. So a row is recorded as how many vector ops ago it was
            # last written, capped at row_horizon (a writer that long ago has completed before
            # this op can start; see _key_state): runs whose rows differ but whose recent
            # writers coincide record the same. (Matrix rows: _matrix_input_step.)
            writers, row_keys, row_writes = self.row_writers, slot.row_keys, slot.row_writes
            counter, horizon = self.vector_count, self.row_horizon

            def vector() -> int:
                i = counter[0]
                counter[0] = i + 1
                for reg, space in row_keys:
                    last = writers.get(regs[reg] * 4 + space)
                    add(horizon if last is None or i - last >= horizon else i - last)
                for reg, space in row_writes:
                    writers[regs[reg] * 4 + space] = i
                return handler() if runs_handler else following
            return vector
        if kind in (MATRIX, WRITEBACK):
            return self._matrix_input_step(slot, handler if runs_handler else None, following, add)
        return self._dma_input_step(pc, slot, handler if runs_handler else None, extend)

    def _matrix_input_step(self, slot: _Slot, handler, following: int, add):
        """timing_inputs at a tile op or `mwb`. `_matrix` reads an op's rows [low, high) only to
        ask whether they overlap the rows of recent ops of the other kind - a tile op those of the
        `mwb`s in `writebacks`, an `mwb` those of the tile ops in `feeds` - and both deques are
        suffixes (after dropping ops that ended, a matter of timing) of the last `maxlen` ops of
        that kind. So it records, per op, the overlap bits against every one of those last ops
        (oldest first), not the rows: runs whose rows differ by a shift that keeps every such
        overlap record the same. Likewise the weight tile: `_matrix` compares it with the tile in
        the array (switch or not, recorded) and `_dma` compares the spans of loads into matrix
        SRAM with the tiles of the last switches and the tile in the array (_dma_input_step)."""
        regs, ops = self.int_regs, slot.operands
        row_reg, stride_reg = ops["act" if "act" in ops else "dst"], ops["stride"]
        span = self.config.blen - 1
        mlen = self.config.mlen
        # the rows of the last tile ops and `mwb`s, and the hull [low, high) of the `mwb`s' (most
        # tile ops' rows lie outside every recent `mwb`'s: one comparison with the hull says so;
        # `mwb`s, a few percent of the ops, compare with every tile op of their window)
        feeds, writebacks, hull = self.key_feeds, self.key_writebacks, self.key_hull
        weight_reg, transposed = ops.get("w"), slot.mnemonic in ("mmt", "mmta")
        tile_loads, loaded_tile = self.key_tile_loads, self.key_loaded_tile

        if slot.kind == WRITEBACK:
            def matrix() -> int:
                low = regs[row_reg]
                high = low + regs[stride_reg] * span + mlen
                mask, bit = 0, 1
                for other_low, other_high in feeds:
                    if other_low < high and low < other_high:
                        mask |= bit
                    bit <<= 1
                add(mask)
                writebacks.append((low, high))
                hull[:] = min(r[0] for r in writebacks), max(r[1] for r in writebacks)
                return handler() if handler is not None else following
        else:
            def matrix() -> int:
                low = regs[row_reg]
                high = low + regs[stride_reg] * span + mlen
                mask = 0
                if hull[0] < high and low < hull[1]:
                    bit = 1
                    for other_low, other_high in writebacks:
                        if other_low < high and low < other_high:
                            mask |= bit
                        bit <<= 1
                add(mask)
                tile = (regs[weight_reg], transposed)
                if tile != loaded_tile[0]:   # `_matrix` switches tiles: a weight load
                    loaded_tile[0] = tile
                    tile_loads.append(tile[0])
                    add(1)
                else:
                    add(0)
                feeds.append((low, high))
                return handler() if handler is not None else following
        return matrix

    def _dma_input_step(self, pc: int, slot: _Slot, handler, extend):
        """timing_inputs at a DMA: its shape, strides, SRAM address and DRAM address as the backend
        reads it, after the checks `_dma` makes (a shape or DRAM range it rejects raises here too)."""
        regs, aregs, ops = self.int_regs, self.fsim.addr_regs, slot.operands
        rows_reg, cols_reg, dstride_reg, sram_reg = ops["rows"], ops["cols"], ops["dstride"], ops["sram"]
        sstride_reg = ops.get("sstride")       # None: a KV transfer (its SRAM stride is cols)
        dram_reg = ops["dram"]
        whole_address = self.sim.dram.uses_addresses
        chunk, capacity, following = self.dma_chunk, self.dram_capacity, pc + 1
        shapes = self.dma_shapes
        tile_loads, loaded_tile = self.key_tile_loads, self.key_loaded_tile
        tile_elements = self.config.mlen * self.config.mlen

        def dma() -> int:
            rows, cols, base, dstride = regs[rows_reg], regs[cols_reg], aregs[dram_reg], regs[dstride_reg]
            self.pc = pc
            info = shapes.get((pc, rows, cols)) or self._dma_shape(slot, rows, cols)
            address = 0
            if info.timing.dram_bytes:
                last_row = base + dstride * (rows - 1)
                if base < 0 or last_row < 0 or base + info.row_bytes > capacity \
                        or last_row + info.row_bytes > capacity:
                    self._check_dram_range(base, dstride, rows, info.row_bytes)
                if whole_address:
                    address = base
                else:  # the plan _dma would use: its chunk sizes and port cycles are all it reads
                    plans = info.plans
                    plan = plans.get((base % chunk, dstride))
                    if plan is None:
                        if len(plans) > 4096:
                            plans.clear()
                        plan = plans[base % chunk, dstride] = self._dma_plan(base, dstride, rows, info.timing)
                    address = plan.signature
            if info.tile_load:
                # `_dma` asks of its matrix-SRAM span only whether it overlaps the tiles of the last
                # tile switches (_tiles_read: `tile_loads`, the last `maxlen` switches, filtered by
                # time) and the tile in the array (_invalidate_tile, which then empties it)
                low, high = self._dma_span(regs[sram_reg], rows, cols,
                                           cols if sstride_reg is None else regs[sstride_reg])
                mask, bit = 0, 1
                for tile_low in tile_loads:
                    if tile_low < high and low < tile_low + tile_elements:
                        mask |= bit
                    bit <<= 1
                loaded = loaded_tile[0]
                hit = -1  # no check made
                if info.timing.dram_bytes and loaded is not None:
                    hit = int(loaded[0] < high and low < loaded[0] + tile_elements)
                    if hit:
                        loaded_tile[0] = None
                extend((rows, cols, dstride, mask, hit, address))
            else:
                extend((rows, cols, dstride, -1, -1, address))
            return handler() if handler is not None else following
        return dma

    def _event(self, track: str, mnemonic: str, pc: int, start: int, end: int) -> None:
        """Record one timeline event (record_timeline=True), up to the simulator's limit."""
        if len(self.timeline) < self.sim.timeline_limit:
            self.timeline.append((track, mnemonic, pc, start, end))
        else:
            self.timeline_complete = False

    def _prune(self, horizon: int) -> None:
        for pool in self.pools.values():
            pool.prune(horizon)
        if len(self.row_ready) > 4096:
            self.row_ready = {key: at for key, at in self.row_ready.items() if at > horizon}

    # ---- units ---------------------------------------------------------------------------------
    def _vector(self, slot: _Slot, dispatch: int, pc: int) -> tuple[int, int]:
        unit, regs, row_ready = self.vector_unit, self.int_regs, self.row_ready
        earliest = dispatch + 1
        if unit.free_at > earliest:
            earliest = unit.free_at
        start = earliest
        for reg, space in slot.row_keys:  # rows read or written by an in-flight vector op
            at = row_ready.get(regs[reg] * 4 + space, 0)
            if at > start:
                start = at
        if start > earliest:
            unit.stalls["dependency"] += start - earliest
        if slot.unit_port:
            granted = self.pools[slot.unit_port].reserve(start, slot.unit_port_cycles)
        else:
            granted = self._reserve(slot.timing.ports, start)
        if granted > start:
            unit.stalls["port_conflict"] += granted - start
        end, done = granted + slot.occupancy, granted + slot.latency
        for reg, space in slot.row_writes:
            row_ready[regs[reg] * 4 + space] = done
        if slot.dests:
            ready = self.ready
            for entry in slot.dests:
                ready[entry] = done
        unit.busy += slot.occupancy
        # unit.record(pc, dispatch, granted, end, done), inlined (millions of calls):
        unit.starts.append(granted)
        unit.recent.append((pc, dispatch, granted, end, done))
        unit.free_at = end
        if done > unit.done_at:
            unit.done_at = done
        unit.count += 1
        return granted, end

    def _matrix(self, slot: _Slot, dispatch: int, pc: int) -> tuple[int, int]:
        """A tile op on the array, or an `mwb` on the write-back path.

        The array runs tile ops in order; each result reaches its accumulator `latency` cycles
        after the op starts. `mwb` reads one accumulator into vector SRAM through its own path,
        so it overlaps the tile ops of other accumulators: it waits for its accumulator's last
        result, the previous write-back, and earlier tile ops still reading its destination rows.
        A tile op waits for its weight tile, for an earlier `mwb` of its accumulator to have read
        the rows its first result would overwrite, and for in-flight write-backs into its
        activation rows (same-unit accesses are ordered, ISA rule 1)."""
        unit, timing, regs = self.matrix_unit, slot.timing, self.int_regs
        ops = slot.operands
        acc = ops["acc"]
        stalls = unit.stalls
        rows_low = regs[ops["act" if "act" in ops else "dst"]]
        rows_high = rows_low + regs[ops["stride"]] * (self.config.blen - 1) + self.config.mlen
        if slot.mnemonic == "mwb":
            start = dispatch + 1
            for at in (self.wb_free, self.acc_ready[acc]):
                if at > start:
                    start = at
            feeds = self.feeds
            while feeds and feeds[0][2] <= start:
                feeds.popleft()
            for low, high, feed_end in feeds:  # WAR: earlier tile ops' activation reads
                if feed_end > start and low < rows_high and rows_low < high:
                    start = feed_end
            granted = self.pools[slot.unit_port].reserve(start, slot.unit_port_cycles) if slot.unit_port \
                else self._reserve(timing.ports, start)
            end, done = granted + slot.occupancy, granted + slot.latency
            self.wb_free = self.wb_end[acc] = end
            self.writebacks.append((rows_low, rows_high, end))
        else:
            earliest = dispatch + 1
            if unit.free_at > earliest:
                earliest = unit.free_at
            # the op's first result may land only after the accumulator's write-back has read it
            after_wb = self.wb_end[acc] - self.first_result
            if after_wb > earliest:
                stalls["dependency"] += after_wb - earliest
                earliest = after_wb
            writebacks = self.writebacks
            while writebacks and writebacks[0][2] <= earliest:
                writebacks.popleft()
            for low, high, wb_end in writebacks:  # RAW: rows an in-flight mwb still writes
                if wb_end > earliest and low < rows_high and rows_low < high:
                    stalls["dependency"] += wb_end - earliest
                    earliest = wb_end
            tile = (regs[ops["w"]], slot.mnemonic in ("mmt", "mmta"))
            switched = tile != self.loaded_tile
            if switched:
                # The array double-buffers weights: the next tile streams in through a matrix
                # SRAM port once the op that switched to the current tile has started (the
                # shadow registers are free from then on, however many ops reuse the tile).
                wanted = max(dispatch + 1, self.shadow_free)
                loading = self.pools["matrix_sram"].reserve(wanted, timing.weight_load_cycles)
                self.loaded_tile, self.tile_ready = tile, loading + timing.weight_load_cycles
                self.tile_loads.append((tile[0], self.tile_ready))
                self.live_actions["matrix_sram_read_bytes"] += timing.weight_bytes
                port_delay = loading - wanted
            else:
                port_delay = 0
            start = earliest if earliest >= self.tile_ready else self.tile_ready
            if start > earliest:
                waited = start - earliest
                blamed_on_port = min(port_delay, waited)
                stalls["port_conflict"] += blamed_on_port
                stalls["dependency"] += waited - blamed_on_port
            if slot.unit_port:
                granted = self.pools[slot.unit_port].reserve(start, slot.unit_port_cycles)
            else:
                granted = self._reserve(timing.ports, start)
            if granted > start:
                stalls["port_conflict"] += granted - start
            end, done = granted + slot.occupancy, granted + slot.latency
            if switched:
                self.shadow_free = granted
            self.acc_ready[acc] = done
            self.feeds.append((rows_low, rows_high, granted + slot.unit_port_cycles))
            unit.busy += slot.occupancy
            unit.free_at = end
        # unit.record(pc, dispatch, granted, end, done), inlined (millions of calls):
        (self.writeback_queue if slot.kind == WRITEBACK else unit).starts.append(granted)
        unit.recent.append((pc, dispatch, granted, end, done))
        if done > unit.done_at:
            unit.done_at = done
        unit.count += 1
        return granted, end

    def _dma_shape(self, slot: _Slot, rows: int, cols: int) -> _DmaShapeInfo:
        """What a DMA of `slot` with this shape needs per execution, computed once (by pc and shape)."""
        if rows < 0 or cols < 0:
            raise InstructionFault(f"negative shape rows={rows}, cols={cols}")
        key = (self.pc, rows, cols)
        if len(self.dma_shapes) > 4096:
            self.dma_shapes.clear()
        timing = instruction_timing(slot.mnemonic, self.config, slot.operands, DmaShape(rows, cols), self.params)
        kv = "kv" in slot.mnemonic
        info = self.dma_shapes[key] = _DmaShapeInfo(
            timing=timing, row_bytes=timing.dram_bytes // rows if rows else 0,
            stream_cycles=(timing.dram_bytes / self.sim.dram.timing.peak_bandwidth_gbps * self.config.clock_ghz
                           if timing.dram_bytes else 0.0),
            extra_ports=timing.ports[1:], tile_load=slot.mnemonic in ("dld.m", "dldkv.m"), kv=kv,
            dram_action=f"dram_{'write' if timing.dram_write else 'read'}_bytes",
            sram_action=f"{timing.sram_memory}_{'read' if timing.dram_write else 'write'}_bytes",
            kv_bytes=cols * self.config.vector_element_bytes if kv else 0)
        return info

    def _dma(self, slot: _Slot, dispatch: int) -> tuple[int, int]:
        unit, ops = self.units["dma"], slot.operands
        regs, aregs = self.int_regs, self.fsim.addr_regs
        rows, cols = regs[ops["rows"]], regs[ops["cols"]]
        # The timing is a function of the instruction and its shape.
        info = self.dma_shapes.get((self.pc, rows, cols)) or self._dma_shape(slot, rows, cols)
        timing = info.timing
        start = dispatch + 1
        if unit.free_at > start:
            start = unit.free_at
        if info.tile_load and self.tile_loads:
            # ISA rule 4: a DMA into matrix SRAM starts once earlier tile ops have read the tiles it overwrites
            read = self._tiles_read(regs[ops["sram"]], rows, cols, cols if info.kv else regs[ops["sstride"]], start)
            if read > start:
                unit.stalls["dependency"] += read - start
                start = read
        at = start + timing.dma_setup
        busy = timing.dma_setup
        if timing.dram_bytes:
            base, dstride = aregs[ops["dram"]], regs[ops["dstride"]]
            last_row = base + dstride * (rows - 1)  # _check_dram_range, inlined
            if base < 0 or last_row < 0 or base + info.row_bytes > self.dram_capacity \
                    or last_row + info.row_bytes > self.dram_capacity:
                self._check_dram_range(base, dstride, rows, info.row_bytes)
            lowest = start + timing.dma_setup + timing.sram_port_cycles
            if lowest + info.stream_cycles > self.max_cycles:
                self._limit(self.pc, lowest, f"{slot.mnemonic} of {timing.dram_bytes:,} DRAM bytes cannot finish "
                                             f"before the cycle limit {self.max_cycles}")
            for use in info.extra_ports:  # the KV smoothing-scale row, read before the stream
                granted = self.pools[use.memory].reserve(at, use.cycles)
                unit.stalls["port_conflict"] += granted - at
                at = granted + use.cycles
                busy += use.cycles
            if info.tile_load and self.loaded_tile is not None:
                self._invalidate_tile(regs[ops["sram"]], rows, cols, cols if info.kv else regs[ops["sstride"]])
            plans = info.plans
            plan = plans.get((base % self.dma_chunk, dstride))
            if plan is None:
                if len(plans) > 4096:
                    plans.clear()
                plan = plans[base % self.dma_chunk, dstride] = self._dma_plan(base, dstride, rows, timing)
            pool = self.pools[timing.sram_memory]
            dram = self.sim.dram
            # DRAM request addresses (a backend that ignores them gets the offsets: same length)
            addrs = base + plan.offsets if dram.uses_addresses else plan.offsets
            waited_dram = waited_port = 0
            if timing.dram_write:
                if FAST_DMA and (not plan.total_cycles or
                                 pool.reserve_run([at], [at + plan.total_cycles], at + plan.last_offset)):
                    first = at  # every chunk got the port as soon as it asked: issue = first + through
                    at += plan.total_cycles
                    profile = plan.write_profile
                    if profile is None:
                        profile = plan.write_profile = self._shift_profile(plan.sizes, plan.through, True)
                    if profile and dram.serve_shifted(profile, first):
                        last = first + profile.done_max
                    else:
                        last = int(dram.serve_arrays(addrs, plan.sizes, True, first + plan.through).max())
                else:
                    issue = []
                    for chunk_cycles in plan.cycles:
                        if chunk_cycles:  # a chunk of no port cycles reserves nothing (PortPool.reserve)
                            granted = pool.reserve(at, chunk_cycles)
                            waited_port += granted - at
                            at = granted + chunk_cycles
                        issue.append(at)
                    issue = np.asarray(issue, dtype=np.int64)
                    last = int(dram.serve_arrays(addrs, plan.sizes, True, issue).max())
                if last > at:
                    waited_dram += last - at
                    at = last
            else:
                profile = plan.read_profile if FAST_DMA else False
                if profile is None:
                    profile = plan.read_profile = self._read_profile(plan)
                if profile and dram.serve_shifted(profile.dram, at):
                    starts = profile.run_starts
                    if starts is None or pool.reserve_run([at + s for s in starts], [at + e for e in profile.run_ends],
                                                          at + profile.last_earliest):
                        end = at + profile.end
                    else:
                        end, arrivals = None, at + profile.dram.done
                else:
                    arrivals = dram.serve_arrays(addrs, plan.sizes, False, at + plan.before)
                    end = self._read_run(pool, plan, arrivals, at) if FAST_DMA else None
                if end is not None:
                    waited_dram = end - at - plan.total_cycles
                    at = end
                else:
                    # chunk by chunk: wait for the chunk's data, then reserve its port cycles; a
                    # chunk of no port cycles reserves nothing (PortPool.reserve), so runs of them
                    # wait once, for their latest arrival (_DmaPlan.segment_starts)
                    reserve = pool.reserve
                    if SEGMENTED_CHUNKS and plan.segment_starts is not None:
                        peaks, port_cycles = np.maximum.reduceat(arrivals, plan.segment_starts).tolist(), \
                            plan.positive_cycles
                    else:
                        peaks, port_cycles = arrivals.tolist(), plan.cycles
                    for arrival, chunk_cycles in zip(peaks, port_cycles):
                        if arrival > at:
                            waited_dram += arrival - at
                            at = arrival
                        if chunk_cycles:
                            granted = reserve(at, chunk_cycles)
                            waited_port += granted - at
                            at = granted + chunk_cycles
                    if len(peaks) > len(port_cycles) and peaks[-1] > at:  # trailing chunks of no port cycles
                        waited_dram += peaks[-1] - at
                        at = peaks[-1]
            busy += timing.sram_port_cycles
            stalls = unit.stalls
            stalls["dram"] += waited_dram
            stalls["port_conflict"] += waited_port
            actions = self.live_actions
            actions[info.dram_action] += timing.dram_bytes
            actions[info.sram_action] += timing.sram_bytes
            for action, count in timing.lane_ops:  # the DMA codec's (npu.sim.cost.latency.dma_codec_actions)
                actions[action] += count
            if info.kv:
                actions["vector_sram_read_bytes"] += info.kv_bytes
        unit.busy += busy
        # unit.record(self.pc, dispatch, start, at, at), inlined:
        unit.starts.append(start)
        unit.recent.append((self.pc, dispatch, start, at, at))
        unit.free_at = at
        if at > unit.done_at:
            unit.done_at = at
        unit.count += 1
        return start, at

    # ---- helpers -------------------------------------------------------------------------------
    def _reserve(self, ports, start: int) -> int:
        """Earliest cycle >= start at which every port use of an instruction fits; reserves them."""
        if len(ports) == 1:
            return self.pools[ports[0].memory].reserve(start, ports[0].cycles)
        pools = self.pools
        while True:  # find a start that suits every memory, then reserve all of them there
            latest = start
            for use in ports:
                found = pools[use.memory].reserve_probe(start, use.cycles)
                if found > latest:
                    latest = found
            if latest == start:
                break
            start = latest
        for use in ports:
            pools[use.memory].reserve(start, use.cycles)
        return start

    def _check_dram_range(self, base: int, dstride: int, rows: int, row_bytes: int) -> None:
        capacity = self.sim.dram.capacity_bytes
        last = base + dstride * (rows - 1)
        low, high = min(base, last), max(base, last) + row_bytes
        if low < 0 or high > capacity:
            raise InstructionFault(f"DRAM bytes [{low:#x}, {high:#x}) outside the {capacity:#x}-byte DRAM model")

    def _read_run(self, pool: PortPool, plan: _DmaPlan, arrivals: np.ndarray, at: int) -> int | None:
        """A DMA load's SRAM writes in one go; the cycle it ends, or None if it must go chunk by chunk."""
        end, run_starts, run_ends, last_earliest = self._read_layout(plan, arrivals, at)
        if run_starts is not None and not pool.reserve_run(run_starts, run_ends, last_earliest):
            return None
        return end

    @staticmethod
    def _read_layout(plan: _DmaPlan, arrivals: np.ndarray, at: int) -> tuple[int, list | None, list, int]:
        """Where a DMA load's chunks hold the SRAM port if it grants each at once: the end cycle,
        the merged port runs (starts, ends; None when no chunk uses the port) and the earliest
        cycle of the last chunk that uses it, as PortPool.reserve_run takes them.

        Chunk i waits for its data (arrival_i) and the previous chunk, then holds the port c_i
        cycles: at_i = max(arrival_i, at_(i-1)) + c_i, provided the port grants every chunk at
        once (PortPool.reserve_run checks that). With S_i = c_0 + ... + c_i this is
        at_i - S_i = max(arrival_i - S_(i-1), at_(i-1) - S_(i-1)), a running maximum: exact,
        as all of it is integers. Shifting `arrivals` and `at` by a constant shifts every result
        by it (what _read_profile relies on).
        """
        lead = np.maximum.accumulate(arrivals - plan.before)
        if lead[0] < at:
            lead = np.maximum(lead, at)
        end = int(lead[-1]) + plan.total_cycles
        positive = plan.positive
        if positive is None:
            first, last = 0, len(lead) - 1
        elif len(positive):
            first, last = int(positive[0]), int(positive[-1])
        else:  # chunks of no port cycles reserve nothing
            return end, None, [], 0
        # Chunk i holds the port over [lead_i + before_i, lead_i + through_i).
        run_start = int(lead[first]) + int(plan.before[first])
        run_end = int(lead[last]) + int(plan.through[last])
        last_earliest = run_end - plan.cycles[last]
        if run_end - run_start == plan.total_cycles:  # back to back: one interval
            run_starts, run_ends = [run_start], [run_end]
        else:  # merge the chunks that follow each other without a gap, as the timeline would
            ends = lead + plan.through
            starts = ends - plan.cycles_array
            if positive is not None:
                starts, ends = starts[positive], ends[positive]
            gaps = np.flatnonzero(starts[1:] != ends[:-1])
            run_starts = np.concatenate((starts[:1], starts[gaps + 1])).tolist()
            run_ends = np.concatenate((ends[gaps], ends[-1:])).tolist()
        return end, run_starts, run_ends, last_earliest

    def _shift_profile(self, sizes: np.ndarray, offsets: np.ndarray, is_write: bool) -> ShiftProfile | bool:
        """The DRAM backend's shift profile of a plan's requests, or False (none, or not offered)."""
        dram = self.sim.dram
        if not SHIFTED_DMA or not dram.shifts:
            return False
        return dram.shift_profile(sizes, offsets, is_write) or False

    def _read_profile(self, plan: _DmaPlan) -> _ReadProfile | bool:
        """A DMA load's DRAM completions and port runs relative to its start, or False."""
        shift = self._shift_profile(plan.sizes, plan.before, False)
        if not shift:
            return False
        end, run_starts, run_ends, last_earliest = self._read_layout(plan, shift.done, 0)
        return _ReadProfile(shift, end, None if run_starts is None else tuple(run_starts), tuple(run_ends),
                            last_earliest)

    def _dma_plan(self, base: int, dstride: int, rows: int, timing: InstructionTiming) -> _DmaPlan:
        """The (cached) plan of a DMA: offsets, sizes and SRAM port cycles of each chunk."""
        chunk = self.sim.dma_chunk_bytes
        row_bytes = timing.dram_bytes // rows
        key = (base % chunk, dstride, rows, row_bytes, timing.sram_bytes, timing.sram_memory)
        plan = self.dma_plans.get(key)
        if plan is None:
            offset = base % chunk
            ranges = [(offset, timing.dram_bytes)] if rows == 1 or dstride == row_bytes else \
                [(offset + i * dstride, row_bytes) for i in range(rows)]
            offsets, sizes = [], []
            for low, length in ranges:
                high = low + length
                while low < high:
                    piece = min(high, (low // chunk + 1) * chunk) - low
                    offsets.append(low - offset)
                    sizes.append(piece)
                    low += piece
            # Port cycles per chunk, rounded so they add up to exactly ceil(sram_bytes / width).
            width = getattr(self.config, timing.sram_memory).width_bits // 8
            total, moved, done_cycles, cycles = timing.dram_bytes, 0, 0, []
            for size in sizes:
                moved += size
                through = -(-timing.sram_bytes * moved // (total * width))
                cycles.append(through - done_cycles)
                done_cycles = through
            if len(self.dma_plans) > 4096:
                self.dma_plans.clear()
            plan = self.dma_plans[key] = _DmaPlan(offsets, sizes, cycles)
        return plan

    @staticmethod
    def _dma_span(first: int, rows: int, cols: int, sstride: int) -> tuple[int, int]:
        """[low, high) of the SRAM elements a DMA of rows x cols at `first` (row stride sstride) touches."""
        last = first + sstride * (rows - 1)
        return min(first, last), max(first, last) + cols

    def _tiles_read(self, first: int, rows: int, cols: int, sstride: int, start: int) -> int:
        """Cycle by which earlier tile ops have loaded every weight tile that overlaps the DMA's
        matrix-SRAM rows (`start` if none is still loading)."""
        low, high = self._dma_span(first, rows, cols, sstride)
        tile = self.config.mlen * self.config.mlen
        for address, loaded in self.tile_loads:
            if loaded > start and address < high and low < address + tile:
                start = loaded
        return start

    def _invalidate_tile(self, first: int, rows: int, cols: int, sstride: int) -> None:
        """A DMA into matrix SRAM over the tile the array holds forces a reload."""
        if self.loaded_tile is None:
            return
        tile_low = self.loaded_tile[0]
        tile_high = tile_low + self.config.mlen * self.config.mlen
        low, high = self._dma_span(first, rows, cols, sstride)
        if low < tile_high and tile_low < high:
            self.loaded_tile = None

    def _limit(self, pc: int, cycle: int, message: str) -> None:
        """Raise CycleLimitError with the state of the front end and every unit."""
        text = self.fsim.instruction_text
        states = [f"front end: at pc {pc} (`{text(pc)}`), cycle {cycle}"]
        for name, unit in self.units.items():
            current = [r for r in unit.recent if r[2] <= cycle < r[3]]
            queued = [r for r in unit.recent if r[2] > cycle]
            parts = [f"{name}: {unit.count} accepted, busy until {unit.free_at}, done at {unit.done_at}"]
            if current:
                pcs = current[-1]
                parts.append(f"executing pc {pcs[0]} `{text(pcs[0])}` [{pcs[2]}, {pcs[3]})")
            if queued:
                parts.append("queued: " + "; ".join(f"pc {r[0]} `{text(r[0])}`" for r in queued))
            states.append(", ".join(parts))
        states.extend(pool.describe(cycle) for pool in self.pools.values())
        line = None
        program = self.fsim.program
        if program is not None and pc < len(program.source_lines):
            line = program.source_lines[pc]
        raise CycleLimitError(message, pc, text(pc), line, states)

    # ---- results -------------------------------------------------------------------------------
    def _stats(self, total: int, executed: int) -> CycleStats:
        by_mnemonic: Counter[str] = Counter()
        actions: Counter[str] = Counter(self.live_actions)
        for pc, count in enumerate(self.counts):
            if not count:
                continue
            slot = self.slots[pc]
            by_mnemonic[slot.mnemonic] += count
            timing = slot.timing
            if timing is None:
                continue
            actions["mac"] += timing.macs * count
            for energy_class, lanes in timing.lane_ops:
                actions[energy_class] += lanes * count
            for traffic in timing.traffic:
                if traffic.read_bytes:
                    actions[f"{traffic.memory}_read_bytes"] += traffic.read_bytes * count
                if traffic.write_bytes:
                    actions[f"{traffic.memory}_write_bytes"] += traffic.write_bytes * count
        actions["instruction"] = executed
        # the front end's busy cycles: one per instruction, none for those issued as a pair
        units = {"frontend": self._breakdown(executed, executed - self.paired, self.fe_stalls, total)}
        for name, unit in self.units.items():
            units[name] = self._breakdown(unit.count, unit.busy, unit.stalls, total)
        timeline = tuple(TimelineEvent(*event) for event in self.timeline)
        return CycleStats(
            config_name=self.config.name, clock_ghz=self.config.clock_ghz, cycles=total, instructions=executed,
            by_mnemonic=dict(by_mnemonic), units=units, dram=self.sim.dram.summary(total),
            energy=energy_report(actions, self.config, total, self.sim.energy_table),
            timeline=timeline, timeline_complete=self.timeline_complete,
            sync_points=tuple((pc, total if cycle < 0 else cycle) for pc, cycle in self.sync_points))

    @staticmethod
    def _breakdown(instructions: int, busy: int, stalls: dict[str, int], total: int) -> UnitBreakdown:
        stalls_by_reason = {reason: int(stalls.get(reason, 0)) for reason in STALL_REASONS}
        idle = total - busy - sum(stalls_by_reason.values())
        return UnitBreakdown(instructions, int(busy), stalls_by_reason, int(idle))
