"""Simulation speed of npu_top (the whole core with its units) on random queued programs:
simulated cycles per second on the RTL (Verilator or Icarus, free-running: the testbench and its
DRAM model are HDL, npu/rtl/npu_top_bench.v), beside the cycle simulator's on the same programs.

    python benchmarks/rtl_top_speed.py --programs 40 --simulator verilator
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from npu.check.rtl import dram_timing  # noqa: E402
from npu.isa.assembler import Program  # noqa: E402
from npu.rtl.top import reduced_config  # noqa: E402
from npu.rtl.top_sim import run_programs  # noqa: E402
from npu.sim.cycle.simulator import CycleSimulator  # noqa: E402
from test_rtl_top import random_programs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--programs", type=int, default=40)
    parser.add_argument("--simulator", default="verilator", choices=("verilator", "icarus"))
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    config = reduced_config()
    programs, images = random_programs(config, args.programs, args.seed)
    run_programs(config, programs[:1], images[:1], dram_timing(config), args.simulator)  # build outside the timing
    start = time.perf_counter()
    runs = run_programs(config, programs, images, dram_timing(config), args.simulator)
    rtl_seconds = time.perf_counter() - start
    cycles = sum(run.cycles for run in runs)
    start = time.perf_counter()
    sim_cycles = 0
    for words in programs:
        sim = CycleSimulator(config, dram="bandwidth")
        sim.load(Program(words))
        try:
            sim_cycles += sim.run().cycles
        except Exception:  # the planted faults
            pass
    cycle_seconds = time.perf_counter() - start
    print(f"{args.simulator}: {len(runs)} programs, {cycles:,} RTL cycles in {rtl_seconds:.1f} s = "
          f"{cycles / rtl_seconds:,.0f} cycles/s (testbench dumps included)")
    print(f"cycle simulator: {sim_cycles:,} cycles in {cycle_seconds:.2f} s = {sim_cycles / cycle_seconds:,.0f} cycles/s")


if __name__ == "__main__":
    main()
