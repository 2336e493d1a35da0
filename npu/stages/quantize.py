"""Stages of workflow/rules/quantize.smk: the KV-cache quantization study.

Each stage reads checkpoints (and presets), computes, and writes its outputs atomically:
- `calibrate_stage` (rule calibrate): static key-smoothing factors of one model (JSON);
- `accuracy_stage` (rule accuracy): the accuracy grid over models x methods x bits x cache modes
  (TSV + JSON);
- `ablation_stage` (rule baos_ablation): the BAOS design ablation on one model (TSV);
- `exact_accuracy_stage` (rule accuracy_exact): exact match in the NPU's own arithmetic next to
  the fast accuracy simulator's (npu.check.exact);
- `kv_analysis_stage` (rule kv_analysis): K/V distribution statistics (TSV) and figure (PNG);
- `kv_traffic_stage` (rule kv_traffic): KV DRAM bytes per generated token per method, from the
  analytical NPU model (npu.quant.traffic);
- `llada_fidelity_stage` (no rule): the same methods on a local LLaDA / Dream checkpoint
  directory, scored by agreement with the 16-bit-KV generation (no labelled task offline).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from npu.io import write_json, write_tsv
from npu.quant.accuracy import DEFAULT_BITS, DEFAULT_CACHE_MODES, DEFAULT_METHODS, SampleSizes
from npu.quant.experiments import (BAOS_ABLATION, ModelSource, load_model_under_test, quick_sizes, read_journal,
                                   study_method_options)


def labelled_values(values: list[str], option: str, what: str) -> dict[str, str]:
    """LABEL -> value from `LABEL=VALUE` arguments, naming the option of a malformed one."""
    pairs = {}
    for value in values:
        label, sep, path = value.partition("=")
        if not sep or not label or not path:
            raise ValueError(f"{option} expects LABEL={what}, got {value!r}")
        pairs[label] = path
    return pairs


def model_sources(checkpoints: list[str], outliers: list[str] = (), presets: list[str] = ()) -> dict[str, ModelSource]:
    """LABEL -> ModelSource from `LABEL=CHECKPOINT_DIR` values, `LABEL=PRESET` values (the task
    and decoding recipe to use; default: the preset recorded at training) and the labels to also
    evaluate with LLM-like K/V outlier channels injected (as `LABEL+outliers`)."""
    from npu.quant.outliers import OutlierSpec

    preset_of = labelled_values(presets, "--preset", "MODEL_PRESET")
    sources = {label: ModelSource(path, label, preset=preset_of.get(label))
               for label, path in labelled_values(checkpoints, "--checkpoint", "CHECKPOINT_DIR").items()}
    unknown = sorted(set(preset_of) - set(sources))
    if unknown:
        raise ValueError(f"--preset {unknown[0]!r}: no --checkpoint has that label (known: {', '.join(sources)})")
    for label in outliers:
        if label not in sources:
            raise ValueError(f"--outliers {label!r}: no --checkpoint has that label (known: {', '.join(sources)})")
        sources[f"{label}+outliers"] = ModelSource(sources[label].checkpoint_dir, f"{label}+outliers", OutlierSpec(),
                                                   sources[label].preset)
    return sources


def set_threads(threads: int) -> None:
    """PyTorch's intra-op thread count for the stage's process."""
    import torch

    torch.set_num_threads(threads)


def calibrate_stage(checkpoint_dir: str | Path, out_json: str | Path, preset: str | None = None,
                    n_sequences: int = 64, alpha: float = 0.5, npu_config: str | None = "dnpu-cloud") -> Path:
    """Static key-smoothing factors of one trained model, as JSON (StaticSmoothing.save)."""
    from npu.quant.calibration import calibrate_static_smoothing

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
    out_markdown: str | Path | None = None,
) -> list[dict]:
    """The accuracy grid for every source; rows as TSV (and JSON with the run's settings).

    static_factors maps a source label to a calibration JSON (calibrate_stage) to use instead
    of calibrating on the fly; method_options maps a method to extra options (e.g. a window).
    journal: a JSON-lines file each finished row is appended to; rows already in it are not
    recomputed, so an interrupted grid resumes where it stopped. out_markdown: one table per
    model and cache mode.
    """
    from npu.quant.accuracy import run_accuracy_grid
    from npu.quant.smoothing import StaticSmoothing

    rows = []
    started = time.perf_counter()
    done = read_journal(journal)

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
    if out_markdown is not None:
        from npu.io import atomic_write_text
        from npu.quant.accuracy import accuracy_markdown

        atomic_write_text(out_markdown, accuracy_markdown(rows))
    return rows


def ablation_stage(source: ModelSource, out_tsv: str | Path, bits: tuple[int, ...] = (4, 3, 2),
                   storages: tuple[str, ...] = ("baos-int", "baos-mxint"), cache: str = "dual",
                   variants: dict[str, dict] | None = None, npu_config: str | None = "dnpu-cloud",
                   sizes: SampleSizes = SampleSizes(), log=None, journal: str | Path | None = None) -> list[dict]:
    """BAOS variants x storage layouts x bits on one model, as TSV rows with a 'variant' column
    (journal: as in accuracy_stage, keyed by variant too)."""
    from npu.quant.accuracy import evaluate_method
    from npu.quant.methods import get_method

    entry = load_model_under_test(source, npu_config)
    done = {(row["variant"],) + key: row for key, row in read_journal(journal).items()}
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


def exact_accuracy_stage(sources: list[ModelSource], npu_name: str | Path, bits: tuple[int, ...], n_prompts: int,
                         out_tsv: str | Path, seed: int = 1234, log=print) -> Path:
    """The exact-mode table of every task model (text corpora have no exact-match task: skipped;
    outlier-injected copies are not models the NPU reference runs: skipped)."""
    from npu.check.exact import exact_accuracy
    from npu.models.checkpoint import load_checkpoint
    from npu.models.tasks import get_task
    from npu.quant.experiments import task_and_decoding

    rows = []
    for source in sources:
        if source.outliers is not None:
            continue
        _, meta = load_checkpoint(source.checkpoint_dir)
        recipe = task_and_decoding(meta, source.preset, source.checkpoint_dir)
        if not hasattr(get_task(recipe[0]), "exact_match"):
            log(f"{source.label}: a text corpus, no exact-match task; skipped")
            continue
        rows += exact_accuracy(source.label, source.checkpoint_dir, npu_name, bits, n_prompts, seed, log, recipe)
    if not rows:
        raise ValueError("exact mode: none of the models has an exact-match task")
    return write_tsv(out_tsv, rows)


def kv_analysis_stage(sources: list[ModelSource], out_tsv: str | Path, out_png: str | Path,
                      cache: str = "dual", n_prompts: int = 64, seed: int = 4321,
                      npu_config: str | None = "dnpu-cloud", channels_tsv: str | Path | None = None) -> list[dict]:
    """K/V statistics of every source (TSV), the per-channel maxima of each block's refresh in the
    last layer (`channels_tsv`, default kv_channels.tsv next to out_tsv) and the drift figure
    drawn from those two tables (PNG, npu.plots.kv)."""
    from npu.models.decoding import DecodeConfig
    from npu.plots.kv import kv_drift_figure
    from npu.quant.kv_analysis import channel_maxima, kv_statistics, trace_for_decode

    channels_tsv = Path(out_tsv).with_name("kv_channels.tsv") if channels_tsv is None else Path(channels_tsv)
    channels, rows = [], []
    for source in sources:
        entry = load_model_under_test(source, npu_config)
        decode = entry.decode
        if decode is None:  # the text model: decode the second half of validation windows
            model_spec = {"gen_length": entry.task.window_length // 2, "block_length": entry.task.window_length // 8}
            decode = DecodeConfig(model_spec["gen_length"], model_spec["block_length"], model_spec["gen_length"])
        print(f"kv_analysis {source.label}: decoding {n_prompts} prompts ({cache} cache) ...", file=sys.stderr, flush=True)
        trace = trace_for_decode(entry.model, entry.task, decode, cache, n_prompts, seed, source.label)
        channels += channel_maxima(trace)
        rows += kv_statistics(trace)
    write_tsv(out_tsv, rows)
    write_tsv(channels_tsv, channels)
    kv_drift_figure(out_tsv, out_png, channels_tsv)
    return rows


def kv_traffic_rows(npu_name: str | Path, model_names: tuple[str | Path, ...], methods: tuple[str, ...],
                    bits: tuple[int, ...], caches: tuple[str, ...] = ("prefix", "dual"), settings=None) -> list[dict]:
    """One row per (model, cache mode, method, bits) of the top-k generation of each model; a
    generation with a step the machine cannot run gets NaN figures and the compiler's reason in
    `status`."""
    from npu.compiler.asm import CompileError
    from npu.hw.config import load_npu_config
    from npu.quant.traffic import method_traffic
    from npu.runtime.lowering import step_program
    from npu.sim.analytical.npu_ops import NpuStepModel
    from npu.sim.analytical.scenarios import ScenarioSettings, kv_traffic_of_generation, model_scenarios

    config = load_npu_config(npu_name)
    if config.formats.kv_cache != "bf16":
        raise ValueError(f"{config.source}: formats.kv_cache is {config.formats.kv_cache!r}; the KV traffic "
                         "table scales bf16 traffic and needs a preset that stores K/V in bf16")
    machine = NpuStepModel(config, step_program)  # costs the compiled steps
    rows = []
    for name in model_names:
        model, setups = model_scenarios(name, settings or ScenarioSettings(), caches=caches)
        for setup in setups:
            if setup.decode.threshold is not None:
                continue
            try:
                base, status = kv_traffic_of_generation(machine, model, setup), "ok"
            except CompileError as error:
                base = dict.fromkeys(("kv_read_bytes", "kv_write_bytes", "dram_bytes"), float("nan"))
                status = "not compilable: " + " ".join(str(error).split())
            head = {"npu": config.name, "model": model.name, "cache": setup.decode.cache, "rule": "topk",
                    "prompt_length": setup.prompt_length, "gen_length": setup.decode.gen_length, "status": status}
            rows += [head | entry for entry in
                     method_traffic(base, setup.decode.gen_length, model.head_dim, methods, bits)]
    return rows


def kv_traffic_stage(npu_name: str | Path, model_names: tuple[str | Path, ...], methods: tuple[str, ...],
                     bits: tuple[int, ...], out_tsv: str | Path, caches: tuple[str, ...] = ("prefix", "dual"),
                     settings=None) -> Path:
    """Write the KV traffic table (npu.quant.traffic); settings: npu.sim.analytical.scenarios.ScenarioSettings."""
    return write_tsv(out_tsv, kv_traffic_rows(npu_name, model_names, methods, bits, caches, settings))


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
    dtype: torch.dtype | None = None,
) -> list[dict]:
    """KV methods on a local LLaDA / Dream checkpoint (npu.models.loading.load_pretrained).

    Without a tokenizer or labelled task offline, the score is fidelity to the 16-bit KV run:
    the fraction of generated tokens (and whole sequences) equal to the bf16-KV generation of
    the same prompts. Prompts are token-id lists from `prompts_json` (a JSON list of lists of
    equal length) or seeded random ids (never [MASK]). dtype: the weights' torch dtype (default
    float32).
    """
    import torch

    from npu.models.decoding import DecodeConfig, generate
    from npu.models.loading import load_pretrained
    from npu.quant.methods import get_method, make_cache_factory
    from npu.quant.observe import observe_queries

    model = load_pretrained(checkpoint_dir, dtype=torch.float32 if dtype is None else dtype)
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
