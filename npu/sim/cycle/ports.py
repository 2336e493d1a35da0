"""SRAM port timelines: which cycles each port of each SRAM is reserved.

An SRAM has `ports` identical ports; one access stream (a unit's instruction, or one chunk of a
DMA) holds one port for a whole number of consecutive cycles. The cycle simulator schedules
instructions in program order as they are dispatched, so reservations arrive in program order,
not time order: a reservation takes the earliest gap at or after its earliest cycle that is long
enough, on whichever port offers the earliest one (lowest port on ties). An older instruction
therefore never waits for a younger one, and a younger one may use any gap an older one left.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field


@dataclass
class PortTimeline:
    """Reserved intervals [starts[i], ends[i]) of one port, sorted and disjoint."""

    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)

    def earliest_gap(self, earliest: int, duration: int) -> tuple[int, int]:
        """(start, index) of the first free gap of `duration` cycles at or after `earliest`."""
        starts, ends = self.starts, self.ends
        index = bisect_right(ends, earliest)
        start = earliest
        count = len(starts)
        while index < count and starts[index] < start + duration:
            if ends[index] > start:
                start = ends[index]
            index += 1
        return start, index

    def reserve_at(self, start: int, index: int, duration: int) -> None:
        """Record [start, start + duration) at `index` (from earliest_gap), merging neighbours."""
        end = start + duration
        starts, ends = self.starts, self.ends
        joins_left = index > 0 and ends[index - 1] == start
        joins_right = index < len(starts) and starts[index] == end
        if joins_left and joins_right:
            ends[index - 1] = ends[index]
            del starts[index], ends[index]
        elif joins_left:
            ends[index - 1] = end
        elif joins_right:
            starts[index] = start
        else:
            starts.insert(index, start)
            ends.insert(index, end)

    def prune(self, horizon: int) -> None:
        """Forget intervals that end at or before `horizon` (no later request can start earlier)."""
        count = bisect_right(self.ends, horizon)
        if count:
            del self.starts[:count], self.ends[:count]

    def busy_after(self, cycle: int) -> bool:
        return bool(self.ends) and self.ends[-1] > cycle


class PortPool:
    """The ports of one SRAM."""

    def __init__(self, name: str, ports: int):
        if ports < 1:
            raise ValueError(f"{name} needs at least one port, got {ports}")
        self.name = name
        self.timelines = [PortTimeline() for _ in range(ports)]

    def reserve(self, earliest: int, duration: int) -> int:
        """Reserve `duration` cycles on the port that is free earliest; returns the start cycle."""
        if duration <= 0:
            return earliest
        timelines = self.timelines
        for timeline in timelines:  # fast path: a port with nothing reserved after `earliest`
            ends = timeline.ends
            if not ends or ends[-1] <= earliest:
                if ends and ends[-1] == earliest:
                    ends[-1] = earliest + duration
                else:
                    timeline.starts.append(earliest)
                    ends.append(earliest + duration)
                return earliest
        best = None
        for timeline in timelines:
            start, index = timeline.earliest_gap(earliest, duration)
            if best is None or start < best[0]:
                best = (start, index, timeline)
                if start == earliest:
                    break
        start, index, timeline = best
        timeline.reserve_at(start, index, duration)
        return start

    def reserve_run(self, starts: list[int], ends: list[int], last_earliest: int) -> bool:
        """Reserve a run of requests at once, if `reserve` would put all of them on one free port.

        A DMA reserves its chunks one after another, each no earlier than the previous one ended.
        `starts`/`ends` are the run's reserved cycles after merging touching chunks (sorted,
        disjoint, not touching), and `last_earliest` is the earliest cycle of the run's last chunk.
        Successive `reserve` calls would take their fast path on the first port with nothing
        reserved after starts[0], at exactly the requested cycles, as long as every lower port
        stays busy past `last_earliest`; then this records the same timeline and returns True.
        Otherwise it reserves nothing and returns False (the caller goes chunk by chunk).
        """
        first = starts[0]
        for timeline in self.timelines:
            timeline_ends = timeline.ends
            if not timeline_ends or timeline_ends[-1] <= first:
                break
            if timeline_ends[-1] <= last_earliest:  # a lower port frees up during the run
                return False
        else:
            return False
        timeline_starts = timeline.starts
        if timeline_ends and timeline_ends[-1] == first:  # touches the port's last interval
            timeline_ends[-1] = ends[0]
            timeline_starts.extend(starts[1:])
            timeline_ends.extend(ends[1:])
        else:
            timeline_starts.extend(starts)
            timeline_ends.extend(ends)
        return True

    def reserve_probe(self, earliest: int, duration: int) -> int:
        """The start `reserve` would return, without reserving anything."""
        if duration <= 0:
            return earliest
        return min(timeline.earliest_gap(earliest, duration)[0] for timeline in self.timelines)

    def prune(self, horizon: int) -> None:
        for timeline in self.timelines:
            timeline.prune(horizon)

    def describe(self, cycle: int) -> str:
        """Which ports are reserved after `cycle` (for error reports)."""
        busy = [f"port {i} until {t.ends[-1]}" for i, t in enumerate(self.timelines) if t.busy_after(cycle)]
        return f"{self.name}: " + (", ".join(busy) if busy else "free")
