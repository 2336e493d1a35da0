"""Train a tiny preset on the CPU and print the training time and the accuracy per cache mode.

    .venv/bin/python benchmarks/train_tiny.py tiny-sort
    .venv/bin/python benchmarks/train_tiny.py tiny-add --steps 1500 --out results/bench/tiny-add
    .venv/bin/python benchmarks/train_tiny.py tiny-sort --checkpoint results/bench/tiny-sort  # no training

Puzzles (sort, add) are scored by exact match with greedy low-confidence decoding, once per cache
mode (none / prefix / dual) and commit rule (the preset's fixed-k schedule, then each threshold).
Text is scored by validation perplexity. Timings depend on what else runs on the machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import torch

from npu.models.checkpoint import load_checkpoint, save_checkpoint
from npu.models.decoding import CACHE_MODES, DecodeConfig
from npu.models.evaluate import evaluate_exact_match, evaluate_perplexity
from npu.models.presets import load_model_spec
from npu.models.tasks import CharCorpus, get_task
from npu.models.train import TrainConfig, train_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("preset", help="preset name (config/models/<name>.yaml) or path")
    parser.add_argument("--steps", type=int, default=None, help="override training.steps")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for training and evaluation")
    parser.add_argument("--out", default=None, help="write the trained checkpoint to this folder")
    parser.add_argument("--checkpoint", default=None, help="evaluate this checkpoint instead of training")
    parser.add_argument("--n-samples", type=int, default=500, help="prompts per exact-match evaluation")
    parser.add_argument("--thresholds", type=float, nargs="*", default=[0.9], help="Fast-dLLM thresholds")
    parser.add_argument("--n-windows", type=int, default=256, help="validation windows for perplexity")
    args = parser.parse_args(argv)

    spec = load_model_spec(args.preset)
    task = get_task(spec.task)
    torch.set_num_threads(args.threads)
    print(f"preset {spec.name}: task {spec.task}, torch threads {torch.get_num_threads()}")
    if args.checkpoint:
        model, meta = load_checkpoint(args.checkpoint)
        seconds = meta["extra"].get("train", {}).get("seconds")
        print(f"loaded {args.checkpoint} (trained in {seconds:.1f} s)" if seconds else f"loaded {args.checkpoint}")
    else:
        train_config = TrainConfig.from_dict(spec.training)
        overrides = {"num_threads": args.threads}
        if args.steps is not None:
            overrides["steps"] = args.steps
        train_config = dataclasses.replace(train_config, **overrides)
        model, log = train_model(spec.architecture, task, train_config, progress=True)
        print(
            f"trained {model.num_parameters():,} parameters for {train_config.steps} steps x "
            f"{train_config.batch_size} sequences in {log.seconds:.1f} s "
            f"({log.seconds / train_config.steps * 1000:.0f} ms/step); final held-out loss "
            f"{log.eval_losses[-1]:.4f}"
        )
        if args.out:
            extra = {"task": spec.task, "training": dataclasses.asdict(train_config), "train": log.to_dict()}
            save_checkpoint(args.out, model, spec.architecture, extra)
            print(f"checkpoint written to {args.out}")

    if isinstance(task, CharCorpus):
        result = evaluate_perplexity(model, task, n_windows=args.n_windows, n_mask_draws=4)
        print(
            f"validation perplexity {result.perplexity:.3f} per character ({result.bits_per_char:.3f} bits), "
            f"{result.n_windows} windows x {result.n_mask_draws} mask draws, {result.seconds:.1f} s"
        )
        return 0

    if not spec.decoding:
        print(f"preset {spec.name} has no decoding section; nothing to evaluate", file=sys.stderr)
        return 1
    print(f"{'cache':<7} {'rule':<14} {'exact match':>11} {'token acc':>9} {'passes/batch':>12} {'seconds':>8}")
    for cache in CACHE_MODES:
        for threshold in [None, *args.thresholds]:
            config = DecodeConfig(**{**spec.decoding, "cache": cache, "threshold": threshold})
            r = evaluate_exact_match(model, task, config, n_samples=args.n_samples, batch_size=args.n_samples)
            print(
                f"{cache:<7} {r.rule:<14} {r.accuracy:>11.4f} {r.token_accuracy:>9.4f} "
                f"{r.forward_passes:>12} {r.seconds:>8.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
