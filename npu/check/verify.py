"""Verification of compiled generation: simulator == NPU-arithmetic reference, bit for bit.

A generation counts as identical when every step has the same window, commits and confidence
bits and the final tokens agree (`generation_difference`); the report keeps the first few
differences. The command line is `npu verify` (npu.stages.verify, rule verify_compiled):

    npu verify --checkpoint /tmp/ckpt-sort --prompts 50 \
        --npu dnpu-cloud dnpu-edge ar-npu --cache none prefix dual --rule topk threshold \
        --out results/verify-tiny-sort.json

`--kv baos-mxint4` (with `--kv-alpha`) runs npu.check.verify_kv instead: the dual cache with
BAOS KV quantization, compiled vs reference vs the accuracy simulator's BaosKVCache.

`--temperature T` (> 0) decodes with Gumbel-max sampling; prompt i draws its noise with seed
`--seed` + i, the same draws for the simulator and the reference.

For every (machine, cache mode, commit rule) it decodes the task's prompts twice - compiled
programs on the functional simulator (every prompt at once, in lock step: npu.runtime.lockstep,
which equals one-prompt-at-a-time simulation bit for bit) and `reference_step` in numpy - and
reports how many
generations agree token for token, the task accuracy of the compiled model, and (once per
machine) the logits error of the NPU-arithmetic reference against the float32 model.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np
import torch
from tqdm import tqdm

from npu.check.prompts import task_prompts
from npu.compiler.context import StepSpec
from npu.compiler.layout import Shapes, pack_weights, reference_weights
from npu.compiler.reference import ReferenceState, reference_step
from npu.hw.config import load_npu_config
from npu.ir import weights_from_model
from npu.models.checkpoint import load_checkpoint
from npu.models.decoding import DecodeConfig
from npu.models.tasks import get_task
from npu.runtime.generate import ReferenceStepper, generate, generation_difference
from npu.runtime.lockstep import LockstepStepper, generate_lockstep


def logits_error(model, npu_name: str, prompt: np.ndarray, gen_length: int) -> float:
    """max |NPU-reference logits - float32 logits| / max |float32 logits| over the answer rows of
    a full pass with every answer position masked ([MASK]'s own logit excluded)."""
    cfg = model.config
    npu = load_npu_config(npu_name)
    seq = np.concatenate([prompt, np.full(gen_length, cfg.mask_token_id, np.int32)])
    shapes = Shapes(cfg, npu, len(seq))
    weights = reference_weights(pack_weights(weights_from_model(model), shapes), npu)
    out = reference_step(StepSpec(shapes, len(seq), gen_length, "topk"), weights,
                         ReferenceState.start(shapes, seq), 0, len(prompt), k=1)
    with torch.no_grad():
        exact = model(torch.as_tensor(seq[None], dtype=torch.long))[0, len(prompt):].numpy()
    keep = np.arange(cfg.vocab_size) != cfg.mask_token_id
    return float(np.abs(out.logits[:, keep] - exact[:, keep]).max() / np.abs(exact[:, keep]).max())


def verify(checkpoint: str, npu_names: list[str], caches: list[str], rules: list[str], n_prompts: int,
           seed: int = 1234, threshold: float = 0.9, log=print, temperature: float = 0.0,
           on_run: Callable[[dict], None] | None = None, progress: bool = False) -> dict:
    """The report of every (machine, cache, rule) run; `on_run(report)` after each finished run
    (report["complete"] turns True after the last), `progress` shows a bar per run on stderr."""
    model, meta = load_checkpoint(checkpoint)
    cfg = model.config
    preset = meta["extra"]["preset"]  # the model preset the checkpoint was trained from
    task = get_task(preset["task"])
    decoding = preset["decoding"]
    prompts, answers = task_prompts(task, n_prompts, seed)
    weights = weights_from_model(model)
    seq_len = prompts.shape[1] + decoding["gen_length"]
    report = {"checkpoint": str(checkpoint), "model": cfg.name, "prompts": n_prompts, "seed": seed,
              "decoding": decoding, "temperature": temperature, "complete": False, "runs": []}
    machines = {name: load_npu_config(name) for name in npu_names}  # every preset checked before any run
    runs = len(machines) * len(caches) * len(rules)
    bar = tqdm(total=2 * runs * len(prompts), desc=f"verify {cfg.name}", unit="generation", disable=not progress,
               mininterval=5.0)
    for npu_name, npu in machines.items():
        error = logits_error(model, npu_name, prompts[0], decoding["gen_length"])
        log(f"{npu_name}: NPU-arithmetic logits vs float32: max rel error {error:.2e}")
        for cache in caches:
            for rule in rules:
                plan = DecodeConfig(decoding["gen_length"], decoding["block_length"], decoding["steps"], cache,
                                    threshold=threshold if rule == "threshold" else None, temperature=temperature)
                began = time.perf_counter()
                plans = [dataclasses.replace(plan, seed=seed + i) for i in range(len(prompts))]
                # every prompt's compiled generation at once, in lock step (npu.runtime.lockstep)
                sim = LockstepStepper(cfg, weights, npu, seq_len, plan.sampling, lanes=len(prompts))
                compiled = generate_lockstep(sim, list(prompts), plans, cfg.mask_token_id,
                                             on_finished=lambda lane: bar.update())
                del sim
                simulated = time.perf_counter() - began
                ref = ReferenceStepper(cfg, weights, npu, seq_len, plan.sampling)
                agree, correct, steps, instructions, differences = 0, 0, 0, 0, []
                for i, (prompt, answer) in enumerate(zip(prompts, answers)):
                    got = compiled[i]
                    want = generate(ref, prompt, plans[i], cfg.mask_token_id)
                    bar.update()
                    difference = generation_difference(got, want)
                    agree += difference is None
                    if difference is not None and len(differences) < 5:
                        differences.append({"prompt": i, "difference": difference})
                    correct += bool((got.tokens[len(prompt):] == answer).all())
                    steps += len(got.records)
                    instructions += sum(r.instructions for r in got.records)
                run = {"npu": npu_name, "cache": cache, "rule": rule, "exact_match_vs_reference": agree,
                       "prompts": len(prompts), "task_accuracy": correct / len(prompts), "steps": steps,
                       "instructions": instructions, "seconds": round(time.perf_counter() - began, 1),
                       "simulator_seconds": round(simulated, 1),
                       "logits_max_rel_error": error, "first_differences": differences}
                report["runs"].append(run)
                report["complete"] = len(report["runs"]) == runs
                if on_run is not None:
                    on_run(report)
                log(f"{npu_name} {cache:6s} {rule:9s}: {agree}/{len(prompts)} identical to the reference, "
                    f"accuracy {correct}/{len(prompts)}, {steps} steps, {run['seconds']} s "
                    f"(simulator {run['simulator_seconds']} s, {instructions / max(simulated, 1e-9):,.0f} instructions/s)")
    bar.close()
    return report
