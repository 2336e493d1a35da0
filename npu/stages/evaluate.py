"""Stage of workflow/rules/evaluate.smk: `evaluate` (accuracy of a trained model per cache mode)."""

from __future__ import annotations

import sys
from pathlib import Path

from npu.stages.common import decode_config, trained_spec


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

    spec = trained_spec(preset)
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
            config = decode_config(spec, cache=cache, threshold=threshold)
            result = evaluate_exact_match(model, task, config, n_samples=n_samples, seed=1234)
            rows.append({"model": spec.name, "task": task.name, "cache": cache, "rule": result.rule,
                         "metric": "exact_match", "value": result.accuracy, "n": result.n_samples,
                         "token_accuracy": result.token_accuracy, "forward_passes": result.forward_passes,
                         "seconds": result.seconds})
            print(f"evaluate {spec.name}: cache={cache} {result.rule}: exact match {result.accuracy:.3f}", file=sys.stderr)
    return write_tsv(out, rows)
