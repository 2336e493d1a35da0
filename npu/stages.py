"""The pipeline's stages as plain functions: each Snakemake rule runs exactly one of these.

They only read presets, call into the package and write artifacts atomically, so every stage
can be run and tested without Snakemake (`npu <stage> ...`).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from npu.config import ConfigError
from npu.models.presets import ModelSpec, load_model_spec


def _trained_spec(preset: str | Path) -> ModelSpec:
    spec = load_model_spec(preset)
    if not spec.trainable:
        raise ConfigError(f"{spec.source}: model {spec.name!r} has no 'task'/'training' section, so it cannot be trained")
    return spec


def train_stage(preset: str | Path, out_dir: str | Path, threads: int = 2, steps: int | None = None) -> Path:
    """Train a tiny preset on its task and write `out_dir/{model.safetensors,meta.json}`."""
    from npu.models.checkpoint import save_checkpoint
    from npu.models.tasks import get_task
    from npu.models.train import TrainConfig, train_model

    spec = _trained_spec(preset)
    where = f"{spec.source}: training"
    try:
        train_config = TrainConfig.from_dict(spec.training, where=where)
        task = get_task(spec.task)
    except ValueError as exc:
        raise ConfigError(f"{spec.source}: {exc}") from None
    overrides = {"num_threads": threads} | ({"steps": steps} if steps is not None else {})
    train_config = dataclasses.replace(train_config, **overrides)
    print(f"train {spec.name}: {spec.architecture.n_layers} layers, d_model {spec.architecture.d_model}, "
          f"{train_config.steps} steps on {threads} threads", file=sys.stderr)
    model, log = train_model(spec.architecture, task, train_config, progress=True)
    extra = {"preset": spec.raw, "training": dataclasses.asdict(train_config), "log": log.to_dict()}
    return save_checkpoint(out_dir, model, spec.architecture, extra)


def _decode_config(spec: ModelSpec, **overrides):
    from npu.models.decoding import DecodeConfig

    if spec.decoding is None:
        raise ConfigError(f"{spec.source}: model {spec.name!r} has no 'decoding' section")
    try:
        return DecodeConfig(**(spec.decoding | overrides))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{spec.source}: key 'decoding': {exc}") from None


def evaluation_prompts(task, gen_length: int, n: int, seed: int):
    """Prompts for generation: a task's own prompts, or for a text corpus the start of
    validation windows with the rest (gen_length characters) left to generate."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    if hasattr(task, "prompt_length"):
        prompts, _ = task.sample(n, generator)
        return prompts
    windows = task.sample_windows(n, task.window_length, generator, split="validation")
    return windows[:, : task.window_length - gen_length]


def evaluate_stage(
    preset: str | Path, checkpoint: str | Path, out: str | Path, n_samples: int = 200,
    cache_modes: list[str] = ("none", "prefix", "dual"), thresholds: list[float] = (0.9,), threads: int = 2,
) -> Path:
    """Accuracy table of a trained model: exact match per cache mode and selection rule, or
    validation perplexity for a text corpus (one row; caches do not enter a perplexity bound)."""
    import torch

    from npu.io import write_tsv
    from npu.models.checkpoint import load_checkpoint
    from npu.models.evaluate import evaluate_exact_match, evaluate_perplexity
    from npu.models.tasks import get_task

    spec = _trained_spec(preset)
    torch.set_num_threads(threads)
    model, _ = load_checkpoint(checkpoint)
    task = get_task(spec.task)
    rows = []
    if not hasattr(task, "prompt_length"):
        result = evaluate_perplexity(model, task, n_windows=max(8, n_samples // 4))
        rows.append({"model": spec.name, "task": task.name, "cache": "none", "rule": "-",
                     "metric": "perplexity", "value": result.perplexity, "n": result.n_windows,
                     "token_accuracy": float("nan"), "forward_passes": 0, "seconds": result.seconds})
    for cache in cache_modes if hasattr(task, "prompt_length") else ():
        for threshold in [None, *thresholds]:
            config = _decode_config(spec, cache=cache, threshold=threshold)
            result = evaluate_exact_match(model, task, config, n_samples=n_samples, seed=1234)
            rows.append({"model": spec.name, "task": task.name, "cache": cache, "rule": result.rule,
                         "metric": "exact_match", "value": result.accuracy, "n": result.n_samples,
                         "token_accuracy": result.token_accuracy, "forward_passes": result.forward_passes,
                         "seconds": result.seconds})
            print(f"evaluate {spec.name}: cache={cache} {result.rule}: exact match {result.accuracy:.3f}", file=sys.stderr)
    return write_tsv(out, rows)


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

    spec = _trained_spec(preset)
    model, _ = load_checkpoint(checkpoint)
    # The fixed-k schedule (one token per step): under a preset's threshold rule a confident model
    # may commit a whole block in one step, leaving no [MASK] position to export a step for.
    decode = _decode_config(spec, cache="none", threshold=None)
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
