"""`DramModel`: the whole memory system (one controller per channel) behind a request API.

Two ways in, sharing one scheduler:
- `access(addr, size_bytes, is_write, issue_time_ns) -> completion_time_ns` for a simulator that
  runs the model in the loop (requests in issue-time order; each is scheduled at once, so there
  is nothing to reorder it with);
- `stream(requests)` / `stream_arrays(...)` for a batch: requests wait in per-channel queues of
  `queue_depth` bursts and FR-FCFS reorders them (row hits first).
Times in and out are in ns; inside, everything is in DRAM clock cycles.

Fast paths (`fast=True`, the default; `fast=False` keeps the plain one-command-at-a-time
scheduler as the reference they are tested against). Neither changes a single command:
- identical channels are simulated once: a controller's commands depend only on its state and
  its bursts, so channels whose state and bursts (bank, row, column, direction, arrival) are
  equal - common, as NPU tensors are aligned and the channel is the lowest address field -
  take the first one's results (completion cycles, commands, statistics and final state);
- each controller issues runs of row hits in closed form (see controller.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import NamedTuple

import numpy as np

from npu.sim.dram.commands import Command
from npu.sim.dram.controller import BurstColumns, BurstLists, ChannelController, ChannelStats
from npu.sim.dram.mapping import BANKGROUP_INTERLEAVED, AddressMapping
from npu.sim.dram.timing import DramTiming, get_preset


# ChannelStats fields that add up (the others are a first and a last cycle).
_COUNTER_FIELDS = tuple(field.name for field in fields(ChannelStats)
                        if field.name not in ("first_arrival_cycle", "last_completion_cycle"))


class _Served(NamedTuple):
    """What one leader's serve call did, for the channels that follow it."""

    controller: ChannelController
    stats_before: ChannelStats
    trace_start: int  # its commands are trace[trace_start:trace_end]
    trace_end: int
    done: np.ndarray  # completion cycle per burst
    last_completion: int


@dataclass(frozen=True)
class Request:
    addr: int
    size_bytes: int = 64
    is_write: bool = False
    issue_time_ns: float = 0.0


@dataclass(frozen=True)
class DramStats:
    """Totals over all channels since the model was built."""

    reads: int  # RD bursts
    writes: int  # WR bursts
    row_hits: int
    row_misses: int
    row_conflicts: int
    activates: int
    precharges: int
    refreshes: int
    bytes_transferred: int
    data_bus_busy_ns: float  # summed over channels
    first_arrival_ns: float
    last_completion_ns: float
    mean_burst_latency_ns: float

    @property
    def elapsed_ns(self) -> float:
        return max(self.last_completion_ns - self.first_arrival_ns, 0.0)

    @property
    def achieved_bandwidth_gbps(self) -> float:
        """Bytes moved per ns (= GB/s) from the first arrival to the last completion."""
        return self.bytes_transferred / self.elapsed_ns if self.elapsed_ns else 0.0

    @property
    def row_hit_rate(self) -> float:
        bursts = self.row_hits + self.row_misses + self.row_conflicts
        return self.row_hits / bursts if bursts else 0.0


class DramModel:
    """A multi-channel DRAM with JEDEC timing, FR-FCFS controllers and periodic refresh.

    `spec` is a preset name ("HBM2", "HBM3", "LPDDR5", "DDR5") or a `DramTiming`; `channels`
    overrides the preset's channel count. With `record_trace=True` every issued command is
    appended to `self.trace` (per channel in cycle order), ready for `check_trace`. `fast`
    switches the exact fast paths (module docstring) on or off; results are the same.
    """

    def __init__(
        self,
        spec: str | DramTiming,
        channels: int | None = None,
        mapping: str = BANKGROUP_INTERLEAVED,
        page_policy: str = "open",
        queue_depth: int = 32,
        record_trace: bool = False,
        fast: bool = True,
    ):
        timing = get_preset(spec) if isinstance(spec, str) else spec
        if not isinstance(timing, DramTiming):
            raise TypeError(f"spec must be a preset name or a DramTiming, got {type(spec).__name__}")
        if channels is not None:
            timing = timing.with_channels(channels)
        self.timing = timing
        self.mapping = AddressMapping(mapping, timing.org)
        self.page_policy = page_policy
        self.fast = fast
        self.trace: list[Command] | None = [] if record_trace else None
        self.controllers = [
            ChannelController(channel, timing, page_policy, queue_depth, self.trace,
                              row_hit_runs=fast)
            for channel in range(timing.org.channels)
        ]

    # ---------------------------------------------------------------- single requests

    def _arrival_cycle(self, issue_time_ns: float) -> int:
        if not issue_time_ns >= 0:
            raise ValueError(f"issue_time_ns must be >= 0, got {issue_time_ns!r}")
        return math.ceil(issue_time_ns / self.timing.tCK_ns - 1e-9)

    def _check_range(self, addr: int, size_bytes: int) -> None:
        if size_bytes <= 0:
            raise ValueError(f"size_bytes must be > 0, got {size_bytes}")
        capacity = self.timing.org.capacity_bytes
        if addr < 0 or addr + size_bytes > capacity:
            raise ValueError(
                f"access [{addr:#x}, {addr + size_bytes:#x}) is outside the {capacity:#x}-byte memory"
            )

    def access(self, addr: int, size_bytes: int, is_write: bool, issue_time_ns: float) -> float:
        """Serve one request now; returns the ns its last byte is read or written.

        Call in non-decreasing issue-time order per channel (a request arriving "in the past"
        simply waits for the channel).
        """
        self._check_range(addr, size_bytes)
        arrival = self._arrival_cycle(issue_time_ns)
        org = self.timing.org
        per_channel: dict[int, BurstLists] = {}  # in the order the request touches channels
        for burst_addr in range(addr // org.burst_bytes * org.burst_bytes, addr + size_bytes,
                                org.burst_bytes):
            where = self.mapping.decode(burst_addr)
            bank = (where.rank * org.bankgroups + where.bankgroup) * org.banks_per_group + where.bank
            lists = per_channel.get(where.channel)
            if lists is None:
                per_channel[where.channel] = BurstLists([arrival], [bank], [where.row], [where.column],
                                                        [is_write])
            else:
                lists.arrival.append(arrival)
                lists.bank.append(bank)
                lists.row.append(where.row)
                lists.column.append(where.column)
                lists.is_write.append(is_write)
        completion = 0
        for channel, lists in per_channel.items():
            done = [0] * len(lists.arrival)
            self.controllers[channel].serve(lists, done)
            completion = max(completion, *done)
        return completion * self.timing.tCK_ns

    # ---------------------------------------------------------------- batches

    def stream(self, requests: Sequence[Request]) -> list[float]:
        """Serve a batch of requests through the FR-FCFS queues; completion ns per request."""
        if not requests:
            return []
        completion = self.stream_arrays(
            np.array([r.addr for r in requests], dtype=np.int64),
            np.array([r.size_bytes for r in requests], dtype=np.int64),
            np.array([r.is_write for r in requests], dtype=bool),
            np.array([r.issue_time_ns for r in requests], dtype=np.float64),
        )
        return completion.tolist()

    def stream_arrays(
        self,
        addrs: np.ndarray,
        size_bytes: np.ndarray | int = 64,
        is_write: np.ndarray | bool = False,
        issue_time_ns: np.ndarray | float = 0.0,
    ) -> np.ndarray:
        """Vectorised `stream`: parallel arrays (scalars broadcast); returns completion ns."""
        addrs = np.asarray(addrs, dtype=np.int64).ravel()
        count = addrs.size
        sizes = np.broadcast_to(np.asarray(size_bytes, dtype=np.int64), (count,))
        writes = np.broadcast_to(np.asarray(is_write, dtype=bool), (count,))
        issue = np.broadcast_to(np.asarray(issue_time_ns, dtype=np.float64), (count,))
        if count == 0:
            return np.zeros(0)
        if (sizes <= 0).any():
            raise ValueError("every size_bytes must be > 0")
        if not (issue >= 0).all():
            raise ValueError("every issue_time_ns must be >= 0")
        org = self.timing.org
        if addrs.min() < 0 or (addrs + sizes).max() > org.capacity_bytes:
            raise ValueError(f"requests must lie inside the {org.capacity_bytes:#x}-byte memory")

        # Split requests into bursts, in request order (stable by issue time).
        order = np.argsort(issue, kind="stable")
        first = addrs[order] // org.burst_bytes
        last = (addrs[order] + sizes[order] - 1) // org.burst_bytes
        bursts_per_request = last - first + 1
        request = np.repeat(order, bursts_per_request)
        starts = np.repeat(np.cumsum(bursts_per_request) - bursts_per_request, bursts_per_request)
        burst_index = np.repeat(first, bursts_per_request) + np.arange(request.size) - starts
        where = self.mapping.decode_array(burst_index * org.burst_bytes)
        arrival = np.ceil(issue[request] / self.timing.tCK_ns - 1e-9).astype(np.int64)
        done = self._serve(where["channel"], range(org.channels), arrival, self._flat_bank(where),
                           where["row"], where["column"], writes[request])
        completion = np.zeros(count, dtype=np.int64)
        np.maximum.at(completion, request, done)
        return completion.astype(np.float64) * self.timing.tCK_ns

    def _flat_bank(self, where: dict[str, np.ndarray]) -> np.ndarray:
        """Rank-major bank index inside the channel, as the controllers number banks."""
        org = self.timing.org
        return (where["rank"] * org.bankgroups + where["bankgroup"]) * org.banks_per_group + where["bank"]

    def _serve(self, channel: np.ndarray, channel_order, arrival: np.ndarray, bank: np.ndarray,
               row: np.ndarray, column: np.ndarray, is_write: np.ndarray) -> np.ndarray:
        """Schedule bursts (parallel arrays, sorted by arrival) channel by channel in
        `channel_order`; returns the cycle each burst's data transfer ends."""
        # Group the bursts by channel (stable: each channel keeps arrival order); from here on
        # channel ch's bursts are the slice [low, high) = spans[ch] of every array.
        by_channel = np.argsort(channel, kind="stable")
        bounds = np.searchsorted(channel[by_channel], np.arange(self.timing.org.channels + 1)).tolist()
        spans = {ch: (bounds[ch], bounds[ch + 1]) for ch in channel_order if bounds[ch + 1] > bounds[ch]}
        grouped = BurstColumns(*(values[by_channel] for values in (arrival, bank, row, column,
                                                                    is_write.astype(np.int64))))
        leader_of = self._identical_channels(spans, grouped) if self.fast else {}
        done = np.zeros(channel.size, dtype=np.int64)  # in channel-grouped order
        served: dict[int, _Served] = {}  # leader -> what its serve did
        for ch, (low, high) in spans.items():
            controller = self.controllers[ch]
            leader = leader_of.get(ch, ch)
            if leader != ch:
                done[low:high] = served[leader].done
                self._follow(controller, served[leader], first_arrival=int(grouped.arrival[low]))
                continue
            trace_start = len(self.trace) if self.trace is not None else 0
            stats_before = replace(controller.stats)
            columns = BurstColumns(*(values[low:high] for values in grouped))
            channel_done = [0] * (high - low)
            controller.serve(BurstLists(*(values.tolist() for values in columns)), channel_done, columns)
            done[low:high] = channel_done
            if ch in leader_of:
                served[ch] = _Served(controller, stats_before, trace_start,
                                     len(self.trace) if self.trace is not None else 0,
                                     done[low:high], max(channel_done))
        in_input_order = np.empty_like(done)
        in_input_order[by_channel] = done
        return in_input_order

    def _identical_channels(self, spans: dict[int, tuple[int, int]], grouped: BurstColumns
                            ) -> dict[int, int]:
        """Channel -> the first channel (in serve order) that will do exactly what it does:
        same bursts, and a controller state that is the same (state_id) or equivalent
        (equivalence_key). Channels without such a twin are left out. Channel ch's bursts are
        the slices [low, high) = spans[ch] of the `grouped` arrays."""
        by_bursts: dict[bytes, list[int]] = {}
        for ch, (low, high) in spans.items():
            by_bursts.setdefault(b"".join(values[low:high].tobytes() for values in grouped), []).append(ch)
        leader_of: dict[int, int] = {}
        for channels in by_bursts.values():
            if len(channels) == 1:
                continue
            leader_by_id: dict[int, int] = {}
            for ch in channels:
                leader_of[ch] = leader_by_id.setdefault(self.controllers[ch].state_id, ch)
            if len(leader_by_id) > 1:  # some states may still be equivalent: merge those groups
                first_arrival = int(grouped.arrival[spans[channels[0]][0]])
                leader_by_key: dict[tuple, int] = {}
                merged = {leader: leader_by_key.setdefault(
                    self.controllers[leader].equivalence_key(first_arrival), leader)
                    for leader in leader_by_id.values()}
                for ch in channels:
                    leader_of[ch] = merged[leader_of[ch]]
        return leader_of

    def _follow(self, controller: ChannelController, leader: _Served, first_arrival: int) -> None:
        """Give `controller` (in a state equivalent to the leader's, with the same bursts) what
        the leader's serve produced: final state, statistics and commands."""
        controller.copy_state_from(leader.controller)
        mine, theirs, before = controller.stats, leader.controller.stats, leader.stats_before
        for name in _COUNTER_FIELDS:
            setattr(mine, name, getattr(mine, name) + getattr(theirs, name) - getattr(before, name))
        if mine.first_arrival_cycle < 0:
            mine.first_arrival_cycle = first_arrival
        mine.last_completion_cycle = max(mine.last_completion_cycle, leader.last_completion)
        if self.trace is not None:
            channel = controller.channel
            self.trace.extend(command._replace(channel=channel)
                              for command in self.trace[leader.trace_start:leader.trace_end])

    # ---------------------------------------------------------------- results

    @property
    def stats(self) -> DramStats:
        totals = ChannelStats()
        first_arrivals = []
        for controller in self.controllers:
            s = controller.stats
            for field in fields(ChannelStats):
                if field.name in ("first_arrival_cycle", "last_completion_cycle"):
                    continue
                setattr(totals, field.name, getattr(totals, field.name) + getattr(s, field.name))
            if s.first_arrival_cycle >= 0:
                first_arrivals.append(s.first_arrival_cycle)
            totals.last_completion_cycle = max(totals.last_completion_cycle, s.last_completion_cycle)
        tck = self.timing.tCK_ns
        bursts = totals.reads + totals.writes
        return DramStats(
            reads=totals.reads,
            writes=totals.writes,
            row_hits=totals.row_hits,
            row_misses=totals.row_misses,
            row_conflicts=totals.row_conflicts,
            activates=totals.activates,
            precharges=totals.precharges,
            refreshes=totals.refreshes,
            bytes_transferred=bursts * self.timing.org.burst_bytes,
            data_bus_busy_ns=totals.data_bus_busy_cycles * tck,
            first_arrival_ns=min(first_arrivals, default=0) * tck,
            last_completion_ns=totals.last_completion_cycle * tck,
            mean_burst_latency_ns=totals.latency_cycles_total * tck / bursts if bursts else 0.0,
        )
