"""`npu <stage>`: one subcommand per pipeline stage, each a thin call into `npu.stages`.

Errors a user can fix (bad config, missing checkpoint, bad assembly...) are printed as one clear
message and exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from npu.config import ConfigError

CACHE_MODES = ["none", "prefix", "dual"]


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a tiny model preset and write its checkpoint")
    p.add_argument("--preset", required=True, help="model preset name or YAML path")
    p.add_argument("--out", required=True, type=Path, help="checkpoint folder to write")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=None, help="override training.steps (quick runs)")


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="accuracy of a trained model per cache mode")
    p.add_argument("--preset", required=True)
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path, help="TSV table to write")
    p.add_argument("--n-samples", type=int, default=200)
    p.add_argument("--cache-modes", nargs="+", choices=CACHE_MODES, default=CACHE_MODES)
    p.add_argument("--thresholds", nargs="*", type=float, default=[0.9])
    p.add_argument("--threads", type=int, default=2)


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="export one denoising step per cache mode to the graph IR")
    p.add_argument("--preset", required=True)
    p.add_argument("--checkpoint", type=Path, default=None, help="trained weights (omit: shape-only)")
    p.add_argument("--out-dir", required=True, type=Path)
    p.add_argument("--cache-modes", nargs="+", choices=CACHE_MODES, default=CACHE_MODES)
    p.add_argument("--query-length", type=int, default=32, help="in-block step length (shape-only models)")
    p.add_argument("--kv-length", type=int, default=512, help="sequence length (shape-only models)")


def _add_compile(sub) -> None:
    p = sub.add_parser("compile", help="compile the exported step graphs of a model for one NPU preset")
    p.add_argument("--npu", required=True, help="NPU preset name or YAML path")
    p.add_argument("--ir-dir", required=True, type=Path, help="folder with step_<mode>.json graphs")
    p.add_argument("--out-dir", required=True, type=Path)


def _add_simulate_analytical(sub) -> None:
    p = sub.add_parser("simulate-analytical", help="closed-form latency/energy of whole generations")
    p.add_argument("--npu", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True, type=Path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="npu", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="stage", required=True)
    _add_train(sub)
    _add_evaluate(sub)
    _add_export(sub)
    _add_compile(sub)
    _add_simulate_analytical(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from npu import stages  # imported late: `npu --help` stays fast

    try:
        if args.stage == "train":
            stages.train_stage(args.preset, args.out, threads=args.threads, steps=args.steps)
        elif args.stage == "evaluate":
            stages.evaluate_stage(
                args.preset, args.checkpoint, args.out, n_samples=args.n_samples,
                cache_modes=args.cache_modes, thresholds=args.thresholds, threads=args.threads,
            )
        elif args.stage == "export":
            stages.export_stage(
                args.preset, args.out_dir, checkpoint=args.checkpoint, cache_modes=args.cache_modes,
                query_length=args.query_length, kv_length=args.kv_length,
            )
        elif args.stage == "compile":
            stages.compile_stage(args.npu, args.ir_dir, args.out_dir)
        elif args.stage == "simulate-analytical":
            from npu.sim.analytical.stages import simulate_analytical

            simulate_analytical(args.npu, args.model, args.out)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"npu {args.stage}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
