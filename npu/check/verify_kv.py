"""Verification of BAOS KV quantization on the NPU: compiled tokens vs the accuracy simulator.

    npu verify --checkpoint CKPT --kv baos-mxint4 --npu dnpu-cloud --prompts 20

For each (machine, commit rule) it decodes the task's prompts with the dual cache three ways:
compiled programs with BAOS KV (`Shapes.kv_quant`) on the functional simulator, the same steps
in `reference_step` (numpy; must agree bit for bit), and the accuracy simulator
(`npu.quant`: the model in NPU numerics, PyTorch, `BaosKVCache` with the equivalent
`BaosOptions`). The accuracy simulator rounds at module boundaries, not in the kernels' order,
so its logits are not bit-identical to the NPU's; the report counts the prompts whose tokens
agree and, for the others, where the first difference is. `compare_bf16` adds the same count for
the unquantized cache (compiled bf16 vs accuracy-sim bf16), the disagreement floor that has
nothing to do with BAOS.
"""

from __future__ import annotations

import time

import numpy as np

from npu.check.exact import baos_options, fast_simulator_tokens
from npu.check.prompts import task_prompts
from npu.compiler.kv_quant import KVQuant
from npu.hw.config import load_npu_config
from npu.ir import weights_from_model
from npu.models.checkpoint import load_checkpoint
from npu.models.decoding import DecodeConfig
from npu.models.tasks import get_task
from npu.quant.npu_numerics import with_npu_numerics
from npu.runtime.generate import ReferenceStepper, SimulatorStepper, generate


def _first_difference(got: np.ndarray, want: np.ndarray, prompt_length: int, block_length: int) -> dict:
    where = int(np.flatnonzero(got != want)[0])
    return {"position": where - prompt_length, "block": (where - prompt_length) // block_length,
            "compiled": int(got[where]), "accuracy_sim": int(want[where])}


def verify_kv(checkpoint: str, npu_names: list[str], rules: list[str], n_prompts: int, kv: KVQuant,
              seed: int = 1234, threshold: float = 0.9, compare_bf16: bool = False, log=print) -> dict:
    """Agreement counts of compiled BAOS generation with the reference and the accuracy simulator."""
    model, meta = load_checkpoint(checkpoint)
    cfg = model.config
    preset = meta["extra"]["preset"]
    task = get_task(preset["task"])
    decoding = preset["decoding"]
    prompts, answers = task_prompts(task, n_prompts, seed)
    weights = weights_from_model(model)
    prompt_length = prompts.shape[1]
    seq_len = prompt_length + decoding["gen_length"]
    report = {"checkpoint": str(checkpoint), "model": cfg.name, "prompts": n_prompts, "seed": seed,
              "kv": kv.name, "alphas": list(kv.alphas), "baos_options": repr(baos_options(kv)), "decoding": decoding,
              "runs": []}
    for npu_name in npu_names:
        npu = load_npu_config(npu_name)
        npu_model = with_npu_numerics(model, npu)
        for rule in rules:
            tau = threshold if rule == "threshold" else None
            plan = DecodeConfig(decoding["gen_length"], decoding["block_length"], decoding["steps"], cache="dual",
                                threshold=tau)
            began = time.perf_counter()
            want = fast_simulator_tokens(npu_model, prompts, plan, kv)
            sim = SimulatorStepper(cfg, weights, npu, seq_len, plan.sampling, kv)
            ref = ReferenceStepper(cfg, weights, npu, seq_len, plan.sampling, kv)
            run = {"npu": npu_name, "rule": rule, "prompts": n_prompts, "identical_to_reference": 0,
                   "identical_to_accuracy_sim": 0, "differences": [], "task_accuracy": 0.0,
                   "accuracy_sim_task_accuracy": float((want[:, prompt_length:] == answers).all(axis=1).mean())}
            correct = 0
            for i, (prompt, answer) in enumerate(zip(prompts, answers)):
                got = generate(sim, prompt, plan, cfg.mask_token_id)
                same_ref = generate(ref, prompt, plan, cfg.mask_token_id).tokens
                run["identical_to_reference"] += bool((got.tokens == same_ref).all())
                if (got.tokens == want[i]).all():
                    run["identical_to_accuracy_sim"] += 1
                else:
                    run["differences"].append({"prompt": i} | _first_difference(
                        got.tokens, want[i], prompt_length, decoding["block_length"]))
                correct += bool((got.tokens[prompt_length:] == answer).all())
            run["task_accuracy"] = correct / n_prompts
            if compare_bf16:
                plain = SimulatorStepper(cfg, weights, npu, seq_len, plan.sampling)
                bf16 = fast_simulator_tokens(npu_model, prompts, plan, None)
                plain_tokens = [generate(plain, p, plan, cfg.mask_token_id).tokens for p in prompts]
                run["bf16_identical_to_accuracy_sim"] = sum(bool((t == w).all()) for t, w in zip(plain_tokens, bf16))
                run["bf16_task_accuracy"] = sum(bool((t[prompt_length:] == a).all())
                                                for t, a in zip(plain_tokens, answers)) / n_prompts
            run["seconds"] = round(time.perf_counter() - began, 1)
            report["runs"].append(run)
            log(f"{npu_name} dual {rule:9s} {kv.name} alphas={kv.alphas}: {run['identical_to_reference']}/{n_prompts} "
                f"identical to the reference, {run['identical_to_accuracy_sim']}/{n_prompts} identical to the "
                f"accuracy simulator" + (f" (bf16 cache: {run['bf16_identical_to_accuracy_sim']}/{n_prompts})"
                                         if compare_bf16 else "")
                + f", accuracy {correct}/{n_prompts} (accuracy sim {run['accuracy_sim_task_accuracy']:.2f}), "
                f"{run['seconds']} s")
    return report
