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
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed

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
from npu.runtime.generate import generation_difference
from npu.runtime.lockstep import BatchedReferenceStepper, LockstepStepper, generate_lockstep


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


@dataclasses.dataclass(frozen=True)
class _Cell:
    """One (machine, cache mode, commit rule) run of a verification: everything a worker process needs."""

    checkpoint: str
    npu_name: str
    cache: str
    rule: str
    n_prompts: int
    seed: int
    threshold: float
    temperature: float


def _run_cell(cell: _Cell, on_generation: Callable[[], None] | None = None) -> dict:
    """Decode the cell's prompts on the compiled programs (all at once, in lock step) and on the
    reference; the run's entry of the report (without the logits error, a per-machine figure)."""
    model, meta = load_checkpoint(cell.checkpoint)
    cfg = model.config
    preset = meta["extra"]["preset"]  # the model preset the checkpoint was trained from
    decoding = preset["decoding"]
    prompts, answers = task_prompts(get_task(preset["task"]), cell.n_prompts, cell.seed)
    weights = weights_from_model(model)
    npu = load_npu_config(cell.npu_name)
    seq_len = prompts.shape[1] + decoding["gen_length"]
    plan = DecodeConfig(decoding["gen_length"], decoding["block_length"], decoding["steps"], cell.cache,
                        threshold=cell.threshold if cell.rule == "threshold" else None, temperature=cell.temperature)
    plans = [dataclasses.replace(plan, seed=cell.seed + i) for i in range(len(prompts))]
    began = time.perf_counter()
    # every prompt's compiled generation at once, in lock step (npu.runtime.lockstep)
    sim = LockstepStepper(cfg, weights, npu, seq_len, plan.sampling, lanes=len(prompts))
    compiled = generate_lockstep(sim, list(prompts), plans, cfg.mask_token_id,
                                 on_finished=None if on_generation is None else lambda lane: on_generation())
    del sim
    simulated = time.perf_counter() - began
    # and on the NPU-arithmetic reference, every prompt's steps together (bit for bit one at a time)
    ref = BatchedReferenceStepper(cfg, weights, npu, seq_len, plan.sampling, lanes=len(prompts))
    wanted = generate_lockstep(ref, list(prompts), plans, cfg.mask_token_id,
                               on_finished=None if on_generation is None else lambda lane: on_generation())
    agree, correct, steps, instructions, differences = 0, 0, 0, 0, []
    for i, (prompt, answer) in enumerate(zip(prompts, answers)):
        got, want = compiled[i], wanted[i]
        difference = generation_difference(got, want)
        agree += difference is None
        if difference is not None and len(differences) < 5:
            differences.append({"prompt": i, "difference": difference})
        correct += bool((got.tokens[len(prompt):] == answer).all())
        steps += len(got.records)
        instructions += sum(r.instructions for r in got.records)
    return {"npu": cell.npu_name, "cache": cell.cache, "rule": cell.rule, "exact_match_vs_reference": agree,
            "prompts": len(prompts), "task_accuracy": correct / len(prompts), "steps": steps,
            "instructions": instructions, "seconds": round(time.perf_counter() - began, 1),
            "simulator_seconds": round(simulated, 1), "first_differences": differences}


def _worker_start() -> None:
    torch.set_num_threads(1)  # one core per worker: the pool is the parallelism


def verify(checkpoint: str, npu_names: list[str], caches: list[str], rules: list[str], n_prompts: int,
           seed: int = 1234, threshold: float = 0.9, log=print, temperature: float = 0.0,
           on_run: Callable[[dict], None] | None = None, progress: bool = False, jobs: int = 1) -> dict:
    """The report of every (machine, cache, rule) run; `on_run(report)` after each finished run
    (report["complete"] turns True after the last), `progress` shows one bar over every generation
    on stderr. `jobs` > 1 runs that many cells at once in worker processes."""
    model, meta = load_checkpoint(checkpoint)
    cfg = model.config
    preset = meta["extra"]["preset"]
    decoding = preset["decoding"]
    prompts, _ = task_prompts(get_task(preset["task"]), n_prompts, seed)
    report = {"checkpoint": str(checkpoint), "model": cfg.name, "prompts": n_prompts, "seed": seed,
              "decoding": decoding, "temperature": temperature, "complete": False, "runs": []}
    machines = {name: load_npu_config(name) for name in npu_names}  # every preset checked before any run
    errors = {}
    for npu_name in machines:
        errors[npu_name] = logits_error(model, npu_name, prompts[0], decoding["gen_length"])
        log(f"{npu_name}: NPU-arithmetic logits vs float32: max rel error {errors[npu_name]:.2e}")
    cells = [_Cell(str(checkpoint), npu_name, cache, rule, n_prompts, seed, threshold, temperature)
             for npu_name in machines for cache in caches for rule in rules]
    bar = tqdm(total=2 * len(cells) * n_prompts, desc=f"verify {cfg.name}", unit="generation",
               disable=not progress, mininterval=5.0)
    finished: dict[_Cell, dict] = {}

    def done(cell: _Cell, run: dict) -> None:
        run["logits_max_rel_error"] = errors[cell.npu_name]
        finished[cell] = run
        report["runs"] = [finished[c] for c in cells if c in finished]  # in the order of the cells
        report["complete"] = len(finished) == len(cells)
        if on_run is not None:
            on_run(report)
        log(f"{cell.npu_name} {cell.cache:6s} {cell.rule:9s}: {run['exact_match_vs_reference']}/{run['prompts']} "
            f"identical to the reference, accuracy {round(run['task_accuracy'] * run['prompts'])}/{run['prompts']}, "
            f"{run['steps']} steps, {run['seconds']} s (simulator {run['simulator_seconds']} s, "
            f"{run['instructions'] / max(run['simulator_seconds'], 0.1):,.0f} instructions/s)")

    if jobs <= 1 or len(cells) == 1:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as in a worker: one core, no idle threads spinning
        try:
            for cell in cells:
                done(cell, _run_cell(cell, bar.update))
        finally:
            torch.set_num_threads(threads)
    else:
        context = multiprocessing.get_context("spawn")  # no fork of a process that ran torch
        with ProcessPoolExecutor(min(jobs, len(cells)), mp_context=context, initializer=_worker_start) as pool:
            futures = {pool.submit(_run_cell, cell): cell for cell in cells}
            for future in as_completed(futures):
                bar.update(2 * n_prompts)
                done(futures[future], future.result())
    bar.close()
    return report
