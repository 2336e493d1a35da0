"""DRAM model figures: streaming and random bandwidth per preset, and the model's own speed.

Bandwidths are in simulated time (deterministic). Two peaks are printed:
- pin peak: channels x burst bytes / (tBL x tCK), every data bus busy every cycle;
- refresh-limited peak: pin peak x (1 - tRFC / tREFI), because an all-bank refresh blocks the
  rank for tRFC out of every tREFI. Streaming is judged against this one (target: >= 95 %).
Model speed (requests of 64 B per wall-clock second) is wall time and varies with the machine.

Usage: python benchmarks/dram_bandwidth.py [--channels N] [--random-requests N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from npu.sim.dram import PRESETS, DramModel, check_trace, get_preset


def streaming(name: str, channels: int | None) -> dict:
    timing = get_preset(name)
    if channels:
        timing = timing.with_channels(channels)
    model = DramModel(timing)
    # 10.5 refresh intervals of data at the refresh-limited peak.
    total = timing.refresh_limited_peak_gbps * timing.tREFI * timing.tCK_ns * 10.5
    count = int(total) // 64
    start = time.perf_counter()
    model.stream_arrays(np.arange(count) * 64)
    wall = time.perf_counter() - start
    stats = model.stats
    return {
        "timing": timing,
        "bandwidth": stats.achieved_bandwidth_gbps,
        "requests_per_s": count / wall,
        "refreshes": stats.refreshes,
        "hit_rate": stats.row_hit_rate,
    }


def random_access(name: str, channels: int | None, count: int) -> dict:
    timing = get_preset(name)
    if channels:
        timing = timing.with_channels(channels)
    rng = np.random.default_rng(0)
    addrs = rng.integers(0, timing.org.capacity_bytes // 64, count) * 64
    model = DramModel(timing)
    start = time.perf_counter()
    model.stream_arrays(addrs)
    wall = time.perf_counter() - start
    stats = model.stats
    return {
        "bandwidth": stats.achieved_bandwidth_gbps,
        "requests_per_s": count / wall,
        "latency_ns": stats.mean_burst_latency_ns,
    }


def in_the_loop(name: str, count: int) -> float:
    """access() calls, one 64 B read every 2 ns of simulated time, sequential addresses."""
    model = DramModel(name)
    start = time.perf_counter()
    for i in range(count):
        model.access(i * 64, 64, False, i * 2.0)
    return count / (time.perf_counter() - start)


def traced_check(name: str) -> int:
    """Violations in a traced mixed read/write run (must be 0)."""
    model = DramModel(name, channels=2, record_trace=True)
    rng = np.random.default_rng(1)
    addrs = rng.integers(0, model.timing.org.capacity_bytes // 64, 4000) * 64
    model.stream_arrays(addrs, 64, rng.random(4000) < 0.4, np.sort(rng.uniform(0, 8000, 4000)))
    return len(check_trace(model.trace, model.timing))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=None,
                        help="override every preset's channel count (default: the preset's)")
    parser.add_argument("--random-requests", type=int, default=20000)
    parser.add_argument("--access-requests", type=int, default=20000)
    args = parser.parse_args()

    header = (f"{'preset':7} {'ch':>3} {'pin peak':>9} {'ref peak':>9} {'stream':>9} "
              f"{'%pin':>6} {'%ref':>6} {'random64':>9} {'%pin':>6} {'rnd lat':>8} "
              f"{'stream/s':>9} {'random/s':>9} {'access/s':>9} {'viol':>4}")
    print("bandwidths in GB/s (simulated), latency in ns, speeds in 64 B requests per second")
    print(header)
    for name in PRESETS:
        stream = streaming(name, args.channels)
        rand = random_access(name, args.channels, args.random_requests)
        loop = in_the_loop(name, args.access_requests)
        t = stream["timing"]
        print(f"{name:7} {t.org.channels:3d} {t.peak_bandwidth_gbps:9.1f} "
              f"{t.refresh_limited_peak_gbps:9.1f} {stream['bandwidth']:9.1f} "
              f"{100 * stream['bandwidth'] / t.peak_bandwidth_gbps:6.1f} "
              f"{100 * stream['bandwidth'] / t.refresh_limited_peak_gbps:6.1f} "
              f"{rand['bandwidth']:9.1f} {100 * rand['bandwidth'] / t.peak_bandwidth_gbps:6.1f} "
              f"{rand['latency_ns']:8.1f} {stream['requests_per_s']:9.0f} "
              f"{rand['requests_per_s']:9.0f} {loop:9.0f} {traced_check(name):4d}")


if __name__ == "__main__":
    main()
