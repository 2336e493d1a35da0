"""Train tiny presets on the CPU and print, per model, the training time and the exact match per
cache mode and commit rule (the training part of the pipeline, issue 19 item 4).

    .venv/bin/python benchmarks/train_tiny.py                       # the four default models
    .venv/bin/python benchmarks/train_tiny.py tiny-sort-seed2       # a preset trained from another seed
    .venv/bin/python benchmarks/train_tiny.py tiny-add --steps 1500 --out results/bench/tiny-add
    .venv/bin/python benchmarks/train_tiny.py tiny-sort --checkpoint results/bench/tiny-sort  # no training

Training runs the preset's recipe (early stopping included) on --threads torch threads, the
pipeline's setting (one thread per job, two jobs side by side on 2 cores). Puzzles (sort, add) are
scored by exact match with greedy low-confidence decoding in every cache mode (none / prefix /
dual) and commit rule (the preset's fixed-k schedule, then each threshold), on prompts drawn as
the evaluate stage draws them; text by validation perplexity. Wall time depends on what else runs
on the machine; CPU time (process time) less so.
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

DEFAULT_PRESETS = ["tiny-sort", "tiny-sort-seed1", "tiny-add", "tiny-text"]  # the default pipeline's trainings


def bench_one(name: str, args) -> dict:
    """Train (or load) one preset, print its accuracy table, return its summary row."""
    spec = load_model_spec(name)
    task = get_task(spec.task)
    torch.set_num_threads(args.threads)
    print(f"== preset {spec.name}: task {spec.task}, torch threads {torch.get_num_threads()}")
    row = {"model": spec.name, "threads": args.threads}
    if args.checkpoint:
        model, meta = load_checkpoint(args.checkpoint)
        log = meta["extra"].get("log", {})
        row |= {"steps": log.get("steps"), "stopped_at": log.get("stopped_at_step"),
                "wall_s": log.get("seconds"), "cpu_s": log.get("cpu_seconds")}
        print(f"loaded {args.checkpoint}")
    else:
        train_config = TrainConfig.from_dict(spec.training)
        overrides = {"num_threads": args.threads} | ({"steps": args.steps} if args.steps is not None else {})
        train_config = dataclasses.replace(train_config, **overrides)
        decoding = DecodeConfig(**spec.decoding) if train_config.stop_exact_match > 0 else None
        model, log = train_model(spec.architecture, task, train_config, progress=True, decoding=decoding)
        steps = len(log.losses)
        row |= {"steps": steps, "stopped_at": log.stopped_at_step, "wall_s": log.seconds, "cpu_s": log.cpu_seconds}
        print(f"trained {model.num_parameters():,} parameters for {steps} of at most {train_config.steps} steps x "
              f"{train_config.batch_size} sequences in {log.seconds:.1f} s wall, {log.cpu_seconds:.1f} s CPU "
              f"({log.seconds / steps * 1000:.0f} ms/step); final held-out loss {log.eval_losses[-1]:.4f}")
        if args.out:
            extra = {"preset": spec.raw, "training": dataclasses.asdict(train_config), "log": log.to_dict()}
            save_checkpoint(args.out, model, spec.architecture, extra)
            print(f"checkpoint written to {args.out}")

    if isinstance(task, CharCorpus):
        result = evaluate_perplexity(model, task, n_windows=args.n_windows, n_mask_draws=4)
        print(f"validation perplexity {result.perplexity:.3f} per character ({result.bits_per_char:.3f} bits), "
              f"{result.n_windows} windows x {result.n_mask_draws} mask draws, {result.seconds:.1f} s")
        return row | {"worst_exact_match": float("nan")}
    if not spec.decoding:
        raise SystemExit(f"preset {spec.name} has no decoding section; nothing to evaluate")
    print(f"{'cache':<7} {'rule':<14} {'exact match':>11} {'token acc':>9} {'passes/batch':>12} {'seconds':>8}")
    worst = 1.0
    for cache in CACHE_MODES:
        for threshold in [None, *args.thresholds]:
            config = DecodeConfig(**{**spec.decoding, "cache": cache, "threshold": threshold})
            r = evaluate_exact_match(model, task, config, n_samples=args.n_samples, seed=1234)
            worst = min(worst, r.accuracy)
            print(f"{cache:<7} {r.rule:<14} {r.accuracy:>11.4f} {r.token_accuracy:>9.4f} "
                  f"{r.forward_passes:>12} {r.seconds:>8.2f}")
    return row | {"worst_exact_match": worst}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("presets", nargs="*", default=DEFAULT_PRESETS,
                        help=f"preset names (config/models/<name>.yaml, or <name>-seed<n>) or paths; "
                             f"default {' '.join(DEFAULT_PRESETS)}")
    parser.add_argument("--steps", type=int, default=None, help="override training.steps")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for training and evaluation")
    parser.add_argument("--out", default=None, help="write the trained checkpoint to this folder (one preset)")
    parser.add_argument("--checkpoint", default=None, help="evaluate this checkpoint instead of training (one preset)")
    parser.add_argument("--n-samples", type=int, default=512, help="prompts per exact-match evaluation")
    parser.add_argument("--thresholds", type=float, nargs="*", default=[0.9], help="Fast-dLLM thresholds")
    parser.add_argument("--n-windows", type=int, default=256, help="validation windows for perplexity")
    args = parser.parse_args(argv)
    if (args.out or args.checkpoint) and len(args.presets) != 1:
        parser.error("--out and --checkpoint take one preset")

    rows = [bench_one(name, args) for name in args.presets]
    print(f"\n{'model':<16} {'threads':>7} {'steps':>6} {'stopped at':>10} {'wall s':>8} {'CPU s':>8} "
          f"{'worst exact match':>17}")
    for row in rows:
        fmt = lambda value, spec: "-" if value is None else format(value, spec)  # noqa: E731
        print(f"{row['model']:<16} {row['threads']:>7} {fmt(row['steps'], 'd'):>6} {fmt(row['stopped_at'], 'd'):>10} "
              f"{fmt(row['wall_s'], '.1f'):>8} {fmt(row['cpu_s'], '.1f'):>8} {row['worst_exact_match']:>17.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
