"""Compile time and program size of full-size dLLM steps.

    .venv/bin/python benchmarks/compile_time.py [--model llada-8b] [--npu dnpu-cloud] [--out results/x.json]

Exports the step graph (npu.ir.export_step) and compiles it (npu.compiler.compile_step) for the
block-refresh pass (cache "none", whole sequence) and the dual-cache in-block step; reports
seconds for each, program words, executed instructions, MACs and DRAM bytes per step.
Goal: a full LLaDA-8B step compiles in under 30 s.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from npu.compiler import CompileError, compile_step
from npu.hw.config import load_npu_config
from npu.ir import export_step
from npu.models.presets import load_model_spec


def measure(model: str, npu_name: str, seq_len: int, block: int) -> list[dict]:
    config = load_model_spec(model).architecture
    npu = load_npu_config(npu_name)
    rows = []
    for kind, mode, query, kv in (("refresh", "none", seq_len, None), ("dual.inblock", "dual", block, seq_len)):
        began = time.perf_counter()
        graph = export_step(config, cache_mode=mode, query_length=query, kv_length=kv,
                            sample_range=(query - block, query) if mode == "none" else (0, block))
        exported = time.perf_counter()
        row = {"model": model, "npu": npu_name, "step": kind, "query_length": query, "seq_len": seq_len,
               "export_s": round(exported - began, 2)}
        try:
            step = compile_step(graph, npu)
        except CompileError as error:
            row["error"] = str(error)
        else:
            s = step.stats
            row.update(compile_s=round(time.perf_counter() - exported, 2), program_words=s["program_words"],
                       executed=s["executed_total"], gmacs=round(s["macs"] / 1e9, 1),
                       dram_read_mb=round(s["dram_read_bytes"] / 1e6, 1),
                       peak_vector_sram_mb=round(s["peak_sram_bytes"]["vector_sram"] / 2**20, 2))
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description="compile time of full-size dLLM steps")
    parser.add_argument("--model", nargs="+", default=["llada-8b"])
    parser.add_argument("--npu", nargs="+", default=["dnpu-cloud"])
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--block", type=int, default=32)
    parser.add_argument("--out")
    args = parser.parse_args()
    rows = [row for model in args.model for npu in args.npu for row in measure(model, npu, args.seq_len, args.block)]
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
