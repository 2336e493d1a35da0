"""Cycle-simulator speed: simulated cycles and instructions per wall-clock second.

The workload is a synthetic transformer layer (`layer_program`): the input activations are
DMA'd in, four weight-streaming projections follow (QKV, O, MLP up+gate, MLP down), each one
loading a column strip of pre-tiled weights per output tile column (double-buffered in matrix
SRAM, one DMA per strip) and running BLEN-row tile ops over it, then vector work (an RMSNorm-like
pass and SiLU * up), and the output is DMA'd back. Control flow is data independent, so the run
is timing-only. It prints one line per (preset, DRAM backend): simulated cycles, instructions,
wall time with cycles/s and instructions/s, and process CPU time with cycles/s (the fairer
figure on a shared machine), then the breakdown of the last run of each preset.

The JEDEC DRAM backend schedules DRAM commands in Python, so it runs a smaller layer; the
bandwidth backend runs the full layer. `--reference` adds a run of the JEDEC backend with the
DRAM model's fast paths off ("jedec-reference": identical cycles, the speed before them).

`--llada` instead runs a real compiled step: the LLaDA-8B dual-cache step (dual_inblock) on
dnpu-cloud from results/dnpu-cloud/llada-8b (the compile stage writes it), with the bandwidth
DRAM backend by default (`--llada-dram jedec` for the JEDEC one): 13.4 M instructions.

Usage: python benchmarks/cycle_sim_speed.py [--presets dnpu-cloud dnpu-edge] [--quick] [--reference]
       python benchmarks/cycle_sim_speed.py --llada [--llada-dram bandwidth]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

from pathlib import Path

import numpy as np

from npu.hw.config import NPUConfig, load_npu_config
from npu.isa.assembler import assemble
from npu.sim.cycle import CycleSimulator
from npu.hw.rows import row_bytes


@dataclass(frozen=True)
class LayerShape:
    d_model: int
    d_ff: int
    tokens: int


def _set(register: str, value: int) -> str:
    """Two instructions that put any 32-bit value in `register`."""
    value &= 0xFFFFFFFF
    return f"lui {register}, {value >> 16}\n    ori {register}, {register}, {value & 0xFFFF}"


def layer_program(config: NPUConfig, shape: LayerShape) -> str:
    """Assembly of one synthetic transformer layer for `config` (see the module docstring)."""
    m, b, vlen, t = config.mlen, config.blen, config.vlen, shape.tokens
    d, f = shape.d_model, shape.d_ff
    fmt = config.formats.weights
    projections = [(d, 3 * d), (d, d), (d, 2 * f), (f, d)]
    act_base = 0
    out_base = t * max(k for k, _ in projections)
    lines = [
        "# input activations: T x D bf16 from DRAM byte 0 into vector SRAM",
        _set("r10", t), _set("r11", d), _set("r12", 2 * d),
        "    dld.v a1, r0, r10, r11, r12, r11, bf16",
        _set("r9", t * d * 2), "    aadd a0, a1, r9     # weights follow the activations in DRAM",
        "    wait dma",
    ]
    for index, (k, n) in enumerate(projections):
        strip_rows = k
        strip_row_bytes = row_bytes(fmt, m, config.mx_block)
        strip_elements = k * m
        lines += [
            f"# projection {index}: {k} x {n}",
            _set("r1", b * k - k), _set("r2", b * n), _set("r3", m - (t // b) * b * n),
            _set("r5", k), _set("r8", n), _set("r9", strip_rows * strip_row_bytes),
            _set("r10", strip_rows), _set("r11", m), _set("r12", strip_row_bytes),
            _set("r13", strip_elements), "    add r14, r0, r0", "    add r15, r13, r0",
            _set("r7", out_base),
            f"    dld.m a0, r14, r10, r11, r12, r11, {fmt}",
            "    aadd a0, a0, r9",
            f"    loopi {n // m}, n_end_{index}",
            "    wait dma|matrix",
            f"    dld.m a0, r15, r10, r11, r12, r11, {fmt}",
            "    aadd a0, a0, r9",
            f"    addi r4, r0, {act_base}",
            f"    loopi {t // b}, b_end_{index}",
            "    add r6, r14, r0",
            "    mm r4, r5, r6, 0",
            f"    addi r4, r4, {m}",
            f"    addi r6, r6, {m * m}",
            f"    loopi {k // m - 1}, k_end_{index}",
            "    mma r4, r5, r6, 0",
            f"    addi r4, r4, {m}",
            f"    addi r6, r6, {m * m}",
            f"k_end_{index}:",
            "    mwb r7, r8, 0",
            "    add r4, r4, r1",
            "    add r7, r7, r2",
            f"b_end_{index}:",
            "    add r7, r7, r3",
            "    sub r14, r13, r14",
            "    sub r15, r13, r15",
            f"n_end_{index}:",
            "    wait dma|matrix",
        ]
        rows = t * n // vlen
        if index == 2:  # SiLU(gate) * up over the MLP hidden activations, in place
            half = rows // 2
            outer, inner = _split(half)
            lines += [
                _set("r4", out_base), _set("r6", out_base + t * n // 2),
                f"    loopi {outer}, silu_o_{index}", f"    loopi {inner}, silu_i_{index}",
                "    vsilu r4, r4", "    vmul r4, r4, r6",
                f"    addi r4, r4, {vlen}", f"    addi r6, r6, {vlen}",
                f"silu_i_{index}:", f"silu_o_{index}:",
            ]
        else:  # RMSNorm-like pass: per token, sum of squares, 1/sqrt, scale
            per_token = n // vlen
            lines += [
                _set("r4", out_base), _set("r6", out_base + t * n),
                f"    loopi {t}, norm_{index}",
                "    flui f1, 0.0",
                "    add r9, r4, r0",
                f"    loopi {per_token}, sq_{index}",
                "    vmul r6, r9, r9", "    vsum f1, r6", f"    addi r9, r9, {vlen}",
                f"sq_{index}:",
                "    wait vector",
                "    frsqrt f2, f1",
                f"    loopi {per_token}, sc_{index}",
                "    vmuls r4, r4, f2", f"    addi r4, r4, {vlen}",
                f"sc_{index}:",
                f"norm_{index}:",
            ]
        lines.append("    wait vector")
    lines += [
        "# output activations back to DRAM",
        _set("r10", t), _set("r11", d), _set("r12", 2 * d), _set("r4", out_base),
        "    dst.v a1, r4, r10, r11, r12, r11, bf16",
        "    wait dma",
        "    halt",
    ]
    return "\n".join(lines)


def _split(count: int) -> tuple[int, int]:
    """count = outer * inner with both <= 1023 (loopi's immediate)."""
    for inner in range(min(count, 1023), 0, -1):
        if count % inner == 0 and count // inner <= 1023:
            return count // inner, inner
    raise ValueError(f"cannot split {count} into two loop counts <= 1023")


SHAPES = {  # (bandwidth backend, JEDEC backend)
    "dnpu-cloud": (LayerShape(4096, 12288, 32), LayerShape(1024, 3072, 32)),
    "dnpu-edge": (LayerShape(2048, 4096, 16), LayerShape(1024, 2048, 16)),
    "ar-npu": (LayerShape(4096, 12288, 32), LayerShape(1024, 3072, 32)),
}


def measure(preset: str, backend: str, shape: LayerShape):
    config = load_npu_config(preset)
    program = assemble(layer_program(config, shape))
    sim = CycleSimulator(config, dram=backend)
    sim.load(program)
    wall, cpu = time.perf_counter(), time.process_time()
    stats = sim.run(max_instructions=50_000_000)
    return stats, time.perf_counter() - wall, time.process_time() - cpu


LLADA_DIR = Path(__file__).resolve().parents[1] / "results" / "dnpu-cloud" / "llada-8b"


def measure_llada(backend: str) -> None:
    """Simulate the compiled LLaDA-8B dual-cache step and print its speed."""
    from npu.sim.cycle.compiled import read_compiled_programs

    if not (LLADA_DIR / "compile.tsv").is_file():
        raise SystemExit(f"{LLADA_DIR}: no compiled LLaDA-8B programs; run the compile stage first "
                         "(npu compile --npu dnpu-cloud --ir-dir <llada-8b IR> --out-dir results/dnpu-cloud/llada-8b, or the pipeline)")
    programs = {p.step: p for p in read_compiled_programs(LLADA_DIR)}
    step = programs.get("dual_inblock")
    if step is None or step.program is None:
        raise SystemExit(f"{LLADA_DIR}: the dual_inblock step was not compiled; run the compile stage first")
    sim = CycleSimulator(load_npu_config("dnpu-cloud"), dram=backend)
    sim.load(step.program)
    wall, cpu = time.perf_counter(), time.process_time()
    with np.errstate(all="ignore"):  # timing mode computes no data; as the cycle stage runs it
        stats = sim.run(max_instructions=50_000_000)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"llada-8b dual_inblock dnpu-cloud dram={backend}: {stats.cycles:,} cycles {stats.instructions:,} instr"
          f" | wall {wall:6.2f} s {stats.cycles / wall:>12,.0f} cycles/s {stats.instructions / wall:>9,.0f} instr/s"
          f" | cpu {cpu:6.2f} s {stats.cycles / cpu:>12,.0f} cycles/s {stats.instructions / cpu:>9,.0f} instr/s")
    print(stats.summary())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["dnpu-cloud", "dnpu-edge"])
    parser.add_argument("--quick", action="store_true", help="small layers only (a smoke test)")
    parser.add_argument("--reference", action="store_true",
                        help="also run the JEDEC backend without the DRAM model's fast paths (slow)")
    parser.add_argument("--llada", action="store_true",
                        help="run the compiled LLaDA-8B dual-cache step (results/dnpu-cloud/llada-8b) instead")
    parser.add_argument("--llada-dram", default="bandwidth", help="DRAM backend of the --llada run")
    args = parser.parse_args()
    if args.llada:
        measure_llada(args.llada_dram)
        return
    for preset in args.presets:
        full, small = SHAPES[preset]
        runs = [("bandwidth", small if args.quick else full), ("jedec", small)]
        if args.reference:
            runs.append(("jedec-reference", small))
        stats = None
        for backend, shape in runs:
            stats, wall, cpu = measure(preset, backend, shape)
            print(f"{preset:10s} dram={backend:15s} d={shape.d_model:5d} ff={shape.d_ff:5d} T={shape.tokens:3d}: "
                  f"{stats.cycles:>11,} cycles {stats.instructions:>8,} instr | wall {wall:6.2f} s "
                  f"{stats.cycles / wall:>12,.0f} cycles/s {stats.instructions / wall:>9,.0f} instr/s "
                  f"| cpu {cpu:6.2f} s {stats.cycles / cpu:>12,.0f} cycles/s")
        print(stats.summary())


if __name__ == "__main__":
    main()
