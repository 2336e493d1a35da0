"""Stage of workflow/rules/export.smk: `export` (one denoising step per cache mode -> graph IR)."""

from __future__ import annotations

import sys
from pathlib import Path

from npu.models.presets import load_model_spec
from npu.stages.common import decode_config, evaluation_prompts, trained_spec


def export_stage(
    preset: str | Path, out_dir: str | Path, checkpoint: str | Path | None = None,
    cache_modes: list[str] = ("none", "prefix", "dual"), query_length: int = 32, kv_length: int = 512,
) -> Path:
    """Export one denoising step per cache mode to `out_dir/step_<mode>.json` and write
    `out_dir/check.tsv`: for trained models the numpy interpreter is compared with PyTorch on a
    real mid-generation state; public-shape models are exported shape-only (query_length
    positions of a block against kv_length slots)."""
    import time

    from npu.io import write_tsv
    from npu.ir import export_step, graph_stats, save_graph
    from npu.models.decoding import query_range

    spec = load_model_spec(preset)
    out_dir = Path(out_dir)
    rows = []
    if checkpoint is None:
        for mode in cache_modes:
            start = time.perf_counter()
            # A prompt of kv_length/2 and a step after the refresh of the first block after it:
            # the prefix cache recomputes block + suffix, the dual cache only the block.
            block_start = kv_length // 2
            first, end = query_range(mode, 1, block_start, block_start + query_length, kv_length)
            query, sample_start = end - first, block_start - first
            graph = export_step(spec.architecture, cache_mode=mode, query_length=query,
                                kv_length=kv_length if mode != "none" else None,
                                sample_range=(sample_start, sample_start + query_length))
            stats = graph_stats(graph)
            save_graph(graph, out_dir / f"step_{mode}.json")
            rows.append({"model": spec.name, "cache": mode, "query_length": query, "kv_length": kv_length,
                         "nodes": len(graph.nodes), "params": stats.params, "macs": stats.macs,
                         "export_seconds": time.perf_counter() - start, "weights": "shape-only",
                         "logits_max_rel_error": float("nan"), "cache_max_rel_error": float("nan"),
                         "tokens_match": "n/a"})
        return write_tsv(out_dir / "check.tsv", rows)

    from npu.ir.verify import check_step, step_state
    from npu.models.checkpoint import load_checkpoint
    from npu.models.decoding import generate
    from npu.models.tasks import get_task

    spec = trained_spec(preset)
    model, _ = load_checkpoint(checkpoint)
    # The fixed-k schedule (one token per step): under a preset's threshold rule a confident model
    # may commit a whole block in one step, leaving no [MASK] position to export a step for.
    decode = decode_config(spec, cache="none", threshold=None)
    prompt = evaluation_prompts(get_task(spec.task), decode.gen_length, n=1, seed=0)
    # The state after the first step of the second block (or the only block): some positions of
    # the block already committed, the rest still [MASK].
    records = generate(model, prompt, decode, record=True).records
    block_index = min(1, decode.num_blocks - 1)
    record = next(r for r in records if r.block == block_index)
    block_start = prompt.shape[1] + block_index * decode.block_length
    block = (block_start, block_start + decode.block_length)
    for mode in cache_modes:
        start = time.perf_counter()
        state = step_state(model, record.tokens, block, mode)
        graph, check = check_step(model, state, mode, k=1)
        stats = graph_stats(graph)
        save_graph(graph, out_dir / f"step_{mode}.json")
        rows.append({"model": spec.name, "cache": mode, "query_length": state.query[1] - state.query[0],
                     "kv_length": record.tokens.shape[1], "nodes": len(graph.nodes), "params": stats.params,
                     "macs": stats.macs, "export_seconds": time.perf_counter() - start, "weights": "trained",
                     "logits_max_rel_error": check.logits_max_rel_error,
                     "cache_max_rel_error": check.cache_max_rel_error,
                     "tokens_match": "yes" if check.passed else "NO"})
        print(f"export {spec.name}: cache={mode}: logits max rel error {check.logits_max_rel_error:.2e}, "
              f"tokens {'match' if check.passed else 'DIFFER'}", file=sys.stderr)
        if not check.passed:
            raise RuntimeError(f"export {spec.name} cache={mode}: the IR interpreter's sampled tokens differ from PyTorch")
    return write_tsv(out_dir / "check.tsv", rows)
