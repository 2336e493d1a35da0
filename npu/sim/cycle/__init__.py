"""Cycle-accurate (timing-directed) simulator of the dnpu.

`CycleSimulator` runs the functional simulator's binaries with per-unit queues, SRAM ports and
the DRAM model in the loop; it returns `CycleStats` (cycles, per-unit breakdown, DRAM, energy,
Chrome/Perfetto timeline). The per-instruction costs it schedules come from the shared cost
model, npu.sim.cost; docs/timing.md documents every number.
"""

from npu.sim.cycle.simulator import CycleLimitError, CycleSimulator
from npu.sim.cycle.stats import STALL_REASONS, UNITS, CycleStats, TimelineEvent, UnitBreakdown

__all__ = ["CycleLimitError", "CycleSimulator", "CycleStats", "STALL_REASONS", "TimelineEvent", "UNITS",
           "UnitBreakdown"]
