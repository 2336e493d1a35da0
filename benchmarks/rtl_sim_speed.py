"""RTL simulation speed of each arithmetic unit, Verilator vs Icarus Verilog.

    .venv/bin/python benchmarks/rtl_sim_speed.py [--vectors 2000] [--out results/x.json]

Every unit is combinational, so one simulated cycle is one input vector applied and settled
(npu.rtl.sim drives them from cocotb, which dominates the cost on Verilator). The testbench is
built first (not timed). Each unit runs twice, on 10 and on N vectors; the rate is
(N - 10) / (difference of the wall times), so the simulator's start-up (about a second) drops
out and cocotb's per-vector overhead stays in. Simulators not installed are reported as skipped.

The control core (npu_core, `--core`): simulated clock cycles per second of the core running a
loop of scalar INT / FP instructions (the clock runs free, cocotb only waits for `halt`). Each
simulator runs the loop with two trip counts; the rate is the difference in cycles over the
difference in wall time (build, start-up, program load and the state dump drop out).
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


CORE_LOOP = """
    flui f1, 1.5
    flui f2, 0.75
    loopi {outer}, end
    loopi 100, inner
    addi r1, r1, 1
    mul r2, r1, r1
    fadd f3, f3, f2
    fmul f4, f1, f2
    sw r2, 7(r0)
    inner:
    nop
    end:
    halt
"""


def measure_core(outer: tuple[int, int] = (2, 1000), preset: str = "dnpu-edge") -> list[dict]:
    """Cycles per second of npu_core on each simulator (see the module docstring)."""
    import dataclasses

    from npu.hw.config import load_npu_config
    from npu.isa.assembler import assemble
    from npu.rtl import core_sim

    # small scalar SRAMs: the run ends with a dump of both through the debug port
    full = load_npu_config(preset)
    config = dataclasses.replace(full, int_sram=dataclasses.replace(full.int_sram, size_bytes=256),
                                 fp_sram=dataclasses.replace(full.fp_sram, size_bytes=256))
    rows = []
    for simulator in rtl_sim.SIMULATORS:
        missing = rtl_sim.missing_tool(simulator)
        if missing:
            rows.append({"simulator": simulator, "skipped": missing})
            continue
        # warm-up run: builds the core (the build key depends on the environment the first run sets)
        core_sim.run_programs(config, [assemble("halt").words], simulator, program_words=64)
        counts = outer if simulator == "verilator" else (outer[0], max(outer[0] + 2, outer[1] // 20))
        timings = []
        for count in counts:
            words = assemble(CORE_LOOP.format(outer=count)).words
            began = time.perf_counter()
            (run,) = core_sim.run_programs(config, [words], simulator, program_words=64, max_cycles=10**9)
            timings.append((run.cycles, time.perf_counter() - began))
        (c0, t0), (c1, t1) = timings
        rows.append({"simulator": simulator, "unit": "npu_core", "cycles": c1, "seconds": round(t1, 3),
                     "cycles_per_second": round((c1 - c0) / (t1 - t0), 1) if t1 > t0 else float("nan")})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=50_000, help="vectors per unit on Verilator (Icarus: 1/25)")
    parser.add_argument("--out", type=Path, help="also write the rows as JSON")
    parser.add_argument("--core", action="store_true", help="measure the control core (npu_core) only")
    args = parser.parse_args()
    rows = measure_core() if args.core else measure(args.vectors) + measure_core()
    for row in rows:
        if "skipped" in row:
            print(f"{row['simulator']:9s} skipped: {row['skipped']}")
        else:
            amount = f"{row['vectors']:6d} vectors" if "vectors" in row else f"{row['cycles']:6d} cycles "
            print(f"{row['simulator']:9s} {row['unit']:13s} {amount} "
                  f"{row['seconds']:8.2f} s {row['cycles_per_second']:10.1f} cycles/s")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
