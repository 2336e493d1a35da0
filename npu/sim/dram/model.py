"""`DramModel`: the whole memory system (one controller per channel) behind a request API.

Two ways in, sharing one scheduler:
- `access(addr, size_bytes, is_write, issue_time_ns) -> completion_time_ns` for a simulator that
  runs the model in the loop (requests in issue-time order; each is scheduled at once, so there
  is nothing to reorder it with);
- `stream(requests)` / `stream_arrays(...)` for a batch: requests wait in per-channel queues of
  `queue_depth` bursts and FR-FCFS reorders them (row hits first).
Times in and out are in ns; inside, everything is in DRAM clock cycles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from npu.sim.dram.commands import Command
from npu.sim.dram.controller import ChannelController, ChannelStats
from npu.sim.dram.mapping import BANKGROUP_INTERLEAVED, AddressMapping
from npu.sim.dram.timing import DramTiming, get_preset


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
    appended to `self.trace` (per channel in cycle order), ready for `check_trace`.
    """

    def __init__(
        self,
        spec: str | DramTiming,
        channels: int | None = None,
        mapping: str = BANKGROUP_INTERLEAVED,
        page_policy: str = "open",
        queue_depth: int = 32,
        record_trace: bool = False,
    ):
        timing = get_preset(spec) if isinstance(spec, str) else spec
        if not isinstance(timing, DramTiming):
            raise TypeError(f"spec must be a preset name or a DramTiming, got {type(spec).__name__}")
        if channels is not None:
            timing = timing.with_channels(channels)
        self.timing = timing
        self.mapping = AddressMapping(mapping, timing.org)
        self.page_policy = page_policy
        self.trace: list[Command] | None = [] if record_trace else None
        self.controllers = [
            ChannelController(channel, timing, page_policy, queue_depth, self.trace)
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
        burst_bytes = self.timing.org.burst_bytes
        first = addr // burst_bytes * burst_bytes
        per_channel: dict[int, list[list]] = {}
        for order, burst_addr in enumerate(range(first, addr + size_bytes, burst_bytes)):
            where = self.mapping.decode(burst_addr)
            bank = (where.rank * self.timing.org.bankgroups + where.bankgroup) * (
                self.timing.org.banks_per_group
            ) + where.bank
            per_channel.setdefault(where.channel, []).append(
                [arrival, order, bank, where.row, where.column, is_write, 0]
            )
        completion = [0]
        for channel, bursts in per_channel.items():
            self.controllers[channel].serve(bursts, completion)
        return completion[0] * self.timing.tCK_ns

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
        bank = (where["rank"] * org.bankgroups + where["bankgroup"]) * org.banks_per_group
        bank = bank + where["bank"]
        arrival = np.ceil(issue[request] / self.timing.tCK_ns - 1e-9).astype(np.int64)

        completion = [0] * count
        channel = where["channel"]
        by_channel = np.argsort(channel, kind="stable")
        bounds = np.searchsorted(channel[by_channel], np.arange(org.channels + 1))
        columns = [arrival, np.arange(request.size), bank, where["row"], where["column"],
                   writes[request], request]
        for ch in range(org.channels):
            picked = by_channel[bounds[ch]: bounds[ch + 1]]
            if picked.size == 0:
                continue
            bursts = [list(b) for b in zip(*(c[picked].tolist() for c in columns))]
            self.controllers[ch].serve(bursts, completion)
        return np.asarray(completion, dtype=np.float64) * self.timing.tCK_ns

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
