"""GPU baselines: A6000 / A100 / H100 roofline models of dLLM generation, checked against the
published Fast-dLLM A100 throughput, and the share of time a GPU spends in sampling.

Published anchors (Fast-dLLM, arXiv 2505.22618, one A100 80GB, batch 1,
LLaDA-Instruct, GSM8K 5-shot, gen 256): baseline 6.7 tok/s; prefix cache + threshold 0.9
54.4 tok/s. The papers do not state the prompt length or the threshold rule's step count, so
both are assumptions here: a 5-shot GSM8K prompt of about `FAST_DLLM_PROMPT` tokens, block 32,
256 steps for the baseline (one token per step), and `tokens_per_step` tokens committed per
threshold step (reported for several values, and solved for the value that matches).

`fast_dllm_check` reports the datasheet-only prediction and a one-parameter calibration: the
fraction `f` of the datasheet's attainable rates (GEMM, attention, DRAM) that the eager
HuggingFace implementation reaches, fitted to the baseline and then used to predict the cached
+ threshold configuration.
"""

from __future__ import annotations

from dataclasses import replace

from npu.models.decoding import DecodeConfig
from npu.models.transformer import ModelConfig
from npu.sim.analytical.devices import A100, GPU_PRESETS, DeviceModel, DeviceSpec
from npu.sim.analytical.generation import GenerationSetup, generation_report

FAST_DLLM_PROMPT = 1000          # assumption: 5 GSM8K shots + question, LLaDA tokenizer
FAST_DLLM_BASELINE_TOK_S = 6.7   # Fast-dLLM Table 1, LLaDA, GSM8K 5-shot, gen 256
FAST_DLLM_CACHED_TOK_S = 54.4    # same, prefix cache + parallel (threshold 0.9)
SAMPLING_CLAIM = 0.70            # arXiv 2601.20706: sampling up to 70 % of dLLM latency on a GPU


def fast_dllm_setups(prompt_length: int = FAST_DLLM_PROMPT, tokens_per_step: float = 2.5
                     ) -> dict[str, GenerationSetup]:
    """The two published configurations (see the module docstring for the assumptions)."""
    baseline = DecodeConfig(gen_length=256, block_length=32, steps=256)
    cached = DecodeConfig(gen_length=256, block_length=32, steps=256, cache="prefix", threshold=0.9)
    return {"baseline": GenerationSetup(prompt_length, baseline),
            "prefix+threshold": GenerationSetup(prompt_length, cached, 32 / tokens_per_step)}


def scaled(spec: DeviceSpec, fraction: float) -> DeviceSpec:
    """`spec` reaching `fraction` of its attainable GEMM, attention and DRAM rates."""
    return replace(spec, gemm_efficiency=spec.gemm_efficiency * fraction,
                   attention_efficiency=spec.attention_efficiency * fraction,
                   memory_efficiency=spec.memory_efficiency * fraction)


def _tokens_per_s(spec: DeviceSpec, model: ModelConfig, setup: GenerationSetup) -> float:
    return generation_report(DeviceModel(spec), model, setup).tokens_per_s


def fit_fraction(spec: DeviceSpec, model: ModelConfig, setup: GenerationSetup, target_tok_s: float,
                 low: float = 0.05, high: float = 2.0) -> float:
    """The rate fraction at which `setup` runs at `target_tok_s` (bisection; throughput grows with it)."""
    for _ in range(24):
        middle = 0.5 * (low + high)
        if _tokens_per_s(scaled(spec, middle), model, setup) < target_tok_s:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def implied_tokens_per_step(spec: DeviceSpec, model: ModelConfig, prompt_length: int, target_tok_s: float) -> float:
    """Tokens per threshold step at which the cached configuration reaches `target_tok_s`."""
    low, high = 1.0, 32.0
    for _ in range(24):
        middle = 0.5 * (low + high)
        setup = fast_dllm_setups(prompt_length, middle)["prefix+threshold"]
        if _tokens_per_s(spec, model, setup) < target_tok_s:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def fast_dllm_check(model: ModelConfig, spec: DeviceSpec = A100, prompt_length: int = FAST_DLLM_PROMPT,
                    tokens_per_step: tuple[float, ...] = (2.0, 2.5, 3.0, 4.0)) -> list[dict]:
    """Predicted vs published Fast-dLLM A100 throughput, datasheet-only and calibrated."""
    fraction = fit_fraction(spec, model, fast_dllm_setups(prompt_length)["baseline"], FAST_DLLM_BASELINE_TOK_S)
    rows = []
    for label, model_spec in (("datasheet", spec), (f"calibrated f={fraction:.3f}", scaled(spec, fraction))):
        baseline = _tokens_per_s(model_spec, model, fast_dllm_setups(prompt_length)["baseline"])
        rows.append({"gpu": spec.name, "model": model.name, "rates": label, "configuration": "baseline",
                     "prompt_length": prompt_length, "tokens_per_step": 1.0, "published_tok_s": FAST_DLLM_BASELINE_TOK_S,
                     "predicted_tok_s": baseline, "relative_error": baseline / FAST_DLLM_BASELINE_TOK_S - 1})
        for tps in tokens_per_step:
            cached = _tokens_per_s(model_spec, model, fast_dllm_setups(prompt_length, tps)["prefix+threshold"])
            rows.append({"gpu": spec.name, "model": model.name, "rates": label, "configuration": "prefix+threshold0.9",
                         "prompt_length": prompt_length, "tokens_per_step": tps,
                         "published_tok_s": FAST_DLLM_CACHED_TOK_S, "predicted_tok_s": cached,
                         "relative_error": cached / FAST_DLLM_CACHED_TOK_S - 1})
        implied = implied_tokens_per_step(model_spec, model, prompt_length, FAST_DLLM_CACHED_TOK_S)
        rows.append({"gpu": spec.name, "model": model.name, "rates": label, "configuration": "prefix+threshold0.9",
                     "prompt_length": prompt_length, "tokens_per_step": implied,
                     "published_tok_s": FAST_DLLM_CACHED_TOK_S, "predicted_tok_s": FAST_DLLM_CACHED_TOK_S,
                     "relative_error": 0.0})
    return rows


def sampling_share_sweep(models: dict[str, ModelConfig], gpus: tuple[DeviceSpec, ...] = tuple(GPU_PRESETS.values()),
                         temperatures: tuple[float, ...] = (0.0, 1.0),
                         scenarios: tuple[tuple[int, int], ...] = ((1000, 256), (100, 1024), (100, 256)),
                         caches: tuple[str, ...] = ("none", "prefix", "dual"), block_length: int = 32) -> list[dict]:
    """Share of generation time in sampling (Fast-dLLM's implementation) over a sweep of setups."""
    rows = []
    for name, model in models.items():
        for spec in gpus:
            for temperature in temperatures:
                device = DeviceModel(spec, temperature=temperature)
                shared: dict = {}
                for prompt, gen in scenarios:
                    for cache in caches:
                        setup = GenerationSetup(prompt, DecodeConfig(gen, block_length, gen, cache=cache))
                        report = generation_report(device, model, setup, shared)
                        rows.append({"gpu": spec.name, "model": name, "temperature": temperature,
                                     "prompt_length": prompt, "gen_length": gen, "cache": cache,
                                     "tokens_per_s": report.tokens_per_s, "sampling_share": report.sampling_share})
    return rows
