"""SHA-256 fingerprints of the deterministic artifacts of the hardware stages, for refactors that
must not change results.

Runs the `npu` commands of the pipeline (briefly trained tiny models, shape-only LLaDA-8B and
Dream-7B) into a scratch folder and prints one line per artifact: its SHA-256 and its path. TSV
columns that hold wall-clock times are dropped before hashing. Run it before and after a change
and diff the two outputs:

    python benchmarks/result_fingerprint.py --work /tmp/fp-before > before.txt
    python benchmarks/result_fingerprint.py --work /tmp/fp-after  > after.txt
    diff before.txt after.txt
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import subprocess
import sys
import time
from pathlib import Path

TRAINED = ("tiny-sort", "tiny-add", "tiny-text")
SHAPE_ONLY = ("llada-8b", "dream-7b")
NPUS = ("dnpu-cloud", "dnpu-edge", "ar-npu")
VOLATILE = ("seconds", "per_s", "per_cpu", "wall")  # wall-clock columns


def npu(*args: str) -> None:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "npu.cli", *args], check=True, stderr=subprocess.DEVNULL)
    print(f"# {time.perf_counter() - start:6.1f} s  npu {' '.join(args[:1])} {' '.join(a for a in args[1:] if not a.startswith('/'))}",
          file=sys.stderr)


def digest(path: Path) -> str:
    if path.suffix != ".tsv":
        return hashlib.sha256(path.read_bytes()).hexdigest()
    with path.open() as f:
        rows = list(csv.reader(f, delimiter="\t"))
    keep = [i for i, name in enumerate(rows[0]) if not any(v in name for v in VOLATILE)] if rows else []
    text = "\n".join("\t".join(row[i] for i in keep if i < len(row)) for row in rows)
    return hashlib.sha256(text.encode()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="scratch folder (created)")
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="skip the cycle simulation of LLaDA/Dream steps")
    args = parser.parse_args()
    work = args.work.resolve()
    for model in TRAINED:
        ckpt = work / "models" / model / "checkpoint"
        if not (ckpt / "model.safetensors").exists():
            npu("train", "--preset", model, "--out", str(ckpt), "--steps", str(args.train_steps))
        npu("export", "--preset", model, "--checkpoint", str(ckpt), "--out-dir", str(work / "models" / model / "ir"))
    for model in SHAPE_ONLY:
        npu("export", "--preset", model, "--out-dir", str(work / "models" / model / "ir"), "--query-length", "32",
            "--kv-length", "512")
    for machine in NPUS:
        for model in TRAINED + SHAPE_ONLY:
            out = work / machine / model
            npu("compile", "--npu", machine, "--ir-dir", str(work / "models" / model / "ir"), "--out-dir", str(out))
            npu("simulate-analytical", "--npu", machine, "--model", model, "--out", str(out / "analytical.tsv"))
            if args.quick and model in SHAPE_ONLY:
                continue
            npu("simulate-cycle", "--npu", machine, "--model", model, "--compile-dir", str(out),
                "--out", str(out / "cycle.tsv"), "--generation-out", str(out / "cycle_generation.tsv"))
            npu("crossvalidate", "--npu", machine, "--compile-dir", str(out), "--out", str(out / "crossval.tsv"))
    npu("gpu-baselines", "--models", *SHAPE_ONLY, "--out-dir", str(work / "gpu"))
    npu("kv-traffic", "--npu", "dnpu-cloud", "--models", "tiny-sort", "tiny-add", "--methods", "int", "kivi",
        "baos-int", "mxint", "baos-mxint", "--bits", "16", "4", "2", "--out", str(work / "kv" / "traffic.tsv"))
    for path in sorted(work.rglob("*")):
        if path.is_file() and path.suffix in (".bin", ".s", ".json", ".tsv") and "checkpoint" not in path.parts:
            print(digest(path), path.relative_to(work))


if __name__ == "__main__":
    main()
