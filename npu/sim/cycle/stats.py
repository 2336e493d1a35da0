"""What a cycle-simulator run reports: cycles, per-unit breakdown, DRAM, energy, timeline."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from npu.sim.cost.dram import DramSummary
from npu.sim.cost.energy import EnergyReport

UNITS = ("frontend", "dma", "matrix", "vector")
STALL_REASONS = ("queue_full", "wait", "dependency", "dram", "port_conflict", "branch")
TRACKS = ("control", "scalar", "dma", "matrix", "vector")  # one Chrome-trace track per ISA unit


@dataclass(frozen=True)
class UnitBreakdown:
    """Cycles of one unit: busy (accepting/executing work), stalled (by reason), idle (rest).

    busy + sum(stalls) + idle == total cycles of the run.
    """

    instructions: int
    busy: int
    stalls: dict[str, int]
    idle: int

    @property
    def utilisation(self) -> float:
        total = self.busy + sum(self.stalls.values()) + self.idle
        return self.busy / total if total else 0.0


@dataclass(frozen=True)
class TimelineEvent:
    """One executed instruction: its track, mnemonic, pc and [start, end) in cycles."""

    track: str
    name: str
    pc: int
    start: int
    end: int


@dataclass(frozen=True)
class CycleStats:
    """Everything one run measured (times in NPU cycles unless named otherwise)."""

    config_name: str
    clock_ghz: float
    cycles: int
    instructions: int
    by_mnemonic: dict[str, int]
    units: dict[str, UnitBreakdown]
    dram: DramSummary
    energy: EnergyReport
    timeline: tuple[TimelineEvent, ...] = ()
    timeline_complete: bool = True  # False when the timeline hit its event limit
    # (pc, cycle the front end moves on) of every executed `wait`, and (halt pc, total cycles):
    # always recorded (one per synchronisation, not per instruction), for per-operator timing.
    sync_points: tuple[tuple[int, int], ...] = ()

    @property
    def time_ns(self) -> float:
        return self.cycles / self.clock_ghz

    def chrome_trace(self) -> dict:
        """The timeline as a Chrome / Perfetto trace: one track (thread) per unit.

        The trace format counts ts and dur in microseconds, so simulated ns are written as
        ns / 1000: a viewer then shows true simulated time (displayTimeUnit "ns").
        """
        if not self.timeline and self.instructions:
            raise ValueError("no timeline was recorded; run the simulator with record_timeline=True")
        ns_per_cycle = 1.0 / self.clock_ghz
        events: list[dict] = [{"name": "process_name", "ph": "M", "pid": 0, "tid": 0,
                               "args": {"name": f"dnpu {self.config_name}"}}]
        for tid, track in enumerate(TRACKS):
            events.append({"name": "thread_name", "ph": "M", "pid": 0, "tid": tid, "args": {"name": track}})
        track_ids = {track: tid for tid, track in enumerate(TRACKS)}
        for event in self.timeline:
            events.append({
                "name": event.name, "ph": "X", "pid": 0, "tid": track_ids[event.track],
                "ts": event.start * ns_per_cycle / 1000.0,
                "dur": (event.end - event.start) * ns_per_cycle / 1000.0,
                "args": {"pc": event.pc, "start_cycle": event.start, "end_cycle": event.end},
            })
        return {"traceEvents": events, "displayTimeUnit": "ns",
                "otherData": {"clock_ghz": self.clock_ghz, "cycles": self.cycles,
                              "timeline_complete": self.timeline_complete}}

    def write_chrome_trace(self, path: str | Path) -> Path:
        """Write `chrome_trace()` as JSON (open it in ui.perfetto.dev or chrome://tracing)."""
        path = Path(path)
        path.write_text(json.dumps(self.chrome_trace()))
        return path

    def summary(self) -> str:
        """A short human-readable report."""
        lines = [f"{self.config_name}: {self.cycles:,} cycles ({self.time_ns / 1000:,.2f} us), "
                 f"{self.instructions:,} instructions"]
        for name, unit in self.units.items():
            stalls = ", ".join(f"{k} {v:,}" for k, v in unit.stalls.items() if v) or "none"
            lines.append(f"  {name:8s} busy {unit.busy:>12,} ({unit.utilisation:6.1%})  idle {unit.idle:>12,}"
                         f"  stalls: {stalls}")
        d = self.dram
        hits = "n/a" if d.row_hit_rate is None else f"{d.row_hit_rate:.1%}"
        lines.append(f"  dram ({d.backend}, {d.preset}): read {d.bytes_read:,} B, written {d.bytes_written:,} B, "
                     f"{d.achieved_gbps:.1f} of {d.peak_gbps:.1f} GB/s, row hits {hits}")
        lines.append(f"  energy {self.energy.total_pj / 1e6:,.3f} uJ: " + ", ".join(
            f"{k} {v / 1e6:,.3f}" for k, v in sorted(self.energy.picojoules.items())))
        return "\n".join(lines)
