"""RTL simulation speed of each arithmetic unit, Verilator vs Icarus Verilog.

    .venv/bin/python benchmarks/rtl_sim_speed.py [--vectors 2000] [--out results/x.json]

Every unit is combinational, so one simulated cycle is one input vector applied and settled
(npu.rtl.sim drives them from cocotb, which dominates the cost on Verilator). The testbench is
built first (not timed). Each unit runs twice, on 10 and on N vectors; the rate is
(N - 10) / (difference of the wall times), so the simulator's start-up (about a second) drops
out and cocotb's per-vector overhead stays in. Simulators not installed are reported as skipped.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from npu.rtl import UNIT_PORTS
from npu.rtl import sim as rtl_sim


def measure(vectors: int) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for simulator in rtl_sim.SIMULATORS:
        missing = rtl_sim.missing_tool(simulator)
        if missing:
            rows.append({"simulator": simulator, "skipped": missing})
            continue
        rtl_sim.build(simulator)
        for unit, (widths, _) in UNIT_PORTS.items():
            # Icarus is 100-1000x slower on the deep units: fewer vectors keep it to seconds.
            n = vectors if simulator == "verilator" else max(100, vectors // 25)
            inputs = np.stack([rng.integers(0, 1 << w, n, dtype=np.uint64) for w in widths], axis=1)
            seconds = []
            for batch in (inputs[:10], inputs):
                began = time.perf_counter()
                rtl_sim.simulate(unit, batch, simulator)
                seconds.append(time.perf_counter() - began)
            extra = seconds[1] - seconds[0]
            rate = (n - 10) / extra if extra > 0 else float("nan")  # nan: lost in start-up noise
            rows.append({"simulator": simulator, "unit": unit, "vectors": n, "seconds": round(seconds[1], 3),
                         "startup_seconds": round(seconds[0], 3), "cycles_per_second": round(rate, 1)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=50_000, help="vectors per unit on Verilator (Icarus: 1/25)")
    parser.add_argument("--out", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    rows = measure(args.vectors)
    for row in rows:
        if "skipped" in row:
            print(f"{row['simulator']:9s} skipped: {row['skipped']}")
        else:
            print(f"{row['simulator']:9s} {row['unit']:13s} {row['vectors']:6d} vectors "
                  f"{row['seconds']:8.2f} s {row['cycles_per_second']:10.1f} cycles/s")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
