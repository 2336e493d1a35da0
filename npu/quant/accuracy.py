"""The accuracy simulator: task accuracy of every KV method x bit width x cache mode.

A model runs in the NPU's arithmetic (`with_npu_numerics`: weights in the config's weight
format, activations in bf16 where the NPU stores them) and its KV cache in the method under
test, inside the real dLLM cache loop (`generate`, prefix and dual caches, refresh per block).
Puzzles are scored by exact match (and token accuracy) on fresh prompts; the text model by the
masked-diffusion perplexity bound, where the KV cache holds one full forward pass of each
noisy window (a single refresh: no current block, so KIVI has no window and BAOS one block).

All methods of one model see the same prompts / windows, so differences between rows are
paired; `ci95` is the binomial half-width of one row's exact match (1.96 sqrt(p(1-p)/n)).
A (method, bits) a layout cannot hold is a row with status 'n/a: <reason>' and no value.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F

from npu.hw.config import NPUConfig
from npu.models.decoding import DecodeConfig, generate
from npu.models.tasks import CharCorpus
from npu.models.transformer import MaskedDiffusionTransformer, ModelConfig
from npu.quant.methods import METHODS, get_method, make_cache_factory
from npu.quant.npu_numerics import with_npu_numerics
from npu.quant.observe import observe_queries
from npu.quant.smoothing import StaticSmoothing
from npu.quant.storage import kv_bytes_per_token

DEFAULT_METHODS = tuple(METHODS)
DEFAULT_BITS = (16, 8, 4, 3, 2)
DEFAULT_CACHE_MODES = ("prefix", "dual")


@dataclass
class ModelUnderTest:
    """A trained model with its task and decoding recipe (from its checkpoint's preset)."""

    label: str
    model: MaskedDiffusionTransformer
    task: object
    decode: DecodeConfig | None  # None for the text model (perplexity)
    static_smoothing: StaticSmoothing | None = None
    notes: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SampleSizes:
    """Prompts per exact-match row and windows x mask draws per perplexity row."""

    exact_match_prompts: int = 500
    perplexity_windows: int = 64
    perplexity_mask_draws: int = 4
    batch_size: int = 250
    seed: int = 1234


def exact_match(model: MaskedDiffusionTransformer, task, decode: DecodeConfig, cache_factory,
                n_prompts: int, seed: int, batch_size: int) -> dict:
    """Exact match and token accuracy of `generate` with a KV cache factory on seeded prompts."""
    if decode.gen_length != task.answer_length:
        raise ValueError(f"decoding gen_length={decode.gen_length} but task {task.name!r} answers have "
                         f"{task.answer_length} tokens")
    prompts, answers = task.sample(n_prompts, torch.Generator().manual_seed(seed))
    predicted = []
    with observe_queries(model):
        for first in range(0, n_prompts, batch_size):
            result = generate(model, prompts[first:first + batch_size], decode, cache_factory=cache_factory)
            predicted.append(result.tokens[:, task.prompt_length:])
    predicted = torch.cat(predicted)
    rows = (predicted == answers).all(dim=1)
    return {
        "exact_match": rows.float().mean().item(),
        "token_accuracy": (predicted == answers).float().mean().item(),
        "n": n_prompts,
        "correct": rows.tolist(),  # per prompt, for paired comparisons of methods on the same prompts
    }


def kv_perplexity(model: MaskedDiffusionTransformer, corpus: CharCorpus, cache_factory, n_windows: int,
                  n_mask_draws: int, seed: int, batch_size: int = 64) -> dict:
    """`CharCorpus.perplexity` (same seeded windows and masks) with the K/V of each forward pass
    going through a fresh cache from `cache_factory` (None: no cache, the plain model)."""
    generator = torch.Generator().manual_seed(seed)
    length = corpus.window_length
    windows = corpus.sample_windows(n_windows, length, generator, split="validation")
    windows = windows.repeat_interleave(n_mask_draws, dim=0)
    positions = torch.arange(length)
    total = 0.0
    with torch.no_grad(), observe_queries(model):
        for first in range(0, windows.shape[0], batch_size):
            x = windows[first:first + batch_size]
            n_masked = torch.randint(1, length + 1, (x.shape[0],), generator=generator)
            ranks = torch.rand(x.shape, generator=generator).argsort(dim=1).argsort(dim=1)
            masked = ranks < n_masked[:, None]
            noisy = torch.where(masked, torch.full_like(x, corpus.mask_id), x)
            cache = None if cache_factory is None else cache_factory(model.config, x.shape[0], length)
            logits = model(noisy, positions, cache).float()
            nll = F.cross_entropy(logits.transpose(1, 2), x, reduction="none")
            total += ((nll * masked).sum(dim=1) * length / n_masked).sum().item()
    nll_per_char = total / (windows.shape[0] * length)
    return {"perplexity": math.exp(nll_per_char), "nll_per_char": nll_per_char, "n": windows.shape[0]}


def _ci95(p: float, n: int) -> float:
    return 1.96 * math.sqrt(max(p * (1 - p), 0.0) / n)


def evaluate_method(entry: ModelUnderTest, method: str, bits: int, cache: str, sizes: SampleSizes,
                    options: dict | None = None) -> dict:
    """One row: accuracy of `entry` with `method` at `bits` in cache mode `cache`."""
    options = dict(options or {})
    if method.startswith("static") and "smoothing" not in options:
        if entry.static_smoothing is None:
            raise ValueError(f"model {entry.label!r} has no static smoothing factors; calibrate first")
        options["smoothing"] = entry.static_smoothing
    spec = get_method(method)
    row = {
        "model": entry.label, "task": entry.task.name, "method": method, "storage": spec.storage,
        "bits": bits, "cache": cache if entry.decode is not None else "full",
        "window": options.get("window", "block") if entry.decode is not None else "none",
        "metric": "exact_match" if entry.decode is not None else "perplexity",
        "value": None, "token_accuracy": None, "ci95": None, "n": None, "status": "ok",
        "bytes_per_token": None, "seconds": 0.0,
    }
    if not spec.supports(bits):
        row["status"] = f"n/a: {method} has no {bits}-bit format"
        return row
    row["bytes_per_token"] = kv_bytes_per_token(method, bits, entry.model.config)
    start = time.perf_counter()
    if entry.decode is None:
        factory = make_cache_factory(method, bits, decode=None, **options)
        result = kv_perplexity(entry.model, entry.task, factory, sizes.perplexity_windows,
                               sizes.perplexity_mask_draws, sizes.seed)
        row.update(value=result["perplexity"], n=result["n"])
    else:
        decode = replace(entry.decode, cache=cache)
        factory = make_cache_factory(method, bits, decode=decode, **options)
        result = exact_match(entry.model, entry.task, decode, factory, sizes.exact_match_prompts, sizes.seed,
                             sizes.batch_size)
        row.update(value=result["exact_match"], token_accuracy=result["token_accuracy"], n=result["n"],
                   ci95=_ci95(result["exact_match"], result["n"]))
    row["seconds"] = time.perf_counter() - start
    return row


def row_key(row: dict) -> tuple:
    """What identifies a grid row (used to resume an interrupted grid)."""
    return row["model"], row["method"], row["bits"], row["cache"], row["window"]


def run_accuracy_grid(
    entries: list[ModelUnderTest],
    methods: tuple[str, ...] = DEFAULT_METHODS,
    bits: tuple[int, ...] = DEFAULT_BITS,
    cache_modes: tuple[str, ...] = DEFAULT_CACHE_MODES,
    sizes: SampleSizes = SampleSizes(),
    method_options: dict[str, dict] | None = None,
    progress=None,
    done: dict[tuple, dict] | None = None,
) -> list[dict]:
    """Rows for every model x method x bits x cache mode (the text model has one 'full' mode).

    16 bits is only the bf16 baseline; other (method, bits) pairs a layout cannot hold come
    back as 'n/a' rows. `method_options` maps a method name to extra options (e.g. BAOS's).
    `progress(row)` is called after each newly computed row; rows whose `row_key` is in
    `done` are taken from there instead of being recomputed.
    """
    method_options = method_options or {}
    done = done or {}
    for method in methods:
        get_method(method)
    rows = []
    for entry in entries:
        modes = cache_modes if entry.decode is not None else ("full",)
        for method in methods:
            options = method_options.get(method) or {}
            for width in bits:
                if width == 16 and method != "bf16" or method == "bf16" and width != 16:
                    continue
                for cache in modes:
                    window = options.get("window", "block") if entry.decode is not None else "none"
                    key = (entry.label, method, width, cache if entry.decode is not None else "full", window)
                    if key in done:
                        rows.append(done[key])
                        continue
                    row = evaluate_method(entry, method, width, cache, sizes, options)
                    rows.append(row)
                    if progress is not None:
                        progress(row)
    return rows


def prepare_model(label: str, model: MaskedDiffusionTransformer, task, decode: DecodeConfig | None,
                  npu_config: NPUConfig | None) -> ModelUnderTest:
    """Put a trained model into the NPU's arithmetic (if a config is given) for the grid."""
    model = model.eval() if npu_config is None else with_npu_numerics(model, npu_config)
    notes = {"npu_config": None if npu_config is None else npu_config.name,
             "weights": None if npu_config is None else npu_config.formats.weights}
    return ModelUnderTest(label, model, task, decode, notes=notes)


def model_bytes_table(methods: tuple[str, ...], bits: tuple[int, ...], model_config: ModelConfig) -> list[dict]:
    """KV bytes per token of each supported (method, bits) for one model shape (e.g. LLaDA-8B)."""
    rows = []
    for method in methods:
        for width in bits:
            if get_method(method).supports(width):
                rows.append({"model": model_config.name, "method": method, "bits": width,
                             "bytes_per_token": kv_bytes_per_token(method, width, model_config)})
    return rows


def _cell(row: dict) -> str:
    if row["status"] != "ok":
        return "n/a"
    if row["metric"] == "perplexity":
        return f"{row['value']:.3f}"
    return f"{100 * row['value']:.1f}"


def accuracy_markdown(rows: list[dict]) -> str:
    """Markdown tables, one per (model, cache mode): methods down, bit widths across.

    Exact match in percent (ci95 of one cell in the heading) or perplexity per character.
    """
    out = []
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["cache"]), []).append(row)
    for (model, cache), group in groups.items():
        widths = sorted({r["bits"] for r in group}, reverse=True)
        methods = list(dict.fromkeys(r["method"] for r in group))
        ci = [r["ci95"] for r in group if r.get("ci95") is not None]
        note = f", exact match %, n={group[0]['n']}, ci95 up to +-{100 * max(ci):.1f}" if ci else ", perplexity"
        out.append(f"**{model}**, cache {cache}{note}\n")
        out.append("| method | " + " | ".join(f"{w}-bit" for w in widths) + " |")
        out.append("|---|" + "---|" * len(widths))
        for method in methods:
            cells = {r["bits"]: _cell(r) for r in group if r["method"] == method}
            out.append(f"| {method} | " + " | ".join(cells.get(w, "") for w in widths) + " |")
        out.append("")
    return "\n".join(out)
