"""Stage of workflow/rules/compile.smk: `compile` (step graphs -> NPU programs for one preset)."""

from __future__ import annotations

import sys
from pathlib import Path


STEP_KINDS = {"none": "refresh", "prefix": "prefix_inblock", "dual": "dual_inblock"}


def compile_stage(npu: str | Path, ir_dir: str | Path, out_dir: str | Path) -> Path:
    """Compile every exported step graph in `ir_dir` (step_<mode>.json) for one NPU preset.

    Writes `<kind>.bin/.s/.dram_map.json/.stats.json` per step program and `compile.tsv`, one row
    per program. The cache mode "none" graph is the full-sequence pass, which is also every
    cached mode's block refresh. A model the preset cannot hold gets a row naming the violated
    constraint instead of a program, so a sweep over presets always completes.
    """
    import time

    from npu.compiler import CompileError, compile_step, write_artifacts
    from npu.hw.config import load_npu_config
    from npu.io import write_tsv
    from npu.ir import load_graph

    npu_config = load_npu_config(npu)
    graphs = sorted(Path(ir_dir).glob("step_*.json"))
    if not graphs:
        raise FileNotFoundError(f"{ir_dir}: no step_<mode>.json graphs to compile (run the export stage first)")
    rows = []
    for path in graphs:
        mode = path.stem.removeprefix("step_")
        graph = load_graph(path)
        start = time.perf_counter()
        row = {"npu": npu_config.name, "model": graph.metadata["model"]["name"], "step": STEP_KINDS.get(mode, mode),
               "query_length": graph.metadata["query_length"], "status": "ok", "compile_seconds": 0.0,
               "program_words": 0, "executed_instructions": 0, "macs": 0, "dram_read_bytes": 0,
               "dram_write_bytes": 0, "weight_bytes": 0, "peak_vector_sram_bytes": 0, "error": ""}
        try:
            step = compile_step(graph, npu_config)
        except CompileError as error:
            row.update(status="does-not-fit", error=str(error))
            print(f"compile {npu_config.name} {path.name}: {error}", file=sys.stderr)
        else:
            write_artifacts(step, out_dir, row["step"])
            s = step.stats
            row.update(compile_seconds=time.perf_counter() - start, program_words=s["program_words"],
                       executed_instructions=s["executed_total"], macs=s["macs"],
                       dram_read_bytes=s["dram_read_bytes"], dram_write_bytes=s["dram_write_bytes"],
                       weight_bytes=s["weight_bytes"], peak_vector_sram_bytes=s["peak_sram_bytes"]["vector_sram"])
        rows.append(row)
    return write_tsv(Path(out_dir) / "compile.tsv", rows)
