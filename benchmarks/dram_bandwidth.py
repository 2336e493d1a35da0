"""DRAM model figures: streaming and random bandwidth per preset, and the model's own speed.

Bandwidths are in simulated time (deterministic). Two peaks are printed:
- pin peak: channels x burst bytes / (tBL x tCK), every data bus busy every cycle;
- refresh-limited peak: pin peak x (1 - tRFC / tREFI), because an all-bank refresh blocks the
  rank for tRFC out of every tREFI. Streaming is judged against this one (target: >= 95 %).

Model speed is in DRAM bursts (RD/WR commands) per second of process CPU time (fairer than wall
time on a shared machine; it still varies with the machine), for
- stream: sequential 64 B reads over every channel of the preset (channels in identical states
  with identical bursts are scheduled once), and on one channel (row-hit runs only);
- random: 64 B reads at random addresses (no fast path applies);
- access: in-the-loop `access()` calls, one 64 B read every 2 ns.
`--reference` adds the same figures with the fast paths off (`DramModel(fast=False)`, the
scheduler they are tested against) and checks that both give the same completions and stats.

Usage: python benchmarks/dram_bandwidth.py [--channels N] [--random-requests N] [--reference]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from npu.sim.dram import DramModel, DramTiming, check_trace, get_preset, preset_names


def _timing(name: str, channels: int | None) -> DramTiming:
    timing = get_preset(name)
    return timing.with_channels(channels) if channels else timing


def streaming(timing: DramTiming, fast: bool) -> dict:
    """Sequential reads: 10.5 refresh intervals of data at the refresh-limited peak."""
    model = DramModel(timing, fast=fast)
    total = timing.refresh_limited_peak_gbps * timing.tREFI * timing.tCK_ns * 10.5
    count = int(total) // 64
    start = time.process_time()
    completion = model.stream_arrays(np.arange(count) * 64)
    cpu = time.process_time() - start
    stats = model.stats
    return {"bandwidth": stats.achieved_bandwidth_gbps, "bursts_per_s": stats.reads / cpu,
            "completion": completion, "stats": stats}


def random_access(timing: DramTiming, count: int, fast: bool) -> dict:
    rng = np.random.default_rng(0)
    addrs = rng.integers(0, timing.org.capacity_bytes // 64, count) * 64
    model = DramModel(timing, fast=fast)
    start = time.process_time()
    completion = model.stream_arrays(addrs)
    cpu = time.process_time() - start
    stats = model.stats
    return {"bandwidth": stats.achieved_bandwidth_gbps, "bursts_per_s": stats.reads / cpu,
            "latency_ns": stats.mean_burst_latency_ns, "completion": completion, "stats": stats}


def in_the_loop(timing: DramTiming, count: int, fast: bool) -> float:
    """access() calls, one 64 B read every 2 ns of simulated time, sequential addresses."""
    model = DramModel(timing, fast=fast)
    start = time.process_time()
    for i in range(count):
        model.access(i * 64, 64, False, i * 2.0)
    return model.stats.reads / (time.process_time() - start)


def traced_check(name: str) -> int:
    """Violations in a traced mixed read/write run with the fast paths on (must be 0)."""
    model = DramModel(name, channels=2, record_trace=True)
    rng = np.random.default_rng(1)
    addrs = rng.integers(0, model.timing.org.capacity_bytes // 64, 4000) * 64
    model.stream_arrays(addrs, 64, rng.random(4000) < 0.4, np.sort(rng.uniform(0, 8000, 4000)))
    model.stream_arrays(np.arange(20000) * 64, 64, False, 10000.0)
    return len(check_trace(model.trace, model.timing))


def _same(fast: dict, reference: dict) -> bool:
    return (np.array_equal(fast["completion"], reference["completion"])
            and fast["stats"] == reference["stats"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=None,
                        help="override every preset's channel count (default: the preset's)")
    parser.add_argument("--random-requests", type=int, default=20000)
    parser.add_argument("--access-requests", type=int, default=20000)
    parser.add_argument("--reference", action="store_true",
                        help="also measure the fast paths off, and check the results agree")
    args = parser.parse_args()

    print("bandwidths in GB/s (simulated), latency in ns, model speed in bursts per CPU second")
    print(f"{'preset':7} {'ch':>3} {'pin peak':>9} {'ref peak':>9} {'stream':>9} {'%pin':>6} {'%ref':>6} "
          f"{'random64':>9} {'%pin':>6} {'rnd lat':>8} {'viol':>4}")
    speeds = []
    for name in preset_names():
        timing = _timing(name, args.channels)
        one_channel = timing.with_channels(1)
        stream = streaming(timing, fast=True)
        rand = random_access(timing, args.random_requests, fast=True)
        speed = {"stream": stream["bursts_per_s"],
                 "stream 1 ch": streaming(one_channel, fast=True)["bursts_per_s"],
                 "random": rand["bursts_per_s"],
                 "access": in_the_loop(timing, args.access_requests, fast=True)}
        reference = {}
        if args.reference:
            stream_reference = streaming(timing, fast=False)
            rand_reference = random_access(timing, args.random_requests, fast=False)
            if not (_same(stream, stream_reference) and _same(rand, rand_reference)):
                raise SystemExit(f"{name}: the fast paths changed a result")
            reference = {"stream": stream_reference["bursts_per_s"],
                         "stream 1 ch": streaming(one_channel, fast=False)["bursts_per_s"],
                         "random": rand_reference["bursts_per_s"],
                         "access": in_the_loop(timing, args.access_requests, fast=False)}
        speeds.append((name, timing.org.channels, speed, reference))
        print(f"{name:7} {timing.org.channels:3d} {timing.peak_bandwidth_gbps:9.1f} "
              f"{timing.refresh_limited_peak_gbps:9.1f} {stream['bandwidth']:9.1f} "
              f"{100 * stream['bandwidth'] / timing.peak_bandwidth_gbps:6.1f} "
              f"{100 * stream['bandwidth'] / timing.refresh_limited_peak_gbps:6.1f} "
              f"{rand['bandwidth']:9.1f} {100 * rand['bandwidth'] / timing.peak_bandwidth_gbps:6.1f} "
              f"{rand['latency_ns']:8.1f} {traced_check(name):4d}")

    kinds = ("stream", "stream 1 ch", "random", "access")
    print()
    print(f"{'preset':7} {'ch':>3} " + " ".join(f"{kind:>12}" for kind in kinds)
          + ("   (fast paths; reference below; x = speed-up)" if args.reference else ""))
    for name, channels, speed, reference in speeds:
        print(f"{name:7} {channels:3d} " + " ".join(f"{speed[kind]:12,.0f}" for kind in kinds))
        if reference:
            print(f"{'  ref':7} {'':3} " + " ".join(f"{reference[kind]:12,.0f}" for kind in kinds))
            print(f"{'  x':7} {'':3} " + " ".join(f"{speed[kind] / reference[kind]:12.1f}" for kind in kinds))


if __name__ == "__main__":
    main()
