"""Pipeline stages of the KV-quantization work: one function per Snakemake rule.

Each stage reads checkpoints (and presets), computes, and writes its outputs atomically:
- `calibrate_stage`: static key-smoothing factors of one model (JSON);
- `accuracy_stage`: the accuracy grid over models x methods x bits x cache modes (TSV + JSON);
- `ablation_stage`: the BAOS design ablation on one model (TSV);
- `kv_analysis_stage`: K/V distribution statistics (TSV) and figure (PNG);
- `llada_fidelity_stage`: the same methods on a local LLaDA / Dream checkpoint directory,
  scored by agreement with the 16-bit-KV generation (no labelled task is available offline).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from npu.hw.config import load_npu_config
from npu.io import write_json, write_tsv
from npu.models.checkpoint import load_checkpoint
from npu.models.decoding import DecodeConfig, generate
from npu.models.tasks import get_task
from npu.quant.accuracy import (
    DEFAULT_BITS,
    DEFAULT_CACHE_MODES,
    DEFAULT_METHODS,
    ModelUnderTest,
    SampleSizes,
    evaluate_method,
    prepare_model,
    row_key,
    run_accuracy_grid,
)
from npu.quant.calibration import calibrate_static_smoothing
from npu.quant.kv_analysis import kv_statistics, trace_for_decode, write_kv_figure
from npu.quant.methods import get_method, make_cache_factory
from npu.quant.observe import observe_queries
from npu.quant.outliers import OutlierSpec, inject_kv_outliers
from npu.quant.smoothing import StaticSmoothing


@dataclass(frozen=True)
class ModelSource:
    """A checkpoint to evaluate, optionally reparametrised with LLM-like outlier channels."""

    checkpoint_dir: str
    label: str
    outliers: OutlierSpec | None = None


def _task_and_decode(meta: dict, preset: str | None, where: str):
    """Task and decoding recipe from a preset name, else from the checkpoint's recorded preset."""
    if preset is not None:
        from npu.models.presets import load_model_spec

        spec = load_model_spec(preset)
        task_spec, decoding = spec.task, spec.decoding
    else:
        recorded = meta.get("extra", {}).get("preset", {})
        task_spec, decoding = recorded.get("task"), recorded.get("decoding")
    if task_spec is None:
        raise ValueError(f"{where}: no task recorded in the checkpoint and no preset given")
    task = get_task(task_spec)
    decode = None
    if task.name != "text":
        if decoding is None:
            raise ValueError(f"{where}: task {task.name!r} needs a 'decoding' recipe in its preset")
        decode = DecodeConfig(**decoding)
    return task, decode


def load_model_under_test(source: ModelSource, npu_config_name: str | None = "dnpu-cloud",
                          preset: str | None = None) -> ModelUnderTest:
    """Checkpoint -> (optionally outlier-injected) model in the NPU's arithmetic, with its task,
    decoding recipe and freshly calibrated static smoothing factors."""
    model, meta = load_checkpoint(source.checkpoint_dir)
    task, decode = _task_and_decode(meta, preset, source.checkpoint_dir)
    if source.outliers is not None:
        model = inject_kv_outliers(model, source.outliers)
    npu_config = None if npu_config_name is None else load_npu_config(npu_config_name)
    entry = prepare_model(source.label, model, task, decode, npu_config)
    entry.static_smoothing = calibrate_static_smoothing(entry.model, task, decode)
    entry.notes["checkpoint"] = str(source.checkpoint_dir)
    return entry


def calibrate_stage(checkpoint_dir: str | Path, out_json: str | Path, preset: str | None = None,
                    n_sequences: int = 64, alpha: float = 0.5, npu_config: str | None = "dnpu-cloud") -> Path:
    """Static key-smoothing factors of one trained model, as JSON (StaticSmoothing.save)."""
    entry = load_model_under_test(ModelSource(str(checkpoint_dir), Path(checkpoint_dir).name), npu_config, preset)
    smoothing = calibrate_static_smoothing(entry.model, entry.task, entry.decode, n_sequences, alpha=alpha)
    return smoothing.save(out_json)


def accuracy_stage(
    sources: list[ModelSource],
    out_tsv: str | Path,
    out_json: str | Path | None = None,
    npu_config: str | None = "dnpu-cloud",
    methods: tuple[str, ...] = DEFAULT_METHODS,
    bits: tuple[int, ...] = DEFAULT_BITS,
    cache_modes: tuple[str, ...] = DEFAULT_CACHE_MODES,
    sizes: SampleSizes = SampleSizes(),
    static_factors: dict[str, str] | None = None,
    method_options: dict[str, dict] | None = None,
    log=None,
    journal: str | Path | None = None,
) -> list[dict]:
    """The accuracy grid for every source; rows as TSV (and JSON with the run's settings).

    static_factors maps a source label to a calibration JSON (calibrate_stage) to use instead
    of calibrating on the fly; method_options maps a method to extra options (e.g. a window).
    journal: a JSON-lines file each finished row is appended to; rows already in it are not
    recomputed, so an interrupted grid resumes where it stopped.
    """
    rows = []
    started = time.perf_counter()
    done = _read_journal(journal)

    def record(row: dict) -> None:
        if journal is not None:
            with open(journal, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
        if log is not None:
            log(row)

    for source in sources:
        entry = load_model_under_test(source, npu_config)
        if static_factors and source.label in static_factors:
            entry.static_smoothing = StaticSmoothing.load(static_factors[source.label])
        rows += run_accuracy_grid([entry], methods, bits, cache_modes, sizes, method_options, record, done)
    write_tsv(out_tsv, rows)
    if out_json is not None:
        write_json(out_json, {
            "npu_config": npu_config, "sizes": sizes.__dict__, "methods": list(methods), "bits": list(bits),
            "cache_modes": list(cache_modes), "method_options": method_options or {},
            "seconds": time.perf_counter() - started,
            "sources": [{"label": s.label, "checkpoint": s.checkpoint_dir,
                         "outliers": None if s.outliers is None else s.outliers.__dict__} for s in sources],
            "rows": rows,
        })
    return rows


def _read_journal(journal: str | Path | None) -> dict[tuple, dict]:
    """Rows of an accuracy journal by row_key; a torn last line (killed mid-write) is ignored."""
    if journal is None or not Path(journal).is_file():
        return {}
    done = {}
    for line in Path(journal).read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        done[row_key(row)] = row
    return done


# Each ablation variant changes one thing from the BAOS default of each layout (per-block refresh
# statistics, alpha searched over {0, .25, .5, .75} by attention-weighted error, values smoothed,
# block window; MX: pow2 factors + shift, INT: fp factors, no shift). Variants that restate a
# layout's default are marked so; they double as a repeat of the default row.
BAOS_ABLATION: dict[str, dict] = {
    "default": {},
    "no per-block adaptation (first block's factors)": {"adaptation": "first"},
    "fixed alpha 0.5": {"alphas": (0.5,)},
    "alpha 0 (no smoothing)": {"alphas": (0.0,)},
    "per-step statistics": {"statistics": "step"},
    "mse criterion": {"criterion": "mse"},
    "attention-max criterion": {"criterion": "attention-max"},
    "RoPE-paired key factors": {"rope_paired": True},
    "pow2 scales (MX default)": {"scale": "pow2"},
    "fp scales (INT default)": {"scale": "fp"},
    "shift on (MX default)": {"shift": True},
    "shift off (INT default)": {"shift": False},
    "no value smoothing": {"smooth_values": False},
    "no block window": {"window": "none"},
}


def ablation_stage(source: ModelSource, out_tsv: str | Path, bits: tuple[int, ...] = (4, 3, 2),
                   storages: tuple[str, ...] = ("baos-int", "baos-mxint"), cache: str = "dual",
                   variants: dict[str, dict] | None = None, npu_config: str | None = "dnpu-cloud",
                   sizes: SampleSizes = SampleSizes(), log=None, journal: str | Path | None = None) -> list[dict]:
    """BAOS variants x storage layouts x bits on one model, as TSV rows with a 'variant' column
    (journal: as in accuracy_stage, keyed by variant too)."""
    entry = load_model_under_test(source, npu_config)
    done = {(row["variant"],) + key: row for key, row in _read_journal(journal).items()}
    rows = []
    for name, options in (variants or BAOS_ABLATION).items():
        for method in storages:
            for width in bits:
                if not get_method(method).supports(width):
                    continue
                key = (name, source.label, method, width, cache, options.get("window", "block"))
                if key in done:
                    rows.append(done[key])
                    continue
                row = {"variant": name, **evaluate_method(entry, method, width, cache, sizes, options)}
                rows.append(row)
                if journal is not None:
                    with open(journal, "a", encoding="utf-8") as handle:
                        handle.write(json.dumps(row) + "\n")
                if log is not None:
                    log(row)
    write_tsv(out_tsv, rows)
    return rows


def kv_analysis_stage(sources: list[ModelSource], out_tsv: str | Path, out_png: str | Path,
                      cache: str = "dual", n_prompts: int = 64, seed: int = 4321,
                      npu_config: str | None = "dnpu-cloud") -> list[dict]:
    """K/V statistics of every source (TSV) and the drift figure (PNG)."""
    traces, rows = [], []
    for source in sources:
        entry = load_model_under_test(source, npu_config)
        decode = entry.decode
        if decode is None:  # the text model: decode the second half of validation windows
            model_spec = {"gen_length": entry.task.window_length // 2, "block_length": entry.task.window_length // 8}
            decode = DecodeConfig(model_spec["gen_length"], model_spec["block_length"], model_spec["gen_length"])
        trace = trace_for_decode(entry.model, entry.task, decode, cache, n_prompts, seed, source.label)
        traces.append(trace)
        rows += kv_statistics(trace)
    write_tsv(out_tsv, rows)
    write_kv_figure(traces, out_png)
    return rows


def llada_fidelity_stage(
    checkpoint_dir: str | Path,
    out_tsv: str | Path,
    methods: tuple[str, ...] = ("int", "kivi", "mxint", "hadamard-int", "baos-int", "baos-mxint"),
    bits: tuple[int, ...] = (4, 3, 2),
    cache: str = "dual",
    n_prompts: int = 4,
    prompt_length: int = 32,
    gen_length: int = 32,
    block_length: int = 8,
    prompts_json: str | Path | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> list[dict]:
    """KV methods on a local LLaDA / Dream checkpoint (npu.models.loading.load_pretrained).

    Without a tokenizer or labelled task offline, the score is fidelity to the 16-bit KV run:
    the fraction of generated tokens (and whole sequences) equal to the bf16-KV generation of
    the same prompts. Prompts are token-id lists from `prompts_json` (a JSON list of lists of
    equal length) or seeded random ids (never [MASK]).
    """
    from npu.models.loading import load_pretrained

    model = load_pretrained(checkpoint_dir, dtype=dtype)
    config = model.config
    if prompts_json is not None:
        prompts = torch.tensor(json.loads(Path(prompts_json).read_text(encoding="utf-8")), dtype=torch.long)
        if prompts.dim() != 2:
            raise ValueError(f"{prompts_json}: expected a JSON list of equal-length token-id lists")
    else:
        generator = torch.Generator().manual_seed(seed)
        prompts = torch.randint(0, config.vocab_size - 1, (n_prompts, prompt_length), generator=generator)
        prompts = torch.where(prompts >= config.mask_token_id, prompts + 1, prompts)
    decode = DecodeConfig(gen_length, block_length, gen_length, cache=cache)
    start = prompts.shape[1]

    def run(method: str, width: int) -> torch.Tensor:
        factory = make_cache_factory(method, width, decode=decode)
        with observe_queries(model):
            return generate(model, prompts, decode, cache_factory=factory).tokens[:, start:]

    reference = run("bf16", 16)
    rows = []
    for method in methods:
        for width in bits:
            row = {"checkpoint": str(checkpoint_dir), "method": method, "bits": width, "cache": cache,
                   "token_agreement": None, "sequence_agreement": None, "status": "ok"}
            if not get_method(method).supports(width):
                row["status"] = f"n/a: {method} has no {width}-bit format"
            else:
                out = run(method, width)
                row["token_agreement"] = (out == reference).float().mean().item()
                row["sequence_agreement"] = (out == reference).all(dim=1).float().mean().item()
            rows.append(row)
    write_tsv(out_tsv, rows)
    return rows


def default_sources(checkpoints: dict[str, str], outlier_label_suffix: str = "+outliers",
                    with_outliers: tuple[str, ...] = ()) -> list[ModelSource]:
    """Sources for labelled checkpoints, plus outlier-injected copies of the labels listed."""
    sources = [ModelSource(path, label) for label, path in checkpoints.items()]
    sources += [ModelSource(checkpoints[label], label + outlier_label_suffix, OutlierSpec()) for label in with_outliers]
    return sources


def quick_sizes(prompts: int) -> SampleSizes:
    """SampleSizes with a different number of exact-match prompts (tests, smoke runs)."""
    return replace(SampleSizes(), exact_match_prompts=prompts, batch_size=min(prompts, 250))
