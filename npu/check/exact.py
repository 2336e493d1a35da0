"""The accuracy simulator's exact mode: task accuracy in the NPU's own arithmetic, kernel by kernel.

The fast accuracy simulator (npu.quant.accuracy) runs the PyTorch model with the NPU's number
formats at module boundaries, so its K/V and logits differ from the hardware's by bf16 ulps
(RoPE with fp32 tables and one rounding, PyTorch's summation order, torch exp/rsqrt). A 4-bit
MX grid can turn such ulps into whole quantization steps. The exact mode decodes with
`npu.compiler.reference` instead - the numpy walk of the compiled kernels, which the functional
simulator equals bit for bit (tests, `make verify`) - for the KV methods the NPU lowers: the bf16
cache and BAOS-MXINT (dual cache, `npu.compiler.kv_quant`). For each it reports the exact match
next to the fast simulator's on the same prompts and how many generations agree token for token:
the fast simulator's fidelity, measured.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from npu.check.prompts import task_prompts
from npu.compiler.asm import CompileError
from npu.compiler.kv_quant import KVQuant
from npu.compiler.layout import Shapes
from npu.hw.config import load_npu_config
from npu.ir import weights_from_model
from npu.models.checkpoint import load_checkpoint
from npu.models.decoding import DecodeConfig
from npu.models.decoding import generate as torch_generate
from npu.models.tasks import get_task
from npu.quant.baos import BaosOptions
from npu.quant.methods import make_cache_factory
from npu.quant.npu_numerics import with_npu_numerics
from npu.quant.observe import observe_queries
from npu.runtime.generate import ReferenceStepper, generate

EXACT_BITS = (8, 4)  # MX widths the DMA stores (npu.compiler.kv_quant)


def baos_options(kv: KVQuant) -> BaosOptions:
    """The accuracy simulator's equivalent of the compiler's BAOS KV (method 'baos-mxint' at kv.bits)."""
    return BaosOptions(storage="mxint", alphas=kv.alphas, criterion=kv.criterion, plain_candidate=kv.plain_candidate,
                       mx_scale=kv.mx_scale)


def fast_simulator_tokens(npu_model, prompts: np.ndarray, decode: DecodeConfig, kv: KVQuant | None) -> np.ndarray:
    """Tokens of the fast accuracy simulator (all prompts in one batch): BAOS-MXINT with kv's
    options, or the bf16 cache for kv=None."""
    if kv is None:
        factory = make_cache_factory("bf16", 16, decode=decode)
    else:
        options = baos_options(kv)
        factory = make_cache_factory("baos-mxint", kv.bits, decode=decode, alphas=options.alphas,
                                     criterion=options.criterion, plain_candidate=options.plain_candidate,
                                     mx_scale=options.mx_scale)
    with observe_queries(npu_model):  # BAOS's alpha search judges candidates by the queries
        result = torch_generate(npu_model, torch.as_tensor(prompts, dtype=torch.long), decode, cache_factory=factory)
    return result.tokens.numpy().astype(np.int32)


def exact_tokens(model, npu_name: str, prompts: np.ndarray, decode: DecodeConfig, kv: KVQuant | None) -> np.ndarray:
    """Tokens decoded by the NPU-arithmetic reference, prompt by prompt."""
    cfg = model.config
    stepper = ReferenceStepper(cfg, weights_from_model(model), load_npu_config(npu_name),
                               prompts.shape[1] + decode.gen_length, decode.sampling, kv)
    return np.stack([generate(stepper, prompt, decode, cfg.mask_token_id).tokens for prompt in prompts])


def check_fits(label: str, model_config, npu_name: str, seq_len: int, bits: tuple[int, ...]) -> None:
    """Refuse, before any decoding, a model the compiler would refuse on this machine: the exact
    mode reports figures only for configurations the NPU runs (CompileError names the constraint)."""
    npu = load_npu_config(npu_name)
    for kv in [None, *(KVQuant(b) for b in bits)]:
        try:
            Shapes(model_config, npu, seq_len, kv).check()
        except CompileError as exc:
            raise CompileError(f"exact mode, model {label!r}: {exc}") from None


def exact_accuracy(label: str, checkpoint_dir: str | Path, npu_name: str, bits: tuple[int, ...], n_prompts: int,
                   seed: int = 1234, log=print, recipe: tuple[dict, dict] | None = None) -> list[dict]:
    """Rows (bf16 and BAOS-MXINT at each width) of one task model, dual cache, its preset's rule.
    recipe: the (task, decoding) sections to decode with; default: those recorded at training."""
    model, meta = load_checkpoint(checkpoint_dir)
    recorded = meta.get("extra", {}).get("preset", {})
    task_spec, decoding = recipe if recipe is not None else (recorded.get("task"), recorded.get("decoding"))
    task = get_task(task_spec)
    if not hasattr(task, "exact_match"):
        raise ValueError(f"{checkpoint_dir}: task {task.name!r} has no exact-match answers (exact mode needs one)")
    unsupported = [b for b in bits if b not in EXACT_BITS]
    if unsupported:
        raise ValueError(f"exact mode: BAOS-MXINT{unsupported[0]} has no DMA format; widths: {EXACT_BITS}")
    decode = DecodeConfig(**{**decoding, "cache": "dual"})
    prompts, answers = task_prompts(task, n_prompts, seed)
    check_fits(label, model.config, npu_name, prompts.shape[1] + decode.gen_length, bits)
    npu_model = with_npu_numerics(model, load_npu_config(npu_name))
    rows = []
    for method, width, kv in [("bf16", 16, None), *(("baos-mxint", b, KVQuant(b)) for b in bits)]:
        began = time.perf_counter()
        exact = exact_tokens(model, npu_name, prompts, decode, kv)[:, prompts.shape[1]:]
        fast = fast_simulator_tokens(npu_model, prompts, decode, kv)[:, prompts.shape[1]:]
        row = {"model": label, "npu": npu_name, "cache": "dual",
               "rule": "topk" if decode.threshold is None else f"threshold {decode.threshold}",
               "method": method, "bits": width, "prompts": n_prompts,
               "exact_match_npu_arithmetic": round(100 * float((exact == answers).all(axis=1).mean()), 2),
               "exact_match_fast_simulator": round(100 * float((fast == answers).all(axis=1).mean()), 2),
               "generations_identical": int((exact == fast).all(axis=1).sum()),
               "seconds": round(time.perf_counter() - began, 1)}
        rows.append(row)
        log(f"{label} {method}{'' if kv is None else width}: exact match {row['exact_match_npu_arithmetic']}% "
            f"(NPU arithmetic) vs {row['exact_match_fast_simulator']}% (fast simulator), "
            f"{row['generations_identical']}/{n_prompts} generations identical, {row['seconds']} s")
    return rows
