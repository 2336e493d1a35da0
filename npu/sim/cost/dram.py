"""DRAM behind the DMA engine, in the loop of the cycle simulator.

Two backends answer the same question - "these requests are issued at these NPU cycles; when
does each complete?" - and keep running statistics:

- `JedecDram` (default, "jedec"): the JEDEC timing model npu.sim.dram.DramModel. Each DMA hands
  its requests (one per `chunk` of DRAM bytes) to the model's batch API with their issue times,
  so FR-FCFS reorders within a DMA and the controllers carry bank, row-buffer and refresh state
  from one DMA to the next. The model's exact fast paths (channels in identical states with
  identical bursts are scheduled once; runs of row hits in closed form) make it fast on the
  aligned streams DMAs produce; "jedec-reference" turns them off (same results, about 10^5
  bursts per second: the figure to compare against, and a cross-check).
- `BandwidthDram` (fast): one pipe with the preset's refresh-limited peak bandwidth and its
  idle access latency (tRCD + tCL + tBL for reads, tRCD + tCWL + tBL for writes), both
  derived from the same `DramTiming`. O(1) per request; no row-buffer or bank effects, so
  strided or scattered patterns come out optimistic. tests/test_cycle_sim.py checks that on a
  long streaming DMA it lands within 10 % of `JedecDram`.

The NPU configuration names the DRAM kind and its aggregate bandwidth; the channel count given
to the model is whatever makes the preset's peak equal that bandwidth (HBM3: 32 pseudo-channels
of 25.6 GB/s = 819.2 GB/s; the YAML's "16 channels" counts full HBM3 channels).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from npu.hw.config import NPUConfig
from npu.sim.dram import DramModel, DramTiming, get_preset

BACKENDS = ("jedec", "jedec-reference", "bandwidth")

# Passes BandwidthDram._serve tries before its other exact forms; 0 always takes the
# request-by-request loop (the reference the tests compare against).
_FIXED_POINT_PASSES = 3

# BandwidthDram.serve_shifted: a DMA shape that recurs is served from a profile computed once
# (its completions relative to its first issue); False makes `shift_profile` decline, so every
# DMA goes through serve_arrays (the reference the tests compare against).
FAST_SHIFT = True

# Shift profiles are exact for DMAs whose float pipe times stay below this magnitude (there a
# double's spacing is at most 2**-19 cycles, which bounds the rounding `shift_profile` allows for).
_SHIFT_MAGNITUDE = 2 ** 34
_HALF_ULP = 2.0 ** -20


@dataclass(frozen=True)
class DramSummary:
    """DRAM figures of one run."""

    backend: str
    preset: str
    bytes_read: int
    bytes_written: int
    requests: int
    peak_gbps: float
    achieved_gbps: float          # bytes moved / simulated run time
    row_hit_rate: float | None    # None for the bandwidth backend (it has no rows)
    mean_request_latency_cycles: float


def dram_timing_for(config: NPUConfig) -> DramTiming:
    """The JEDEC preset of config.dram.kind with as many channels as its bandwidth needs."""
    timing = get_preset(config.dram.kind)
    per_channel = timing.peak_bandwidth_gbps / timing.org.channels
    channels = config.dram.bandwidth_gbps / per_channel
    rounded = round(channels)
    if abs(channels - rounded) > 1e-6 or rounded < 1 or rounded & (rounded - 1):
        raise ValueError(
            f"{config.source}: dram.bandwidth_gbps={config.dram.bandwidth_gbps} is not a power-of-two "
            f"number of {timing.name} channels of {per_channel:g} GB/s")
    return timing.with_channels(rounded)


class _Backend(ABC):
    """Shared bookkeeping (request counts, bytes, latency sums) around a backend's `_serve`."""

    name = ""
    uses_addresses = True  # False: `_serve` ignores the addresses (callers may pass any array of the length)
    shifts = False         # True: offers shift_profile / serve_shifted (BandwidthDram)

    def __init__(self, timing: DramTiming, clock_ghz: float):
        self.timing = timing
        self.clock_ghz = clock_ghz
        self.bytes_read = 0
        self.bytes_written = 0
        self.requests = 0
        self.latency_total = 0

    @property
    def capacity_bytes(self) -> int:
        return self.timing.org.capacity_bytes

    def serve(self, addrs: list[int], sizes: list[int], is_write: bool, issue: list[int]) -> list[int]:
        """Completion cycle of each request (issue cycles non-decreasing, after earlier calls)."""
        return self.serve_arrays(np.asarray(addrs, dtype=np.int64), np.asarray(sizes, dtype=np.int64),
                                 is_write, np.asarray(issue, dtype=np.int64)).tolist()

    def serve_arrays(self, addrs: np.ndarray, sizes: np.ndarray, is_write: bool, issue: np.ndarray) -> np.ndarray:
        """`serve` on int64 arrays (the cycle simulator's DMAs): completion cycles as an int64 array."""
        if not len(addrs):
            return np.zeros(0, dtype=np.int64)
        done = self._serve(addrs, sizes, is_write, issue)
        total = int(sizes.sum())
        if is_write:
            self.bytes_written += total
        else:
            self.bytes_read += total
        self.requests += len(addrs)
        self.latency_total += int((done - issue).sum())
        return done

    @abstractmethod
    def _serve(self, addrs: np.ndarray, sizes: np.ndarray, is_write: bool, issue: np.ndarray) -> np.ndarray:
        """Completion cycles of the requests (the backend's timing model), all int64 arrays."""

    def row_hit_rate(self) -> float | None:
        return None

    def summary(self, total_cycles: int) -> DramSummary:
        seconds_ns = total_cycles / self.clock_ghz
        moved = self.bytes_read + self.bytes_written
        return DramSummary(
            backend=self.name, preset=self.timing.name, bytes_read=self.bytes_read,
            bytes_written=self.bytes_written, requests=self.requests,
            peak_gbps=self.timing.peak_bandwidth_gbps,
            achieved_gbps=moved / seconds_ns if seconds_ns else 0.0,
            row_hit_rate=self.row_hit_rate(),
            mean_request_latency_cycles=self.latency_total / self.requests if self.requests else 0.0)


class JedecDram(_Backend):
    """The JEDEC DRAM model in the loop (see the module docstring)."""

    name = "jedec"

    def __init__(self, timing: DramTiming, clock_ghz: float, record_trace: bool = False, fast: bool = True):
        super().__init__(timing, clock_ghz)
        self.model = DramModel(timing, record_trace=record_trace, fast=fast)

    def _serve(self, addrs: np.ndarray, sizes: np.ndarray, is_write: bool, issue: np.ndarray) -> np.ndarray:
        ghz = self.clock_ghz
        done_ns = self.model.stream_arrays(addrs, sizes, is_write, issue.astype(np.float64) / ghz)
        # Element-wise the same IEEE operations as math.ceil(ns * ghz - 1e-9) per request.
        return np.ceil(done_ns * ghz - 1e-9).astype(np.int64)

    def row_hit_rate(self) -> float | None:
        return self.model.stats.row_hit_rate if self.requests else None


@dataclass(frozen=True)
class ShiftProfile:
    """How BandwidthDram serves one pattern of requests issued at cycles `at + offsets[i]`,
    for every `at` that finds the pipe idle (and below `at_limit`): request i completes at
    `at + done[i]`. See BandwidthDram.shift_profile."""

    done: np.ndarray          # completion offsets (int64)
    done_max: int
    latency_sum: int          # sum of done[i] - offsets[i]
    total_bytes: int
    requests: int
    is_write: bool
    tail_offset: int          # issue offset of the last request that found the pipe idle
    tail: tuple[float, ...]   # transfer times from that request on (the pipe's final float time)
    at_limit: int


class BandwidthDram(_Backend):
    """Peak-bandwidth pipe plus a fixed access latency (see the module docstring)."""

    name = "bandwidth"
    uses_addresses = False
    shifts = True  # offers shift_profile / serve_shifted

    def __init__(self, timing: DramTiming, clock_ghz: float):
        super().__init__(timing, clock_ghz)
        # size / rate per request of the size arrays seen (the cycle simulator reuses a few
        # cached arrays): id -> (the array, kept alive so the id stays its own, its transfer times)
        self._transfers: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.bytes_per_cycle = timing.refresh_limited_peak_gbps / clock_ghz
        self.read_latency = math.ceil((timing.tRCD + timing.tCL + timing.tBL) * timing.tCK_ns * clock_ghz)
        self.write_latency = math.ceil((timing.tRCD + timing.tCWL + timing.tBL) * timing.tCK_ns * clock_ghz)
        self.pipe_free = 0.0  # cycle the data bus finishes everything accepted so far

    def _serve(self, addrs: np.ndarray, sizes: np.ndarray, is_write: bool, issue: np.ndarray) -> np.ndarray:
        """free_i = max(issue_i, free_(i-1)) + size_i / rate; done_i = ceil(free_i) + latency.

        The pipe's float time must come out bit-identical to the request-by-request loop
        (`_serve_scalar`), so the vectorised forms below perform the very same float operation
        for every request. Passes of free_i = max(issue_i, guess_(i-1)) + d_i over the whole
        array, starting from the guess "idle at every issue", fix at least one more request per
        pass and stop at the unique fixed point, which is the loop's result; they converge in a
        few passes when the pipe is busy only briefly (the common case: two passes). A pipe that
        never goes idle is a running sum, which np.add.accumulate computes strictly left to
        right. Anything else falls back to the loop.
        """
        latency = self.write_latency if is_write else self.read_latency
        if not _FIXED_POINT_PASSES:
            return self._serve_scalar(sizes.tolist(), issue.tolist(), latency)
        cached = self._transfers.get(id(sizes))
        if cached is not None and cached[0] is sizes:
            transfer = cached[1]
        else:
            transfer = sizes / self.bytes_per_cycle  # the same division as size / rate per request
            if len(self._transfers) > 4096:
                self._transfers.clear()
            self._transfers[id(sizes)] = (sizes, transfer)
        issue_cycles = issue.astype(np.float64)  # exact: cycles are far below 2**53
        free = issue_cycles + transfer           # free_i if the pipe is idle at every issue
        previous = np.empty_like(free)
        previous[0] = self.pipe_free
        for _ in range(_FIXED_POINT_PASSES):
            previous[1:] = free[:-1]
            # The loop takes issue_i if issue_i > previous_i, else previous_i: the same value as
            # the maximum (equal values are equal floats).
            update = np.maximum(issue_cycles, previous)
            update += transfer
            if (update == free).all():
                break
            free = update
        else:
            free = _busy_runs(issue_cycles, transfer, self.pipe_free) if _BUSY_RUNS else None
            if free is None:
                return self._serve_scalar(sizes.tolist(), issue.tolist(), latency)
        self.pipe_free = float(free[-1])
        return np.ceil(free - 1e-9).astype(np.int64) + latency

    def shift_profile(self, sizes: np.ndarray, offsets: np.ndarray, is_write: bool) -> ShiftProfile | None:
        """The profile of requests of `sizes` issued at `at + offsets` (non-decreasing), or None.

        A DMA of a given shape issues the same request pattern relative to its start, and the
        simulator's single DMA unit starts each DMA after the previous one's data has moved, so
        the pipe is idle at its first issue. The loop's pipe times are then at + r_i up to float
        rounding, with r_i computed here once in exact rational arithmetic (the transfer times
        are the same float divisions as in `_serve`). Each float addition rounds by at most half
        a spacing of doubles below _SHIFT_MAGNITUDE, and the error grows only along a run of
        requests that find the pipe busy. Where every r_i lies farther than that error bound
        (plus the 1e-9 of the ceiling) from an integer, every comparison of a pipe time with an
        (integer) issue cycle and every ceiling comes out as in exact arithmetic, whatever `at`
        is: completion i is at + ceil(r_i) + latency. Otherwise None (serve_arrays instead).
        """
        if not FAST_SHIFT or not len(sizes):
            return None
        latency = self.write_latency if is_write else self.read_latency
        transfers = (sizes / self.bytes_per_cycle).tolist()  # the floats _serve adds
        # Exact arithmetic in integers: every double is an integer over a power of two, so all of
        # them are integers in units of 1 / scale.
        ratios = [transfer.as_integer_ratio() for transfer in transfers]
        scale = max(denominator for _, denominator in ratios)
        free = None
        error = 0.0
        done, tail_index = [], 0
        for index, (offset, (numerator, denominator)) in enumerate(zip(offsets.tolist(), ratios)):
            step = numerator * (scale // denominator)
            if free is not None and free > offset * scale:  # busy: the rounding error accumulates
                free += step
                error += _HALF_ULP
            else:
                free = offset * scale + step
                error, tail_index = _HALF_ULP, index
            whole, fraction = divmod(free, scale)
            margin = 2 * (error + 1e-9 + _HALF_ULP) * scale  # twice the worst case
            if fraction <= margin or scale - fraction <= margin:
                return None
            done.append(whole + 1 + latency)
        done_array = np.asarray(done, dtype=np.int64)
        return ShiftProfile(
            done=done_array, done_max=max(done), latency_sum=int((done_array - offsets).sum()),
            total_bytes=int(sizes.sum()), requests=len(done), is_write=is_write,
            tail_offset=int(offsets[tail_index]), tail=tuple(transfers[tail_index:]),
            at_limit=_SHIFT_MAGNITUDE - max(done) - 2)

    def serve_shifted(self, profile: ShiftProfile, at: int) -> bool:
        """serve_arrays of the profile's requests issued at `at + offsets`, when that is exact
        (the pipe idle at `at`, `at` below the profile's limit): updates the pipe and the
        statistics as serve_arrays would and returns True (completions: at + profile.done).
        Otherwise changes nothing and returns False."""
        if at >= profile.at_limit or self.pipe_free > at:
            return False
        free = float(at + profile.tail_offset)  # the loop's float pipe time, from the last idle issue
        for transfer in profile.tail:
            free += transfer
        self.pipe_free = free
        if profile.is_write:
            self.bytes_written += profile.total_bytes
        else:
            self.bytes_read += profile.total_bytes
        self.requests += profile.requests
        self.latency_total += profile.latency_sum
        return True

    def _serve_scalar(self, sizes: list[int], issue: list[int], latency: int) -> np.ndarray:
        """The reference loop: one request at a time."""
        rate = self.bytes_per_cycle
        free = self.pipe_free
        done = []
        for size, at in zip(sizes, issue):
            free = (at if at > free else free) + size / rate
            done.append(math.ceil(free - 1e-9) + latency)
        self.pipe_free = free
        return np.asarray(done, dtype=np.int64)


def _busy_runs(issue: np.ndarray, transfer: np.ndarray, pipe_free: float) -> np.ndarray | None:
    """The pipe times of BandwidthDram._serve_scalar's loop, free_i = max(issue_i, free_(i-1)) +
    transfer_i, run by run: a run starts where the pipe is idle at an issue (free_i = issue_i +
    transfer_i) and goes on while it is busy (free_i = free_(i-1) + transfer_i), which is
    np.add.accumulate: the same float additions in the same order, so the same bits. Each pass
    computes one run to the end of the array and finds where the next starts; a pattern of more
    than _BUSY_RUNS runs returns None (the loop is then cheaper)."""
    count = len(issue)
    free = np.empty(count)
    position, previous = 0, pipe_free
    for _ in range(_BUSY_RUNS):
        steps = transfer[position:].copy()
        first = issue[position]
        steps[0] += first if first > previous else previous   # the loop's (max) + transfer, one addition
        run = np.add.accumulate(steps)
        idle = np.flatnonzero(issue[position + 1:] > run[:-1])  # the loop takes issue_i there: a new run
        if not len(idle):
            free[position:] = run
            return free
        length = int(idle[0]) + 1
        free[position:position + length] = run[:length]
        previous = run[length - 1]
        position += length
    return None


# Runs BandwidthDram._serve computes with _busy_runs before it falls back to the request loop
# (0: always the loop, the reference the tests compare against).
_BUSY_RUNS = 24


def make_dram(backend: str, config: NPUConfig, record_trace: bool = False) -> _Backend:
    """The DRAM backend `backend` (one of BACKENDS) for machine `config`."""
    timing = dram_timing_for(config)
    if backend in ("jedec", "jedec-reference"):
        return JedecDram(timing, config.clock_ghz, record_trace, fast=backend == "jedec")
    if backend == "bandwidth":
        if record_trace:
            raise ValueError("the bandwidth DRAM backend issues no DRAM commands; use dram='jedec' for a trace")
        return BandwidthDram(timing, config.clock_ghz)
    raise ValueError(f"unknown DRAM backend {backend!r}; choose one of {BACKENDS}")
