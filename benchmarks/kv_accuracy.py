"""KV-cache quantization accuracy on trained tiny models: the grid, the BAOS ablation, the K/V analysis.

    .venv/bin/python benchmarks/kv_accuracy.py --out results/kv \\
        --checkpoint sort-s0=results/models/tiny-sort --checkpoint add=results/models/tiny-add \\
        --checkpoint text=results/models/tiny-text --outliers sort-s0 --outliers text --ablation sort-s0

Every model runs in the dnpu-cloud arithmetic (MXFP8 weights, bf16 activations). `--outliers L`
adds a copy of checkpoint L with LLM-like K/V outlier channels (npu.quant.outliers; the logits do
not change). Writes accuracy.tsv / accuracy.json / accuracy.md (accuracy.jsonl journals finished rows, so a
rerun resumes an interrupted grid), ablation*.tsv, kv_stats.tsv and
kv_drift.png into --out, and prints each row as it finishes. Timings depend on the machine's load.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from npu.io import atomic_write_text
from npu.quant.accuracy import DEFAULT_BITS, DEFAULT_CACHE_MODES, DEFAULT_METHODS, SampleSizes, accuracy_markdown
from npu.stages.quantize import ablation_stage, accuracy_stage, kv_analysis_stage, model_sources


def _print_row(row: dict) -> None:
    value = "n/a" if row["value"] is None else f"{row['value']:.4f}"
    variant = f"{row['variant']:48s} " if "variant" in row else ""
    print(f"{variant}{row['model']:18s} {row['cache']:6s} {row['method']:15s} {row['bits']:2d}  {value}"
          f"  ({row['seconds']:.1f}s)", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", action="append", default=[], help="LABEL=PATH of a trained checkpoint")
    parser.add_argument("--outliers", action="append", default=[], help="also evaluate LABEL with outlier channels")
    parser.add_argument("--ablation", action="append", default=[], help="run the BAOS ablation on LABEL (or LABEL+outliers)")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--methods", nargs="*", default=list(DEFAULT_METHODS))
    parser.add_argument("--bits", nargs="*", type=int, default=list(DEFAULT_BITS))
    parser.add_argument("--cache-modes", nargs="*", default=list(DEFAULT_CACHE_MODES))
    parser.add_argument("--prompts", type=int, default=SampleSizes().exact_match_prompts, help="prompts per exact-match row")
    parser.add_argument("--skip-grid", action="store_true")
    parser.add_argument("--skip-analysis", action="store_true")
    parser.add_argument("--window", choices=("block", "none"), default="block",
                        help="block window of every method (none: quantize every write; outputs get a _nowindow suffix)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--npu", default="dnpu-cloud", help="NPU preset whose number formats the model uses")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    try:
        sources = model_sources(args.checkpoint, args.outliers)
    except ValueError as error:
        raise SystemExit(f"kv_accuracy: {error}") from None
    sizes = SampleSizes(exact_match_prompts=args.prompts, batch_size=min(args.prompts, 250))
    started = time.perf_counter()

    if not args.skip_grid and sources:
        suffix = "" if args.window == "block" else "_nowindow"
        options = {m: {"window": args.window} for m in args.methods}
        args.out.mkdir(parents=True, exist_ok=True)
        rows = accuracy_stage(list(sources.values()), args.out / f"accuracy{suffix}.tsv",
                              args.out / f"accuracy{suffix}.json", args.npu, tuple(args.methods), tuple(args.bits),
                              tuple(args.cache_modes), sizes, method_options=options, log=_print_row,
                              journal=args.out / f"accuracy{suffix}.jsonl")
        atomic_write_text(args.out / f"accuracy{suffix}.md", accuracy_markdown(rows))
    for label in args.ablation:
        if label not in sources:
            raise SystemExit(f"--ablation names unknown label {label!r}; known: {sorted(sources)}")
        safe = label.replace("+", "_")
        args.out.mkdir(parents=True, exist_ok=True)
        ablation_stage(sources[label], args.out / f"ablation_{safe}.tsv", bits=tuple(b for b in args.bits if b != 16),
                       cache=args.cache_modes[-1], npu_config=args.npu, sizes=sizes, log=_print_row,
                       journal=args.out / f"ablation_{safe}.jsonl")
    if not args.skip_analysis and sources:
        kv_analysis_stage(list(sources.values()), args.out / "kv_stats.tsv", args.out / "kv_drift.png",
                          npu_config=args.npu)
    print(f"done in {time.perf_counter() - started:.0f} s; outputs in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
