"""Cycle-accurate (timing-directed) simulator of the dnpu and its per-instruction latency model.

- `latency.instruction_timing`: the timing model of every instruction (pure function).
- `CycleSimulator`: runs the functional simulator's binaries with per-unit queues, SRAM ports
  and the DRAM model in the loop; returns `CycleStats` (cycles, per-unit breakdown, DRAM,
  energy, Chrome/Perfetto timeline).
- `energy.EnergyTable`: per-action energies. docs/timing.md documents every number.
"""

from npu.sim.cycle.dram import BACKENDS, DramSummary, dram_timing_for
from npu.sim.cycle.energy import DEFAULT_ENERGY, EnergyReport, EnergyTable, energy_report
from npu.sim.cycle.latency import (
    DEFAULT_PARAMETERS,
    DmaShape,
    InstructionTiming,
    LatencyParameters,
    PortUse,
    Traffic,
    instruction_timing,
    port_cycles,
    vector_latency,
)
from npu.sim.cycle.simulator import CycleLimitError, CycleSimulator
from npu.sim.cycle.stats import STALL_REASONS, UNITS, CycleStats, TimelineEvent, UnitBreakdown

__all__ = [
    "BACKENDS", "CycleLimitError", "CycleSimulator", "CycleStats", "DEFAULT_ENERGY", "DEFAULT_PARAMETERS",
    "DmaShape", "DramSummary", "EnergyReport", "EnergyTable", "InstructionTiming", "LatencyParameters",
    "PortUse", "STALL_REASONS", "TimelineEvent", "Traffic", "UNITS", "UnitBreakdown", "dram_timing_for",
    "energy_report", "instruction_timing", "port_cycles", "vector_latency",
]
