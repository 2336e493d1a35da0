"""BAOS's selection criterion and its "no smoothing" candidate against the plain formats.

    nice -n 19 .venv/bin/python benchmarks/baos_criterion.py --out results/kv/criterion \\
        --checkpoint tiny-sort=results/models/tiny-sort --checkpoint tiny-add=results/models/tiny-add \\
        --outliers tiny-sort --prompts 64 --bits 4 3

Per model (dual cache, each model's decoding recipe, the dnpu-cloud arithmetic) and bit width it
decodes the same seeded prompts with: bf16; plain INT and BAOS-INT with the old criterion
('attention': key error weighted by mean q^2) and the new one ('output': attention-output error
of the block's queries, "no smoothing" among the candidates); plain MXINT and BAOS-MXINT with the
old criterion without and with the "no smoothing" candidate and with the new criterion; the same
MX cells with the no-clip MX scale rule. Exact match with its binomial ci95, and for the
questions asked - is BAOS below its plain format, does the new criterion beat the old - the
paired difference on the same prompts with its 95 % interval (normal approximation of the
per-prompt differences). Writes criterion.tsv / criterion.md to --out and prints each cell.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from npu.io import atomic_write_text, write_tsv
from npu.quant.accuracy import exact_match
from npu.quant.methods import make_cache_factory
from npu.stages.quantize import model_sources
from npu.quant.experiments import load_model_under_test

OLD = {"criterion": "attention", "plain_candidate": False}
NEW = {"criterion": "output", "plain_candidate": True}
# label -> (method, options); the INT layout's alpha 0 has no shift, so it is the plain format already
VARIANTS: dict[str, tuple[str, dict]] = {
    "int": ("int", {}),
    "baos-int old": ("baos-int", OLD),
    "baos-int new": ("baos-int", NEW),
    "mxint": ("mxint", {}),
    "baos-mxint old": ("baos-mxint", OLD),
    "baos-mxint old+plain": ("baos-mxint", {"criterion": "attention", "plain_candidate": True}),
    "baos-mxint new": ("baos-mxint", NEW),
    "mxint no-clip": ("mxint", {"mx_scale": "no_clip"}),
    "baos-mxint new no-clip": ("baos-mxint", NEW | {"mx_scale": "no_clip"}),
}
# (variant, reference): paired differences reported
COMPARISONS = (
    ("baos-int new", "int"), ("baos-int new", "baos-int old"), ("baos-int old", "int"),
    ("baos-mxint new", "mxint"), ("baos-mxint new", "baos-mxint old"), ("baos-mxint old", "mxint"),
    ("baos-mxint old+plain", "baos-mxint old"), ("baos-mxint new no-clip", "mxint no-clip"),
    ("mxint no-clip", "mxint"),
)


def paired_interval(a: list[bool], b: list[bool]) -> tuple[float, float]:
    """Mean of a_i - b_i (in points) and the half-width of its 95 % interval."""
    d = [float(x) - float(y) for x, y in zip(a, b, strict=True)]
    n = len(d)
    mean = sum(d) / n
    var = sum((x - mean) ** 2 for x in d) / max(n - 1, 1)
    return 100 * mean, 100 * 1.96 * math.sqrt(var / n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", action="append", default=[], help="LABEL=PATH of a trained task checkpoint")
    parser.add_argument("--outliers", action="append", default=[], help="also evaluate LABEL with outlier channels")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--bits", nargs="*", type=int, default=[4])
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--npu", default="dnpu-cloud")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    sources = model_sources(args.checkpoint, args.outliers)
    rows, comparisons, started = [], [], time.perf_counter()
    for label, source in sources.items():
        entry = load_model_under_test(source, args.npu)
        if entry.decode is None:
            raise SystemExit(f"{label}: not a task model (exact match needs a task)")
        decode = replace(entry.decode, cache="dual")

        def run(method: str, bits: int, options: dict) -> dict:
            began = time.perf_counter()
            factory = make_cache_factory(method, bits, decode=decode, **options)
            result = exact_match(entry.model, entry.task, decode, factory, args.prompts, args.seed, args.prompts)
            result["seconds"] = time.perf_counter() - began
            return result

        bf16 = run("bf16", 16, {})
        rows.append({"model": label, "bits": 16, "variant": "bf16", "exact_match": 100 * bf16["exact_match"],
                     "ci95": 100 * 1.96 * math.sqrt(bf16["exact_match"] * (1 - bf16["exact_match"]) / args.prompts),
                     "token_accuracy": 100 * bf16["token_accuracy"], "n": args.prompts, "seconds": bf16["seconds"]})
        print(f"{label:20s} bf16 {rows[-1]['exact_match']:.1f}", file=sys.stderr, flush=True)
        for bits in args.bits:
            results = {}
            for name in args.variants:
                method, options = VARIANTS[name]
                results[name] = r = run(method, bits, options)
                p = r["exact_match"]
                rows.append({"model": label, "bits": bits, "variant": name, "exact_match": 100 * p,
                             "ci95": 100 * 1.96 * math.sqrt(p * (1 - p) / args.prompts),
                             "token_accuracy": 100 * r["token_accuracy"], "n": args.prompts, "seconds": r["seconds"]})
                print(f"{label:20s} {bits} {name:24s} {100 * p:5.1f}  ({r['seconds']:.0f} s)", file=sys.stderr, flush=True)
            for a, b in COMPARISONS:
                if a in results and b in results:
                    mean, half = paired_interval(results[a]["correct"], results[b]["correct"])
                    comparisons.append({"model": label, "bits": bits, "variant": a, "reference": b,
                                        "difference": mean, "ci95": half,
                                        "significant": abs(mean) > half})
    args.out.mkdir(parents=True, exist_ok=True)
    write_tsv(args.out / "criterion.tsv", rows)
    write_tsv(args.out / "criterion_paired.tsv", comparisons)
    atomic_write_text(args.out / "criterion.md", markdown(rows, comparisons))
    print(f"done in {time.perf_counter() - started:.0f} s; outputs in {args.out}", file=sys.stderr)
    return 0


def markdown(rows: list[dict], comparisons: list[dict]) -> str:
    """One table of exact match (ci95) per model x bits, and one of the paired differences."""
    columns = list(dict.fromkeys((r["model"], r["bits"]) for r in rows if r["bits"] != 16))
    variants = list(dict.fromkeys(r["variant"] for r in rows if r["bits"] != 16))
    cell = {(r["model"], r["bits"], r["variant"]): r for r in rows}
    bf16 = {r["model"]: r for r in rows if r["bits"] == 16}
    out = ["| variant | " + " | ".join(f"{m} {b}-bit" for m, b in columns) + " |",
           "|---|" + "---|" * len(columns),
           "| bf16 | " + " | ".join(f"{bf16[m]['exact_match']:.1f} +-{bf16[m]['ci95']:.1f}" for m, _ in columns) + " |"]
    for v in variants:
        cells = [cell.get((m, b, v)) for m, b in columns]
        out.append(f"| {v} | " + " | ".join("" if c is None else f"{c['exact_match']:.1f} +-{c['ci95']:.1f}"
                                            for c in cells) + " |")
    out += ["", "| paired difference (points) | " + " | ".join(f"{m} {b}-bit" for m, b in columns) + " |",
            "|---|" + "---|" * len(columns)]
    pairs = list(dict.fromkeys((c["variant"], c["reference"]) for c in comparisons))
    diff = {(c["model"], c["bits"], c["variant"], c["reference"]): c for c in comparisons}
    for a, b in pairs:
        cells = [diff.get((m, bits, a, b)) for m, bits in columns]
        out.append(f"| {a} - {b} | " + " | ".join(
            "" if c is None else f"{c['difference']:+.1f} +-{c['ci95']:.1f}{' *' if c['significant'] else ''}"
            for c in cells) + " |")
    out.append("\n(+-: 95 % interval; * : the interval excludes 0)")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
