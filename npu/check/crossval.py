"""Cross-validation: the analytical program model against the cycle-accurate simulator.

`crossvalidate(program, config)` runs the program through both and compares
- the total cycles,
- per instruction class (front end, DMA, matrix, vector): the cycles each unit is active -
  busy or stalled by its own work (dependencies, DRAM, ports, weight loads), not idle or
  waiting for other units,
- per operator: the cycles between the `wait`s closing the operator's segments (regions start
  at `op_<name>` labels; see npu.sim.analytical.program).
The cycle simulator runs with the bandwidth DRAM backend by default: the analytical model is
its closed form; with `dram="jedec"` the row-buffer and refresh effects show up as error.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from npu.hw.config import NPUConfig
from npu.isa.assembler import Program
from npu.sim.cycle import CycleSimulator, CycleStats
from npu.sim.functional import FunctionalSimulator
from npu.sim.analytical.program import ProgramEstimate, estimate_program, region_lookup

UNIT_CLASSES = ("frontend", "dma", "matrix", "vector")
# Front-end stalls that are the front end's own (the others are time spent waiting for units).
_FRONTEND_OWN = ("dependency", "branch", "port_conflict")


@dataclass(frozen=True)
class CrossValidationRow:
    program: str
    kind: str            # "total", "class" or "operator"
    name: str
    analytical: float    # cycles
    simulated: float     # cycles

    @property
    def error(self) -> float:
        """Relative error of the analytical figure (0 when both are 0)."""
        if self.simulated == 0:
            return 0.0 if self.analytical == 0 else float("inf")
        return (self.analytical - self.simulated) / self.simulated

    def to_dict(self) -> dict:
        return {"program": self.program, "kind": self.kind, "name": self.name, "analytical_cycles": self.analytical,
                "simulated_cycles": self.simulated, "relative_error": self.error}


@dataclass(frozen=True)
class CrossValidation:
    program: str
    estimate: ProgramEstimate
    stats: CycleStats
    rows: tuple[CrossValidationRow, ...]

    def mean_abs_error(self, kind: str) -> float:
        """Mean |relative error| over the rows of one kind (rows with nothing simulated skipped)."""
        errors = [abs(row.error) for row in self.rows if row.kind == kind and row.simulated > 0]
        return sum(errors) / len(errors) if errors else 0.0

    @property
    def total_error(self) -> float:
        return next(row.error for row in self.rows if row.kind == "total")

    def table(self) -> list[dict]:
        return [row.to_dict() for row in self.rows]


def _simulated_unit_active(stats: CycleStats) -> dict[str, float]:
    active = {}
    for name in UNIT_CLASSES:
        unit = stats.units[name]
        stalls = unit.stalls
        if name == "frontend":
            active[name] = unit.busy + sum(stalls[reason] for reason in _FRONTEND_OWN)
        else:
            active[name] = unit.busy + sum(stalls.values())
    return active


def simulated_regions(stats: CycleStats, region: Callable[[int], str]) -> Counter:
    """Cycles per region: from one closing `wait` to the next, the last one up to the end (the
    cycle simulator's split of a run by operator; the roofline check reads it too)."""
    per_region: Counter = Counter()
    previous = 0
    last_region = None
    for pc, cycle in stats.sync_points:
        name = region(pc)
        per_region[name] += cycle - previous
        previous, last_region = cycle, name
    if previous < stats.cycles and last_region is not None:
        per_region[last_region] += stats.cycles - previous
    return per_region


def crossvalidate(program: Program, config: NPUConfig, *, name: str | None = None, dram: str = "bandwidth",
                  execute_data: bool = False, preload: Callable[[FunctionalSimulator], None] | None = None,
                  regions: Callable[[int], str] | None = None, max_instructions: int = 5_000_000) -> CrossValidation:
    """Analytical model vs cycle simulator on one program: total, per unit class, per operator.

    `regions` maps a pc to its operator (default `op_<name>` labels; compiled steps:
    npu.sim.analytical.program.comment_regions). `preload(functional)` fills memories (for
    `execute_data=True`, when branches depend on data); it is applied to both simulators.
    """
    label = name or program.source
    simulator = CycleSimulator(config, dram=dram, execute_data=execute_data)
    functional = None
    if execute_data:
        functional = FunctionalSimulator(config, dram_size=simulator.functional.dram.size, check_sync=False)
        if preload is not None:
            preload(simulator.functional)
            preload(functional)
    simulator.load(program)
    stats = simulator.run(max_instructions=max_instructions)
    region = regions or region_lookup(program)
    estimate = estimate_program(program, config, execute_data=execute_data, functional=functional,
                                max_instructions=max_instructions, regions=region)
    rows = [CrossValidationRow(label, "total", "cycles", estimate.cycles, stats.cycles)]
    simulated_active = _simulated_unit_active(stats)
    for unit in UNIT_CLASSES:
        rows.append(CrossValidationRow(label, "class", unit, estimate.unit_busy[unit], simulated_active[unit]))
    simulated = simulated_regions(stats, region)
    for region in sorted(set(simulated) | set(estimate.by_region)):
        rows.append(CrossValidationRow(label, "operator", region, estimate.by_region.get(region, 0.0),
                                       simulated.get(region, 0.0)))
    return CrossValidation(label, estimate, stats, tuple(rows))
