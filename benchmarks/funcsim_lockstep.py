"""Functional simulator on compiled tiny-model generations: one prompt at a time (before) against
every prompt in lock step (after, npu.runtime.lockstep), and one `make verify` cell both ways.

Usage: python benchmarks/funcsim_lockstep.py [--model tiny-sort] [--npu dnpu-edge ...] [--cache dual]
                                             [--rule topk] [--prompts 50] [--single 3]
Weights are random (the model preset's architecture; results/models/<model>/checkpoint when it
exists), so no training is needed; the instruction counts are those of the trained model's
programs (they depend on shapes, and with the threshold rule on how many steps each block takes).
Prints instructions/s of both simulators, seconds per generation of both and of the
NPU-arithmetic reference (one at a time and all prompts together), and the CPU time of one
verify cell (`--prompts` generations simulated and checked against the reference) before and
after. Every lock-step generation of
the `--single` first prompts is checked equal to its one-at-a-time generation. Every preset in
`--npu` (default: dnpu-edge, dnpu-cloud, ar-npu) in turn, then a before/after table of them.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch

from npu.check.prompts import task_prompts
from npu.hw.config import load_npu_config
from npu.ir import weights_from_model
from npu.models.checkpoint import load_checkpoint
from npu.models.decoding import DecodeConfig
from npu.models.presets import load_model_spec
from npu.models.tasks import get_task
from npu.models.transformer import build_model
from npu.runtime.generate import ReferenceStepper, SimulatorStepper, generate, generation_difference
from npu.runtime.lockstep import BatchedReferenceStepper, LockstepStepper, generate_lockstep


PRESETS = ("dnpu-edge", "dnpu-cloud", "ar-npu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-sort")
    parser.add_argument("--npu", nargs="+", default=list(PRESETS), help="NPU presets (default: all three)")
    parser.add_argument("--cache", default="dual", choices=["none", "prefix", "dual"])
    parser.add_argument("--rule", default="topk", choices=["topk", "threshold"])
    parser.add_argument("--prompts", type=int, default=50, help="prompts of the verify cell (make verify: 50)")
    parser.add_argument("--single", type=int, default=3, help="prompts timed one at a time (and compared)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # CPU time of one core (the lock-step matrix unit uses torch's kernels)
    rows = [measure(args, npu_name) for npu_name in args.npu]
    print(f"\n{args.model} {args.cache} {args.rule}, {args.prompts} prompts; CPU seconds (time.process_time); "
          f"before: one prompt at a time, after: lock step")
    print(f"{'NPU':12s} {'instr/gen':>10s} {'before instr/s':>15s} {'after instr/s':>14s} {'speed-up':>9s} "
          f"{'reference s/gen before -> after':>32s} {'verify cell before -> after':>28s}")
    for row in rows:
        print(f"{row['npu']:12s} {row['instructions']:10,.0f} {row['single_rate']:15,.0f} {row['lock_rate']:14,.0f} "
              f"{row['speedup']:8.1f}x {row['reference_seconds']:22.3f} -> {row['batched_seconds']:5.3f} "
              f"{row['cell_before']:13.1f} s -> {row['cell_after']:6.1f} s")


def measure(args: argparse.Namespace, npu_name: str) -> dict:
    """One preset: both simulators' instructions/s, the reference's s/generation, one verify cell."""
    spec = load_model_spec(args.model)
    checkpoint = Path("results/models") / args.model / "checkpoint"
    if checkpoint.exists():
        model, _ = load_checkpoint(str(checkpoint))
    else:
        torch.manual_seed(0)
        model = build_model(spec.architecture)
    cfg, decoding = model.config, spec.raw["decoding"]
    prompts, _ = task_prompts(get_task(spec.raw["task"]), args.prompts, 1234)
    weights = weights_from_model(model)
    npu = load_npu_config(npu_name)
    seq_len = prompts.shape[1] + decoding["gen_length"]
    plan = DecodeConfig(decoding["gen_length"], decoding["block_length"], decoding["steps"], args.cache,
                        threshold=0.9 if args.rule == "threshold" else None)
    plans = [dataclasses.replace(plan, seed=1234 + i) for i in range(args.prompts)]

    single = SimulatorStepper(cfg, weights, npu, seq_len, plan.sampling)
    generate(single, prompts[0], plans[0], cfg.mask_token_id)  # compiles the step programs
    lock = LockstepStepper(cfg, weights, npu, seq_len, plan.sampling, lanes=args.prompts)
    lock.image.programs = single.programs  # the same compiled programs, not timed twice

    began = time.process_time()
    one_at_a_time = [generate(single, prompts[i], plans[i], cfg.mask_token_id) for i in range(args.single)]
    single_seconds = (time.process_time() - began) / args.single
    single_instructions = sum(r.instructions for g in one_at_a_time for r in g.records) / args.single

    began = time.process_time()
    together = generate_lockstep(lock, list(prompts), plans, cfg.mask_token_id)
    lock_seconds = (time.process_time() - began) / args.prompts
    lock_instructions = sum(r.instructions for g in together for r in g.records) / args.prompts
    for i, generation in enumerate(one_at_a_time):
        difference = generation_difference(together[i], generation)
        if difference is not None:
            raise SystemExit(f"{npu_name}, prompt {i}: lock-step generation differs: {difference}")

    reference = ReferenceStepper(cfg, weights, npu, seq_len, plan.sampling)
    began = time.process_time()
    references = [generate(reference, prompts[i], plans[i], cfg.mask_token_id) for i in range(args.single)]
    reference_seconds = (time.process_time() - began) / args.single
    batched = BatchedReferenceStepper(cfg, weights, npu, seq_len, plan.sampling, lanes=args.prompts)
    began = time.process_time()
    references_together = generate_lockstep(batched, list(prompts), plans, cfg.mask_token_id)
    batched_seconds = (time.process_time() - began) / args.prompts
    for i, generation in enumerate(references):
        difference = generation_difference(references_together[i], generation)
        if difference is not None:
            raise SystemExit(f"{npu_name}, prompt {i}: batched reference generation differs: {difference}")

    where = f"{args.model} {npu_name} {args.cache} {args.rule}"
    print(f"{where}: {lock_instructions:,.0f} instructions per generation; CPU seconds (time.process_time)")
    print(f"{'':34s} {'instructions/s':>15s} {'s/generation':>13s}")
    print(f"{'functional simulator, one prompt':34s} {single_instructions / single_seconds:15,.0f} "
          f"{single_seconds:13.3f}")
    print(f"{f'lock step, {args.prompts} prompts':34s} {lock_instructions / lock_seconds:15,.0f} {lock_seconds:13.3f}"
          f"   x{single_seconds / lock_seconds:.1f}")
    print(f"{'NPU-arithmetic reference, one':34s} {'':15s} {reference_seconds:13.3f}")
    print(f"{f'reference, {args.prompts} together':34s} {'':15s} {batched_seconds:13.3f}"
          f"   x{reference_seconds / batched_seconds:.1f}")
    before = args.prompts * (single_seconds + reference_seconds)
    after = args.prompts * (lock_seconds + batched_seconds)
    print(f"verify cell ({args.prompts} prompts): before {before:.1f} s, after {after:.1f} s (x{before / after:.1f})",
          flush=True)
    return {"npu": npu_name, "instructions": lock_instructions, "single_rate": single_instructions / single_seconds,
            "lock_rate": lock_instructions / lock_seconds, "speedup": single_seconds / lock_seconds,
            "reference_seconds": reference_seconds, "batched_seconds": batched_seconds,
            "cell_before": before, "cell_after": after}


if __name__ == "__main__":
    main()
