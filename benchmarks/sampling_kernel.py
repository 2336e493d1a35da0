"""Sampling-kernel figures on the functional simulator.

Usage: python benchmarks/sampling_kernel.py [--vocab 126464] [--presets dnpu-cloud ar-npu dnpu-edge]
       [--long-block 128] [--long-presets dnpu-cloud ar-npu]

Prints
1. simulator speed (executed instructions per wall second) on every kernel of npu.kernels;
2. one full sampling pass of a 32-position block (argmax + confidence over the vocabulary, top-k
   commit) per preset: wall time, executed instructions, instructions by unit, DRAM bytes and
   DRAM reads per logit (1.0 = the logits cross the DRAM interface once);
3. the same for a --long-block block (threshold rule), executed instruction count.
Inputs are seeded random numbers; every figure is measured, none is asserted.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from npu.hw import numerics
from npu.hw.config import load_npu_config
from npu.kernels.dense import run_gemm, run_rmsnorm, run_softmax
from npu.kernels.layout import KernelRun
from npu.kernels.sampling import run_sampling_pass, run_token_confidence
from npu.models.decoding import gumbel_noise

LLADA_VOCAB, LLADA_MASK = 126464, 126336


def bf16(x: np.ndarray) -> np.ndarray:
    return numerics.round_to_format(np.asarray(x, dtype=np.float32), "bf16")


def speed_line(preset: str, run: KernelRun) -> str:
    rate = run.instructions / run.wall_seconds
    return (f"{preset:11s} {run.name:26s} {run.instructions:>10,d} instr  {run.wall_seconds:8.3f} s  "
            f"{rate:>10,.0f} instr/s")


def simulator_speed(presets: list[str]) -> None:
    print("== functional simulator speed per kernel ==")
    rng = np.random.default_rng(0)
    for preset in presets:
        config = load_npu_config(preset)
        x = bf16(rng.standard_normal((2 * config.blen, 4 * config.mlen)))
        w = rng.standard_normal((4 * config.mlen, 2 * config.mlen)).astype(np.float32) * 0.05
        rows = bf16(rng.standard_normal((8, 4096)) * 3)
        logits = bf16(rng.standard_normal((8, 16384)) * 3)
        noise = gumbel_noise(logits.shape, torch.Generator().manual_seed(0))
        runs = [run_gemm(config, x, w).run, run_softmax(config, rows).run,
                run_rmsnorm(config, rows, np.ones(4096, dtype=np.float32), 1e-5).run,
                run_token_confidence(config, logits).run,
                run_token_confidence(config, logits, temperature=1.0, noise=noise).run]
        runs[-1].name += "+gumbel"
        for run in runs:
            print(speed_line(preset, run))


def block_logits(positions: int, vocab: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a block (N(0, 3) in bf16) and its tokens, all still [MASK]."""
    rng = np.random.default_rng(seed)
    return bf16(rng.standard_normal((positions, vocab)) * 3), np.full(positions, LLADA_MASK)


def sampling_pass_figures(preset: str, positions: int, vocab: int, rule: dict) -> None:
    config = load_npu_config(preset)
    logits, tokens = block_logits(positions, vocab, seed=positions)
    result = run_sampling_pass(config, logits, tokens, LLADA_MASK, forbid_id=LLADA_MASK % vocab, **rule)
    run, stats = result.run, result.run.stats
    logit_bytes = positions * vocab * 2
    units = ", ".join(f"{unit} {count:,d}" for unit, count in sorted(stats.by_unit.items()))
    print(f"{preset:11s} {positions:4d} positions x {vocab} vocab  {run.wall_seconds:7.2f} s  "
          f"{run.instructions:>10,d} instr ({run.instructions / run.wall_seconds:,.0f}/s)  "
          f"program {run.program_words} words")
    print(f"{'':11s} by unit: {units}")
    moved = stats.bytes_moved
    print(f"{'':11s} DRAM read {moved.get('dram_read', 0):,d} B, write {moved.get('dram_write', 0):,d} B; "
          f"DRAM reads per logit {moved.get('dram_read', 0) / logit_bytes:.4f}; vector SRAM read "
          f"{moved.get('vector_sram_read', 0):,d} B, write {moved.get('vector_sram_write', 0):,d} B; "
          f"committed {int(result.commit.sum())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=LLADA_VOCAB)
    parser.add_argument("--presets", nargs="+", default=["dnpu-cloud", "ar-npu", "dnpu-edge"])
    parser.add_argument("--long-block", type=int, default=128)
    parser.add_argument("--long-presets", nargs="+", default=["dnpu-cloud", "ar-npu"])
    args = parser.parse_args()
    simulator_speed(args.presets)
    print("\n== one sampling pass, 32-position block, top-k (k = 4) ==")
    for preset in args.presets:
        sampling_pass_figures(preset, 32, args.vocab, {"k": 4})
    print(f"\n== one sampling pass, {args.long_block}-position block, threshold 0.9 ==")
    for preset in args.long_presets:
        sampling_pass_figures(preset, args.long_block, args.vocab, {"threshold": 0.9})


if __name__ == "__main__":
    main()
