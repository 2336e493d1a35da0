"""How far each operator of a compiled program is from the machine's roofline.

For a program and an NPU configuration, per operator region (the `op_<name>` labels the
compiler places, npu.isa.regions) and for the whole program:

- attained cycles: the cycle simulator's (bandwidth DRAM backend: peak rate and latency, so the
  roofline's DRAM figure is the one it runs against) split at the closing `wait` of each segment
  (npu.check.crossval.simulated_regions), or the analytical model's static walk
  (npu.sim.analytical.static, the same split; within ~1 % of the simulator per step, docs/analytical.md);
- the work: MACs the matrix unit executes in the region (padding included, as the machine runs
  it) and DRAM bytes read + written by its DMAs, counted by the static walk;
- compute bound = MACs / (MLEN^2 MACs per cycle); DRAM bound = bytes / peak DRAM bytes per cycle
  (`dram.bandwidth_gbps` / clock); the bound is the larger one, which `binds` names ("none" for
  an operator with neither MACs nor DRAM traffic, e.g. a norm: its cycles are all overhead
  beyond the matrix roofline); attained / bound and its inverse, the fraction of the roofline.

Beyond the roofline, each row carries what the analytical model says each resource of the
machine needs in the region (`<resource>_cycles`, npu.sim.analytical.segments: front-end issue,
tile-op occupancy and accumulator drains, weight-tile loads the array waits for, vector unit, DMA
SRAM-port time, DRAM transfer) and the largest of them (`limiting_resource`): resources overlap,
so they do not add up to the attained cycles, but the largest says what to fix first.

This is the classic roofline (Williams, Waterman, Patterson, "Roofline: an insightful visual
performance model for multicore architectures", CACM 52(4), 2009) evaluated per operator in
cycles. The step total's attained cycles, MACs and bytes are the sums over its operators (a
segment belongs to exactly one region), so are its compute and DRAM bounds; its bound, the larger
of the two sums, is at most the sum of the operators' bounds (operators bound by different
resources could overlap on an ideal machine).

The check sits above both simulators (it runs both), like the cross-validation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from npu.check.crossval import simulated_regions
from npu.hw.config import NPUConfig
from npu.isa.assembler import Program
from npu.sim.analytical.program import region_lookup
from npu.sim.analytical.segments import SegmentClock
from npu.sim.analytical.static import static_segments
from npu.sim.cycle import CycleSimulator

ATTAINED_SOURCES = ("cycle", "analytical")
RESOURCES = ("frontend", "matrix", "weight_load", "vector", "dma_port", "dram")  # the static walk's
_LAYER = re.compile(r"^blocks\.\d+\.")


def operator_group(name: str) -> str:
    """An operator's name without its layer (`blocks.3.attn.q_proj` -> `attn.q_proj`): the
    layers of a step repeat the same operators, which the figure and summaries group."""
    return _LAYER.sub("", name)


@dataclass(frozen=True)
class RooflineRow:
    """One operator (or group of operators, or a whole program) against the roofline, in cycles."""

    kind: str                # "operator", "group" (one operator over all layers) or "step"
    name: str
    attained_cycles: float
    macs: float
    dram_bytes: float
    compute_bound_cycles: float
    dram_bound_cycles: float
    count: int = 1           # operators summed into this row
    resources: Mapping[str, float] = field(default_factory=dict)  # RESOURCES -> cycles needed (analytical)

    @property
    def limiting_resource(self) -> str:
        """The resource that needs the most cycles ("" when none needs any)."""
        busiest = max(RESOURCES, key=lambda name: self.resources.get(name, 0.0))
        return busiest if self.resources.get(busiest, 0.0) > 0 else ""

    @property
    def bound_cycles(self) -> float:
        return max(self.compute_bound_cycles, self.dram_bound_cycles)

    @property
    def binds(self) -> str:
        """Which bound is the larger: "compute", "dram", or "none" when neither is positive."""
        if self.bound_cycles <= 0:
            return "none"
        return "compute" if self.compute_bound_cycles >= self.dram_bound_cycles else "dram"

    @property
    def attained_over_bound(self) -> float:
        """How many times the bound the operator takes (inf when it has no bound)."""
        if self.bound_cycles > 0:
            return self.attained_cycles / self.bound_cycles
        return float("inf") if self.attained_cycles > 0 else 1.0

    @property
    def roofline_fraction(self) -> float:
        """bound / attained: 1 at the roofline, 0 for pure overhead."""
        return self.bound_cycles / self.attained_cycles if self.attained_cycles > 0 else 1.0

    def to_dict(self) -> dict:
        return {"kind": self.kind, "operator": self.name, "count": self.count,
                "attained_cycles": self.attained_cycles, "macs": self.macs, "dram_bytes": self.dram_bytes,
                "compute_bound_cycles": self.compute_bound_cycles, "dram_bound_cycles": self.dram_bound_cycles,
                "bound_cycles": self.bound_cycles, "binds": self.binds,
                "attained_over_bound": self.attained_over_bound, "roofline_fraction": self.roofline_fraction,
                **{f"{name}_cycles": float(self.resources.get(name, 0.0)) for name in RESOURCES},
                "limiting_resource": self.limiting_resource}


@dataclass(frozen=True)
class Roofline:
    """Every operator of one program against the roofline, plus its groups and the total."""

    config_name: str
    attained: str                 # "cycle" or "analytical"
    operators: tuple[RooflineRow, ...]   # program order
    groups: tuple[RooflineRow, ...]      # order of first appearance
    total: RooflineRow

    def rows(self) -> list[dict]:
        """operators, then groups, then the total, as table rows."""
        return [row.to_dict() for row in (*self.operators, *self.groups, self.total)]


def _row(config: NPUConfig, kind: str, name: str, cycles: float, macs: float, dram_bytes: float,
         count: int = 1, resources: Mapping[str, float] | None = None) -> RooflineRow:
    return RooflineRow(kind, name, cycles, macs, dram_bytes, macs / config.peak_macs_per_cycle,
                       dram_bytes / config.dram_bytes_per_cycle, count,
                       {name: float((resources or {}).get(name, 0.0)) for name in RESOURCES})


def roofline(program: Program, config: NPUConfig, *, attained: str = "cycle",
             max_instructions: int = 20_000_000) -> Roofline:
    """Each operator region of `program` against `config`'s roofline (module docstring).

    attained: "cycle" (cycle simulator, bandwidth DRAM backend) or "analytical" (static walk).
    """
    if attained not in ATTAINED_SOURCES:
        raise ValueError(f"attained: {attained!r} is not one of {ATTAINED_SOURCES}")
    region = region_lookup(program)
    totals = SegmentClock(config).run(static_segments(program, config, regions=region))
    if attained == "cycle":
        simulator = CycleSimulator(config, dram="bandwidth")
        simulator.load(program)
        with np.errstate(all="ignore"):  # timing mode: scalar FP registers hold no data
            stats = simulator.run(max_instructions=max_instructions)
        cycles = dict(simulated_regions(stats, region))
    else:
        cycles = dict(totals.by_label)
    names = list(dict.fromkeys([*totals.by_label, *cycles]))  # segments close in program order
    operators = []
    for name in names:
        actions = totals.by_label_actions.get(name, {})
        operators.append(_row(config, "operator", name, float(cycles.get(name, 0.0)), float(actions.get("mac", 0.0)),
                              float(actions.get("dram_read_bytes", 0.0) + actions.get("dram_write_bytes", 0.0)),
                              resources=totals.by_label_resources.get(name)))
    grouped: dict[str, list[RooflineRow]] = {}
    for row in operators:
        grouped.setdefault(operator_group(row.name), []).append(row)
    groups = tuple(_summed(config, "group", name, rows) for name, rows in grouped.items())
    return Roofline(config.name, attained, tuple(operators), groups, _summed(config, "step", "total", operators))


def _summed(config: NPUConfig, kind: str, name: str, rows: list[RooflineRow]) -> RooflineRow:
    return _row(config, kind, name, sum(r.attained_cycles for r in rows), sum(r.macs for r in rows),
                sum(r.dram_bytes for r in rows), count=sum(r.count for r in rows),
                resources={key: sum(r.resources[key] for r in rows) for key in RESOURCES})
