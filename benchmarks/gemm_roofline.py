"""GEMM microbenchmark against the roofline: the compiler's own GEMM loop on the cycle simulator.

Issue 13's "Done when" judges the matrix path on single linear layers: for every NPU preset
(config/npu/*.yaml), M in {16, 32, 128} activation rows and K = N in {128, 256, 512, 1024}, the
program `npu.compiler.linear.compile_gemm` emits (the loop every linear layer of a step runs:
x in vector SRAM, W streamed from DRAM panel by panel, y back to vector SRAM) is timed on the
cycle simulator (npu.sim.cycle) in two settings:

(a) operands in SRAM. The emitter has no SRAM-resident mode (every panel comes in by DMA), so
    the program runs on a copy of the preset with 1024x the DRAM bandwidth (DRAM never binds;
    weights still reach matrix SRAM through the DMA port) and the figure counts from the
    dispatch of the first matrix-unit op to the end: the first panel's fill (`fill`: the cycles
    before the array could start loading its first weight tile) is excluded, the array's own
    weight-tile loads, tile ops, drains and write-backs are not;
(b) weights streamed from DRAM: the preset as it is, the whole program, with the bandwidth DRAM
    backend (the analytical model's; `--dram jedec` for the JEDEC timing model in the loop).

Bounds: ideal = M*N*K / MLEN^2 cycles (the array retires MLEN^2 MACs per cycle); DRAM bound =
weight bytes in DRAM (weight format, MX scales included) / peak DRAM bytes per cycle of the
preset (`dram.bandwidth_gbps` / clock). The last column is cycles / max(ideal, DRAM bound) of
(b). The script prints figures and asserts nothing about speed (speeds are never asserted in
tests; see README "Benchmarks").

Usage: python benchmarks/gemm_roofline.py [--presets dnpu-cloud ...] [--rows 16 32 128]
       [--sizes 128 256 512 1024] [--dram bandwidth|jedec] [--tsv out.tsv]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from npu.compiler.linear import GemmKernel, compile_gemm
from npu.hw.config import CONFIG_DIR, NPUConfig, load_npu_config
from npu.io import write_tsv
from npu.sim.cost.latency import port_cycles
from npu.sim.cycle import CycleSimulator

WIDE_DRAM = 1024  # (a): DRAM bandwidth multiplier that keeps DRAM from binding (a power of two of channels)
TIMELINE_EVENTS = 10_000_000  # (a) records one timeline event per executed instruction; the largest
                              # default GEMM (edge, M 128, K = N 1024) executes far fewer


def wide_dram(config: NPUConfig, factor: int = WIDE_DRAM) -> NPUConfig:
    """The same machine with `factor` x the DRAM channels and bandwidth (factor a power of two,
    so the JEDEC preset still divides it into whole channels)."""
    dram = dataclasses.replace(config.dram, bandwidth_gbps=config.dram.bandwidth_gbps * factor,
                               channels=config.dram.channels * factor)
    return dataclasses.replace(config, name=f"{config.name}-dram-x{factor}", dram=dram)


def simulate(config: NPUConfig, kernel: GemmKernel, dram: str, timeline: bool = False):
    """The kernel's CycleStats on the cycle simulator (timing mode: no data is computed)."""
    simulator = CycleSimulator(config, dram=dram, record_timeline=timeline, timeline_limit=TIMELINE_EVENTS)
    simulator.load(kernel.program)
    with np.errstate(all="ignore"):
        return simulator.run()


def first_matrix_dispatch(config: NPUConfig, stats) -> int:
    """Cycle the array could start loading its first weight tile: the first matrix-unit op's
    start minus the tile load it waits for (one MLEN x MLEN bf16 tile through a matrix SRAM port)."""
    starts = [event.start for event in stats.timeline if event.track == "matrix"]
    if not starts:
        raise ValueError(f"{config.name}: the GEMM program ran no matrix-unit op")
    if not stats.timeline_complete:
        raise ValueError(f"{config.name}: timeline truncated at {TIMELINE_EVENTS} events; raise TIMELINE_EVENTS")
    return max(0, min(starts) - port_cycles(config, "matrix_sram", config.weight_tile_bytes))


def measure(config: NPUConfig, rows: int, size: int, dram: str) -> dict:
    """One table row: (a) in-SRAM and (b) DRAM-streamed cycles of a rows x size x size GEMM."""
    kernel = compile_gemm(config, rows, size, size)
    ideal = kernel.macs / config.peak_macs_per_cycle
    dram_bound = kernel.weight_bytes / config.dram_bytes_per_cycle
    wide = wide_dram(config)
    sram_stats = simulate(wide, compile_gemm(wide, rows, size, size), "bandwidth", timeline=True)
    fill = first_matrix_dispatch(wide, sram_stats)
    sram_cycles = sram_stats.cycles - fill
    streamed = simulate(config, kernel, dram)
    bound = max(ideal, dram_bound)
    return {"npu": config.name, "m": rows, "k": size, "n": size, "macs": kernel.macs,
            "weight_bytes": kernel.weight_bytes, "ideal_cycles": ideal,
            "sram_cycles": sram_cycles, "sram_fill_cycles": fill, "sram_x_ideal": sram_cycles / ideal,
            "dram_backend": dram, "dram_cycles": streamed.cycles, "dram_bound_cycles": dram_bound,
            "binds": "compute" if ideal >= dram_bound else "dram",
            "dram_x_bound": streamed.cycles / bound}


def _presets() -> list[str]:
    return sorted(path.stem for path in CONFIG_DIR.glob("*.yaml"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=_presets(), help="NPU presets (names or YAML paths)")
    parser.add_argument("--rows", nargs="+", type=int, default=[16, 32, 128], help="M: activation rows")
    parser.add_argument("--sizes", nargs="+", type=int, default=[128, 256, 512, 1024], help="K = N")
    parser.add_argument("--dram", choices=["bandwidth", "jedec"], default="bandwidth",
                        help="DRAM backend of setting (b)")
    parser.add_argument("--tsv", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)

    header = (f"{'npu':<11} {'M':>4} {'K=N':>5} {'ideal':>7} | {'(a) SRAM':>8} {'fill':>6} {'x ideal':>7} | "
              f"{'(b) DRAM':>8} {'DRAM bnd':>8} {'binds':>7} {'x bound':>7}")
    print(f"GEMM vs roofline: cycles of npu.compiler.linear.compile_gemm on the cycle simulator; "
          f"(a) operands in SRAM (DRAM x{WIDE_DRAM}, first panel fill excluded), "
          f"(b) weights streamed ({args.dram} DRAM backend)")
    print(header)
    print("-" * len(header))
    rows, began = [], time.perf_counter()
    for preset in args.presets:
        config = load_npu_config(preset)
        for m in args.rows:
            for size in args.sizes:
                row = measure(config, m, size, args.dram)
                rows.append(row)
                print(f"{row['npu']:<11} {m:>4} {size:>5} {row['ideal_cycles']:>7.0f} | {row['sram_cycles']:>8.0f} "
                      f"{row['sram_fill_cycles']:>6.0f} {row['sram_x_ideal']:>7.2f} | {row['dram_cycles']:>8.0f} "
                      f"{row['dram_bound_cycles']:>8.0f} {row['binds']:>7} {row['dram_x_bound']:>7.2f}", flush=True)
        print(f"  ({preset} done, {time.perf_counter() - began:.1f} s)", file=sys.stderr, flush=True)
    if args.tsv is not None:
        write_tsv(args.tsv, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
