"""RTL simulation speed of every unit, Verilator vs Icarus Verilog, in simulated cycles per second.

    .venv/bin/python benchmarks/rtl_sim_speed.py [--units numerics core ...] [--out results/x.json]

Each design is built first (not timed) and run twice, on a short and a long input; the rate is
the difference in simulated cycles over the difference in wall time, so build, start-up (about a
second) and result dumps drop out and cocotb's per-cycle overhead stays in. Simulators not
installed are reported as skipped.
- numerics: the combinational arithmetic units, one input vector applied and settled per cycle;
- dma_codec: one MX block per cycle, every format and direction (its Verilator build at
  BLOCK 32 takes several minutes the first time);
- vector_unit: a random mix of instructions streamed one per cycle (VLEN 8);
- matrix_unit: a program of weight loads, tile ops and write-backs (the tests' builds);
- core: the control core (npu_core) running a loop of scalar INT / FP instructions.

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


def measure_dma_codec(blocks: int) -> list[dict]:
    """The clocked DMA codec (BLOCK = dnpu-cloud's mx_block): random blocks of every format and
    direction streamed one per cycle (npu/rtl/cocotb_dma.py); cycles/s = blocks/s."""
    from npu.hw.config import load_npu_config
    from npu.isa.table import DRAM_FORMATS
    from npu.rtl import DMA_CODEC_TOP, dma_codec_sources

    block = load_npu_config("dnpu-cloud").mx_block
    rng = np.random.default_rng(0)
    rows = []
    for simulator in rtl_sim.SIMULATORS:
        if rtl_sim.missing_tool(simulator):
            continue
        n = blocks if simulator == "verilator" else max(20, blocks // 100)
        control = np.stack([rng.integers(0, 2, n), rng.integers(0, len(DRAM_FORMATS), n), rng.integers(0, 2, n),
                            rng.integers(0, 2, n), rng.integers(0, 2, n)], axis=1).astype(np.uint8)
        files = {"control": control,
                 "sram": rng.standard_normal((n, block)).astype(np.float32).view(np.uint32),
                 "scale": np.ones((n, block), np.float32).view(np.uint32),
                 "dram": rng.integers(0, 256, (n, 4 * block), dtype=np.uint8)}
        build = rtl_sim.build_design(DMA_CODEC_TOP, dma_codec_sources(), simulator, parameters={"BLOCK": block})
        seconds = []
        for count in (10, n):
            began = time.perf_counter()
            rtl_sim.run_cocotb(DMA_CODEC_TOP, build, "npu.rtl.cocotb_dma", simulator,
                               files={name: array[:count] for name, array in files.items()},
                               outputs=("dram_out", "sram_out"))
            seconds.append(time.perf_counter() - began)
        extra = seconds[1] - seconds[0]
        rows.append({"simulator": simulator, "unit": f"dma_codec[{block}]", "vectors": n,
                     "seconds": round(seconds[1], 3), "startup_seconds": round(seconds[0], 3),
                     "cycles_per_second": round((n - 10) / extra, 1) if extra > 0 else float("nan")})
    return rows


def vector_unit_batch(count: int, vlen: int, seed: int = 0) -> dict[str, np.ndarray]:
    """`count` random element-wise / special-function / reduction instructions (no vrank, so the
    unit takes one per cycle) with random bf16 operand rows."""
    from npu.isa.table import BY_MNEMONIC
    from npu.rtl.vector import VECTOR_MNEMONICS

    rng = np.random.default_rng(seed)
    specs = [BY_MNEMONIC[m] for m in VECTOR_MNEMONICS if m != "vrank"]
    chosen = rng.integers(0, len(specs), count)
    control = np.array([[specs[c].opcode, specs[c].funct or 0, 0, 1] for c in chosen], dtype=np.int64)
    return {"control": control,
            "rows": rng.integers(0, 1 << 16, (count, 3, vlen), dtype=np.uint64) << 16,
            "words": rng.integers(0, 1 << 32, (count, 2, vlen), dtype=np.uint64),
            "scalars": rng.integers(0, 1 << 32, (count, 4), dtype=np.uint64) & ~np.uint64(0xFF)}


def measure_vector_unit(instructions: int, vlen: int = 8) -> list[dict]:
    """Clock cycles per second of vector_unit (VLEN `vlen`, bf16 rows) streaming a mix of
    instructions, one per cycle; the rate is taken between a 10- and an N-instruction run, as above."""
    from npu.rtl import vector as rtl_vector

    parameters = {"VLEN": vlen, "VECTOR_BITS": 16, "RANK_STEP_LANES": max(1, vlen // 2)}
    rows = []
    for simulator in rtl_sim.SIMULATORS:
        missing = rtl_sim.missing_tool(simulator)
        if missing:
            rows.append({"simulator": simulator, "skipped": missing})
            continue
        n = instructions if simulator == "verilator" else max(20, instructions // 20)
        batch = vector_unit_batch(n, vlen)
        rtl_vector.simulate({k: v[:10] for k, v in batch.items()}, parameters, simulator)  # build (not timed)
        seconds, cycles = [], []
        for part in ({k: v[:10] for k, v in batch.items()}, batch):
            began = time.perf_counter()
            cycles.append(int(rtl_vector.simulate(part, parameters, simulator)["cycles"]))
            seconds.append(time.perf_counter() - began)
        extra = seconds[1] - seconds[0]
        rate = (cycles[1] - cycles[0]) / extra if extra > 0 else float("nan")
        rows.append({"simulator": simulator, "unit": f"vector_unit(VLEN={vlen})", "vectors": n,
                     "seconds": round(seconds[1], 3), "startup_seconds": round(seconds[0], 3),
                     "cycles_per_second": round(rate, 1)})
    return rows


def matrix_program(config, tile_ops: int, seed: int = 0) -> list:
    """`tile_ops` mm / mma on a new N(0, 1) weight tile every other op, a write-back every 4 ops."""
    from npu.hw import numerics
    from npu.rtl.matrix import LoadTile, TileOp, WriteBack

    rng = np.random.default_rng(seed)
    commands = []
    for op in range(tile_ops):
        if op % 2 == 0:
            tile = rng.standard_normal((config.mlen, config.mlen)).astype(np.float32)
            commands.append(LoadTile(numerics.encode(tile, "bf16"), transpose=bool(op % 4)))
        rows = rng.standard_normal((config.blen, config.mlen)).astype(np.float32)
        commands.append(TileOp(numerics.encode(rows, config.formats.vector), acc=op % config.accumulators,
                               accumulate=op >= config.accumulators))
        if op % 4 == 3:
            commands.append(WriteBack(op % config.accumulators))
    return commands


def measure_matrix(tile_ops: int) -> list[dict]:
    """Simulated cycles per second of matrix_unit (bf16, 2 accumulators; MLEN 4 BLEN 2 with one-beat
    tile loads and MLEN 8 BLEN 4 with two rows per beat: the builds tests/test_rtl_matrix.py
    makes): a program of `tile_ops` tile ops minus one of 8, so start-up drops out (the build is
    not timed)."""
    import dataclasses

    from npu.hw.config import load_npu_config
    from npu.rtl.matrix import matrix_parameters, run_matrix_program

    edge = load_npu_config("dnpu-edge")
    rows = []
    for simulator in rtl_sim.SIMULATORS:
        missing = rtl_sim.missing_tool(simulator)
        if missing:
            rows.append({"simulator": simulator, "skipped": missing})
            continue
        for mlen, blen, weight_rows in ((4, 2, 4), (8, 4, 2)):
            config = dataclasses.replace(
                edge, mlen=mlen, blen=blen, vlen=mlen, mx_block=mlen, accumulators=2,
                vector_sram=dataclasses.replace(edge.vector_sram, width_bits=mlen * 16),
                matrix_sram=dataclasses.replace(edge.matrix_sram, width_bits=weight_rows * mlen * 16))
            parameters = matrix_parameters(config)
            n = tile_ops if simulator == "verilator" else max(16, tile_ops // 10)
            cycles, seconds = [], []
            for count in (8, n):
                began = time.perf_counter()
                run = run_matrix_program(matrix_program(config, count), parameters, simulator)
                seconds.append(time.perf_counter() - began)
                cycles.append(int(run.cycles))
            extra = seconds[1] - seconds[0]
            rate = (cycles[1] - cycles[0]) / extra if extra > 0 else float("nan")
            rows.append({"simulator": simulator, "unit": f"matrix_unit MLEN {mlen}", "vectors": cycles[1],
                         "seconds": round(seconds[1], 3), "startup_seconds": round(seconds[0], 3),
                         "cycles_per_second": round(rate, 1)})
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


UNITS = ("numerics", "dma_codec", "vector_unit", "matrix_unit", "core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", nargs="+", choices=UNITS, default=list(UNITS),
                        help="what to measure (default: everything)")
    parser.add_argument("--vectors", type=int, default=50_000,
                        help="vectors per arithmetic unit on Verilator (Icarus: 1/25)")
    parser.add_argument("--codec-blocks", type=int, default=2_000,
                        help="blocks through the DMA codec on Verilator (Icarus: 1/100)")
    parser.add_argument("--vector-instructions", type=int, default=5_000,
                        help="instructions streamed through vector_unit on Verilator (Icarus: 1/20)")
    parser.add_argument("--matrix-tile-ops", type=int, default=400,
                        help="tile ops through matrix_unit on Verilator (Icarus: 1/10)")
    parser.add_argument("--out", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    measures = {"numerics": lambda: measure(args.vectors),
                "dma_codec": lambda: measure_dma_codec(args.codec_blocks),
                "vector_unit": lambda: measure_vector_unit(args.vector_instructions),
                "matrix_unit": lambda: measure_matrix(args.matrix_tile_ops),
                "core": measure_core}
    rows = [row for unit in args.units for row in measures[unit]()]
    for row in rows:
        if "skipped" in row:
            print(f"{row['simulator']:9s} skipped: {row['skipped']}")
            continue
        amount = f"{row['vectors']:6d} vectors" if "vectors" in row else f"{row['cycles']:6d} cycles "
        print(f"{row['simulator']:9s} {row['unit']:24s} {amount} "
              f"{row['seconds']:8.2f} s {row['cycles_per_second']:10.1f} cycles/s")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
