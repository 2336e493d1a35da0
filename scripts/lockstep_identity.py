"""Every compiled step program of the trained tiny models, one-image simulator vs lock step.

Usage: python scripts/lockstep_identity.py [--models-dir results/models] [--lanes 4]

For each model (tiny-sort, tiny-add), machine (dnpu-cloud, dnpu-edge, ar-npu), commit rule's
sampling pass (top-k, threshold), greedy and temperature programs, and each step program a
generation runs (the block refresh, the prefix and dual in-block steps), `--lanes` prompts' memory
images run once each on FunctionalSimulator and together on LockstepSimulator; the SHA-256 of
every memory (DRAM, the four SRAMs, the accumulators: each up to its last non-zero byte, the rest
is zero) and the instruction count must agree lane by lane. Prints one line per program and the
number of mismatches (exit status 1 when there are any). tests/test_lockstep_sim.py runs the same
comparison on a small random model in the default suite; this is the full check for the record.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from npu.check.prompts import task_prompts
from npu.hw.config import load_npu_config
from npu.ir import weights_from_model
from npu.models.checkpoint import load_checkpoint
from npu.models.decoding import query_range
from npu.models.tasks import get_task
from npu.runtime.generate import SimulatorStepper
from npu.sim.functional import FunctionalSimulator
from npu.sim.functional.lockstep import LockstepSimulator

SRAMS = ("vector_sram", "matrix_sram", "fp_sram", "int_sram")


def digest(arrays: list[np.ndarray]) -> str:
    """SHA-256 of each array up to its last non-zero byte (and that length)."""
    h = hashlib.sha256()
    for array in arrays:
        raw = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
        nonzero = np.flatnonzero(raw)
        n = int(nonzero[-1]) + 1 if nonzero.size else 0
        h.update(str(n).encode())
        h.update(raw[:n].tobytes())
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=Path("results/models"))
    parser.add_argument("--models", nargs="+", default=["tiny-sort", "tiny-add"])
    parser.add_argument("--npus", nargs="+", default=["dnpu-cloud", "dnpu-edge", "ar-npu"])
    parser.add_argument("--lanes", type=int, default=4)
    args = parser.parse_args()
    programs = lanes_checked = mismatches = 0
    for model_name in args.models:
        model, meta = load_checkpoint(str(args.models_dir / model_name / "checkpoint"))
        cfg, preset = model.config, meta["extra"]["preset"]
        decoding = preset["decoding"]
        prompts, _ = task_prompts(get_task(preset["task"]), args.lanes, 99)
        weights = weights_from_model(model)
        prompt_length, block = prompts.shape[1], decoding["block_length"]
        seq_len = prompt_length + decoding["gen_length"]
        for npu_name in args.npus:
            npu = load_npu_config(npu_name)
            for sampling in ("topk", "threshold"):
                stepper = SimulatorStepper(cfg, weights, npu, seq_len, sampling)
                for temperature in (False, True):
                    steps = {}  # (query length, sample length) -> (q0, s0) of a step that runs it
                    for cache in ("none", "prefix", "dual"):
                        for step in (0, 1):
                            q0, q1 = query_range(cache, step, prompt_length, prompt_length + block, seq_len)
                            steps[(q1 - q0, block)] = (q0, prompt_length - q0)
                    for (query_length, sample_length), (q0, s0) in steps.items():
                        compiled = stepper.program(query_length, sample_length, temperature)
                        rng = np.random.default_rng(query_length)
                        lock = LockstepSimulator(npu, args.lanes, dram_size=stepper.sim.dram.size)
                        expected = []
                        for lane in range(args.lanes):
                            stepper.start(np.concatenate([prompts[lane], np.full(decoding["gen_length"],
                                                                                 cfg.mask_token_id, np.int32)]))
                            dram = stepper.sim.dram
                            dram.write(stepper.dram["constants"].address, np.frombuffer(compiled.constants, np.uint8))
                            dram.write(stepper.dram["params"].address, np.array([q0, s0, 1] + [0] * 13, np.int32),
                                       "int32")
                            fparams = [0.9 if sampling == "threshold" else 0.0, 0.8 if temperature else 0.0]
                            dram.write(stepper.dram["fparams"].address, np.array(fparams + [0] * 14, np.float32),
                                       "fp32")
                            if temperature:
                                noise = rng.gumbel(size=(sample_length, stepper.shapes.vocab_pad)).astype(np.float32)
                                dram.write(stepper.dram["noise"].address, noise, "fp32")
                            lock.dram.data[lane] = dram.data
                            single = FunctionalSimulator(npu, dram_size=dram.size)
                            single.dram.data[:] = dram.data
                            single.load(compiled.program)
                            stats = single.run(max_instructions=1 << 31)
                            expected.append((digest([single.dram.data] + [single.srams[n].data for n in SRAMS]
                                                    + [single.accumulators]), stats.instructions))
                        lock.load(compiled.program)
                        run = lock.run(max_instructions=1 << 31)
                        bad = 0
                        for lane in range(args.lanes):
                            got = (digest([lock.dram.data[lane]] + [lock.srams[n].data[lane] for n in SRAMS]
                                          + [lock.accumulators[lane]]), int(run.instructions[lane]))
                            bad += got != expected[lane]
                        programs += 1
                        lanes_checked += args.lanes
                        mismatches += bad
                        print(f"{model_name} {npu_name} {sampling:9s} {'temperature' if temperature else 'greedy':11s} "
                              f"query {query_length:3d}: {expected[0][1]:6d} instructions, {run.groups} group(s), "
                              f"{args.lanes - bad}/{args.lanes} lanes identical, lane 0 {expected[0][0][:16]}",
                              flush=True)
    print(f"{programs} programs, {lanes_checked} lanes, {mismatches} mismatches")
    raise SystemExit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
