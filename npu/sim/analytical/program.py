"""Analytical time and energy of a dnpu program: dynamic instruction counts x per-instruction costs.

`estimate_program(program, config)` walks the program's dynamic instruction stream once - the
functional simulator executes the scalar and control instructions, so loops, branches and
register values (DMA shapes, addresses) are exact; DMA, matrix and vector instructions are only
counted, as in the cycle simulator's timing mode - and cuts it into segments at every `wait`.
Each segment is timed in closed form (npu.sim.analytical.segments): per unit the sum of its
instructions' costs from `npu.sim.cost.latency.instruction_timing`, combined with max over the
units and the front end, plus the latency the closing `wait` exposes. Energy is the same
action count x `npu.sim.cost.energy` table as the cycle simulator's.

`estimate_counts(by_mnemonic, config)` is the coarse form for when only counts are known (a
compiler's statistics): one segment, no waits, every tile op loading a fresh weight tile.

Operators: a label `op_<name>` in the assembly starts region <name>; a segment belongs to the
region of the `wait` (or `halt`) that closes it. `crossvalidate` compares regions with the
cycle simulator.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from npu.hw.config import NPUConfig
from npu.isa.assembler import Program
from npu.isa.regions import operator_of_label
from npu.isa.table import DRAM_FORMATS, Kind, Unit
from npu.hw.technology import EnergyTable, LatencyParameters
from npu.sim.cost.energy import EnergyReport, energy_report
from npu.sim.functional import FunctionalSimulator
from npu.sim.functional.simulator import HALT
from npu.sim.analytical.segments import (
    DMA_CHUNK_BYTES,
    MATRIX_OPS,
    CostCache,
    DramPipe,
    Segment,
    SegmentBuilder,
    SegmentClock,
)

DEFAULT_REGION = "program"

# Vector-row keys, as the cycle simulator forms them (register keys: npu.isa.table.register_number).
_VALUE_FIELDS = ("k", "base", "rs", "ridx")  # int registers holding values, not row addresses
_ROW_SPACE = {"fsrc": 1, "fdst": 1, "isrc": 2, "isrc1": 2, "isrc2": 2, "idst": 2, "vrank": 2}
_ROW_WRITES = ("vd", "fdst", "idst")


@dataclass(frozen=True)
class ProgramEstimate:
    """Analytical figures of one program run (cycles at the configuration's clock)."""

    config_name: str
    clock_ghz: float
    cycles: float
    instructions: int
    by_region: dict[str, float]       # cycles per operator region
    unit_busy: dict[str, float]       # frontend, dma, matrix, vector: active cycles
    energy: EnergyReport

    @property
    def seconds(self) -> float:
        return self.cycles / (self.clock_ghz * 1e9)

    @property
    def dram_bytes(self) -> float:
        actions = self.energy.actions
        return actions.get("dram_read_bytes", 0) + actions.get("dram_write_bytes", 0)


def operator_regions(program: Program) -> list[tuple[int, str]]:
    """(start pc, name) of every `op_<name>` label, in pc order."""
    regions = [(pc, operator_of_label(label)) for label, pc in program.labels.items()
               if operator_of_label(label) is not None]
    return sorted(regions)


def region_lookup(program: Program) -> Callable[[int], str]:
    """pc -> the operator region holding it (DEFAULT_REGION before the first op_ label)."""
    regions = operator_regions(program)
    starts = [pc for pc, _ in regions]

    def region(pc: int) -> str:
        index = bisect_right(starts, pc) - 1
        return regions[index][1] if index >= 0 else DEFAULT_REGION
    return region


@dataclass
class _Decoded:
    """What the walk needs about one static instruction."""

    mnemonic: str
    unit: Unit
    operands: dict[str, int]
    reads: tuple[int, ...] = ()        # registers read at issue (npu.isa.table.register_number)
    writes: tuple[int, ...] = ()       # registers written (scalar destinations, vector accumulators)
    row_reads: tuple[tuple[str, int], ...] = ()   # (int register field, space) of vector rows read
    row_writes: tuple[tuple[str, int], ...] = ()
    waits: tuple[str, ...] = ()        # the units a `wait` drains


def decode_program(functional: FunctionalSimulator) -> list[_Decoded | None]:
    """What costing needs about each instruction of the program `functional` has loaded."""
    decoded: list[_Decoded | None] = []
    for instruction in functional.decoded_instructions:
        if instruction is None:
            decoded.append(None)
            continue
        spec, ops = instruction.spec, instruction.operands
        row_reads, row_writes = [], []
        if spec.unit is Unit.VECTOR:
            for operand in spec.fields:
                if operand.kind is not Kind.INT_REG or operand.name in _VALUE_FIELDS:
                    continue
                space = _ROW_SPACE.get(operand.name, 0)
                if spec.mnemonic == "vrank" and operand.name == "vd":  # ranks accumulate in INT SRAM
                    row_reads.append((operand.name, 2))
                    row_writes.append((operand.name, 2))
                elif operand.name in _ROW_WRITES:
                    row_writes.append((operand.name, space))
                else:
                    row_reads.append((operand.name, space))
        waits = ()
        if spec.mnemonic == "wait":
            waits = tuple(u for bit, u in enumerate(("dma", "matrix", "vector")) if ops["units"] >> bit & 1)
        decoded.append(_Decoded(spec.mnemonic, spec.unit, dict(ops), spec.registers_read(ops),
                                spec.registers_written(ops), tuple(row_reads), tuple(row_writes), waits))
    return decoded


class DataIssuer:
    """Feeds DMA, matrix and vector instructions to a SegmentBuilder with the operands the scalar
    registers hold now (row keys, DMA shapes and addresses), tracking the weight tile the array
    holds. Shared by the dynamic trace and the loop-extrapolating walk (npu.sim.analytical.static)."""

    def __init__(self, functional: FunctionalSimulator, mlen: int):
        self.regs, self.aregs, self.mlen = functional.int_regs, functional.addr_regs, mlen
        self.loaded_tile: tuple[int, bool] | None = None  # (matrix SRAM address, transposed)

    def issue(self, builder: SegmentBuilder, item: _Decoded) -> None:
        regs, ops, name = self.regs, item.operands, item.mnemonic
        if item.unit is Unit.VECTOR:
            builder.vector(name, reads=[regs[ops[f]] * 4 + s for f, s in item.row_reads],
                           writes=[regs[ops[f]] * 4 + s for f, s in item.row_writes],
                           registers=item.reads, operands=ops, register_writes=item.writes)
        elif item.unit is Unit.MATRIX:
            new_tile = False
            if name in MATRIX_OPS:
                tile = (regs[ops["w"]], name in ("mmt", "mmta"))
                new_tile, self.loaded_tile = tile != self.loaded_tile, tile
            builder.matrix(name, new_tile=new_tile, registers=item.reads, acc=ops["acc"])
        else:
            rows, cols = regs[ops["rows"]], regs[ops["cols"]]
            loaded = self.loaded_tile
            if name in ("dld.m", "dldkv.m") and loaded is not None and rows > 0 and cols > 0:
                first = regs[ops["sram"]]
                stride = cols if "kv" in name else regs[ops["sstride"]]
                last = first + stride * (rows - 1)
                low, high = min(first, last), max(first, last) + cols
                if low < loaded[0] + self.mlen * self.mlen and loaded[0] < high:
                    self.loaded_tile = None  # the DMA overwrites the tile the array holds
            builder.dma(name, DRAM_FORMATS[ops["fmt"]], rows, cols, base=self.aregs[ops["dram"]],
                        dstride=regs[ops["dstride"]], registers=item.reads)


def comment_regions(program: Program, listing: str, name: Callable[[str], str] | None = None) -> Callable[[int], str]:
    """pc -> region named by the last `# comment` line above the instruction in `listing`.

    For compiler output, whose listing comments each operator; `name` turns a comment into a
    region name (default: its first word, e.g. "linear", "rmsnorm", "attention").
    """
    name = name or (lambda text: text.split()[0].rstrip(":,") if text.split() else DEFAULT_REGION)
    current, by_line = DEFAULT_REGION, {}
    for number, line in enumerate(listing.splitlines(), start=1):
        text = line.strip()
        if text.startswith("#"):
            current = name(text.lstrip("#").strip())
        by_line[number] = current
    lines = program.source_lines

    def region(pc: int) -> str:
        return by_line.get(lines[pc], DEFAULT_REGION) if pc < len(lines) else DEFAULT_REGION
    return region


def trace_segments(program: Program, config: NPUConfig, *, params: LatencyParameters | None = None,
                   execute_data: bool = False, functional: FunctionalSimulator | None = None,
                   max_instructions: int = 20_000_000, dma_chunk_bytes: int = DMA_CHUNK_BYTES,
                   regions: Callable[[int], str] | None = None) -> Iterator[Segment]:
    """The program's dynamic instruction stream, cut at every `wait`, as segments.

    Without `execute_data` the data instructions are only counted (their registers read at
    dispatch), as in the cycle simulator's timing mode. With it, `functional` (a simulator whose
    memories the caller prepared) executes every instruction, for data-dependent control flow.
    """
    if functional is None:
        functional = FunctionalSimulator(config, dram_size=64, check_sync=False)
    functional.load(program)
    decoded = decode_program(functional)
    region = regions or region_lookup(program)
    pipe = DramPipe.for_config(config, dma_chunk_bytes)
    issuer = DataIssuer(functional, config.mlen)
    costs = CostCache(config, params or config.technology.latency, pipe.chunk_bytes)
    builder = SegmentBuilder(config, params=params, pipe=pipe, costs=costs)
    pc, executed = 0, 0
    while executed < max_instructions:
        item = decoded[pc] if pc < len(decoded) else None
        if item is None:
            functional.handler(pc)()  # raises: illegal word or ran past the end
            raise RuntimeError(f"pc {pc}: the functional simulator accepted an undecodable instruction")
        unit, name = item.unit, item.mnemonic
        executed += 1
        if unit is Unit.CONTROL:
            next_pc = functional.handler(pc)()
            if name == "wait":
                builder.label = region(pc)
                yield builder.close(item.waits)
                builder = SegmentBuilder(config, params=params, pipe=pipe, costs=costs,
                                         matrix_busy="matrix" not in item.waits and builder.units["matrix"].ops > 0)
            elif name == "halt":
                builder.label = region(pc)
                yield builder.close(None, mnemonic="halt")
                return
            else:
                taken = name not in ("loop", "loopi", "nop") and next_pc != pc + 1
                builder.control(name, taken=taken, reads=item.reads)
        elif unit is Unit.SCALAR:
            builder.scalar(name, reads=item.reads, writes=item.writes)
            next_pc = functional.handler(pc)()
        else:
            issuer.issue(builder, item)
            next_pc = functional.handler(pc)() if execute_data else pc + 1
        if next_pc == HALT:
            builder.label = region(pc)
            yield builder.close(None, mnemonic="halt")
            return
        pc = functional.advance_loops(next_pc)
    raise RuntimeError(f"instruction limit {max_instructions} reached without `halt`")


def estimate_segments(segments, config: NPUConfig, energy: EnergyTable | None = None) -> ProgramEstimate:
    """Time segments in order and total them into a ProgramEstimate."""
    clock = SegmentClock(config)
    totals = clock.run(segments)
    actions = {key: value for key, value in totals.actions.items() if value}
    report = energy_report(actions, config, round(totals.cycles), energy)
    busy = {"frontend": totals.unit_busy["frontend"]}
    busy.update({unit: totals.unit_busy[unit] for unit in ("dma", "matrix", "vector")})
    return ProgramEstimate(config.name, config.clock_ghz, totals.cycles, totals.instructions,
                           dict(totals.by_label), busy, report)


def estimate_program(program: Program, config: NPUConfig, *, params: LatencyParameters | None = None,
                     energy: EnergyTable | None = None, execute_data: bool = False,
                     functional: FunctionalSimulator | None = None, max_instructions: int = 20_000_000,
                     dma_chunk_bytes: int = DMA_CHUNK_BYTES,
                     regions: Callable[[int], str] | None = None) -> ProgramEstimate:
    """Analytical cycles, per-region cycles, per-unit active cycles and energy of a program.

    `regions` maps a pc to its operator (default: `op_<name>` labels; see comment_regions).
    """
    segments = trace_segments(program, config, params=params, execute_data=execute_data, functional=functional,
                              max_instructions=max_instructions, dma_chunk_bytes=dma_chunk_bytes, regions=regions)
    with np.errstate(invalid="ignore", over="ignore"):  # timing mode leaves FP registers meaningless
        return estimate_segments(segments, config, energy)


@dataclass(frozen=True)
class DmaTransfer:
    """One kind of DMA in a count-only description: `count` transfers of rows x cols in `fmt`."""

    mnemonic: str
    fmt: str
    rows: int
    cols: int
    count: int = 1
    contiguous: bool = True


@dataclass(frozen=True)
class CountProfile:
    """Dynamic instruction counts without order: by mnemonic, plus the DMA shapes."""

    by_mnemonic: Mapping[str, int]
    dma: tuple[DmaTransfer, ...] = ()
    weight_tile_reuse: float = 0.0   # fraction of tile ops whose weight tile is already loaded


def estimate_counts(profile: CountProfile, config: NPUConfig, *, params: LatencyParameters | None = None,
                    energy: EnergyTable | None = None) -> ProgramEstimate:
    """Coarse estimate from counts alone: every unit overlaps everything (one segment, no waits).

    A lower bound on the real time when the program synchronises; DMA counts in `by_mnemonic`
    are ignored in favour of `profile.dma`, which carries the shapes.
    """
    builder = SegmentBuilder(config, label=DEFAULT_REGION, params=params, queue_depth=None)
    builder.since_tile_op = float("inf")  # weight loads overlap the previous tile op everywhere
    for name, count in sorted(profile.by_mnemonic.items()):
        if count <= 0 or name == "halt" or name.startswith(("dld", "dst")):
            continue
        if name in MATRIX_OPS:
            fresh = round(count * (1.0 - profile.weight_tile_reuse))
            builder.repeat(fresh, lambda b, n=name: b.matrix(n, new_tile=True))
            builder.repeat(count - fresh, lambda b, n=name: b.matrix(n, new_tile=False))
        else:
            builder.repeat(count, lambda b, n=name: b.instruction(n))
    for transfer in profile.dma:
        builder.repeat(transfer.count, lambda b, t=transfer: b.dma(
            t.mnemonic, t.fmt, t.rows, t.cols, dstride=None if t.contiguous else 0))
    return estimate_segments([builder.close(None, mnemonic="halt")], config, energy)
