"""What compiled BAOS costs a dual-cache step: compiler statistics per KV variant.

    nice -n 19 .venv/bin/python benchmarks/baos_compile_costs.py [--npu dnpu-cloud]

For tiny-sort (seq 25, block 4) and LLaDA-8B (seq 512, block 32) it compiles the refresh
(query_length = seq_len) and the in-block step (query_length = block) with: the bf16 cache;
BAOS-MXINT4 at a fixed alpha 0.5; the alpha search with the 'attention' criterion; and the
search with the 'output' criterion (the default, `KVQuant()`), and prints executed
instructions, MACs and DRAM bytes (the figures the cycle simulator and the analytical model
reproduce, tests/test_kv_quant_compiler.py), the analytical model's cycles (`--cycles`) and the
compile time.
"""

from __future__ import annotations

import argparse
import time

from npu.compiler import StepSpec, compile_spec
from npu.isa.assembler import Program
from npu.sim.analytical.program import estimate_program
from npu.compiler.kv_quant import KVQuant
from npu.compiler.layout import Shapes
from npu.hw.config import load_npu_config
from npu.models.presets import load_model_spec

VARIANTS = {
    "bf16": None,
    "fixed 0.5": KVQuant(4, 0.5),
    "search attention": KVQuant(4, criterion="attention"),
    "search output": KVQuant(4),
}
SHAPES = (("tiny-sort", 25, 4), ("llada-8b", 512, 32))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npu", default="dnpu-cloud")
    parser.add_argument("--cycles", action="store_true",
                        help="also the analytical model's cycles per step (minutes per LLaDA-8B program)")
    parser.add_argument("--models", nargs="+", default=[name for name, _, _ in SHAPES],
                        choices=[name for name, _, _ in SHAPES])
    args = parser.parse_args(argv)
    npu = load_npu_config(args.npu)
    print(f"{'model':10s} {'step':9s} {'variant':17s} {'instructions':>14s} {'MACs':>14s} "
          f"{'DRAM read':>14s} {'DRAM write':>14s} {'compile s':>9s}" + (f" {'cycles':>14s}" if args.cycles else ""))
    for model, seq_len, block in (shape for shape in SHAPES if shape[0] in args.models):
        config = load_model_spec(model).architecture
        for step, query in (("refresh", seq_len), ("in-block", block)):
            for label, kv in VARIANTS.items():
                began = time.perf_counter()
                step_program = compile_spec(StepSpec(Shapes(config, npu, seq_len, kv), query, block, "topk"))
                stats, seconds = step_program.stats, time.perf_counter() - began
                cycles = f" {estimate_program(Program(step_program.program), npu).cycles:14,.0f}" if args.cycles else ""
                print(f"{model:10s} {step:9s} {label:17s} {stats['executed_total']:14,d} {stats['macs']:14,d} "
                      f"{stats['dram_read_bytes']:14,d} {stats['dram_write_bytes']:14,d} "
                      f"{seconds:9.1f}{cycles}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
