"""Pipeline stages of the analytical model: each one function that writes its tables atomically.

- `simulate_analytical_stage`: per (NPU, model) a TSV of generations - latency per step and per
  token, tokens/s, utilisation, energy per token, DRAM traffic per token, sampling share;
- `gpu_baselines_stage`: the same for the GPU roofline models, the Fast-dLLM A100 check and the
  GPU sampling-share sweep;
- `device_validation_stage`: the device model calibrated on this machine vs measured PyTorch.
"""

from __future__ import annotations

import sys
from pathlib import Path

from npu.hw.config import load_npu_config
from npu.io import write_tsv
from npu.models.decoding import DecodeConfig
from npu.models.presets import load_model_spec
from npu.models.transformer import ModelConfig
from npu.sim.analytical.baselines import (
    FAST_DLLM_PROMPT,
    SAMPLING_CLAIM,
    fast_dllm_check,
    sampling_share_sweep,
)
from npu.sim.analytical.devices import GPU_PRESETS, DeviceModel
from npu.sim.analytical.generation import GenerationSetup, generation_report
from npu.sim.analytical.npu_ops import NpuStepModel

NPU_PRESETS = ("dnpu-cloud", "dnpu-edge", "ar-npu")
MODELS = ("tiny-sort", "tiny-add", "tiny-text", "llada-8b", "dream-7b")
PUBLIC_SHAPE_GENERATION = {"prompt_length": FAST_DLLM_PROMPT, "gen_length": 256, "block_length": 32, "steps": 256}
TEXT_GENERATION = {"gen_length": 32, "block_length": 8, "steps": 32}  # tiny-text: no decoding preset


def generation_recipe(name: str) -> dict:
    """gen_length, block_length and steps of the generation a model is evaluated on: its
    preset's decoding recipe, TEXT_GENERATION for the text model, else PUBLIC_SHAPE_GENERATION."""
    spec = load_model_spec(name)
    if spec.decoding is not None:
        return {key: spec.decoding[key] for key in ("gen_length", "block_length", "steps")}
    source = TEXT_GENERATION if spec.trainable else PUBLIC_SHAPE_GENERATION
    return {key: source[key] for key in ("gen_length", "block_length", "steps")}


def model_scenarios(name: str, threshold_tokens_per_step: float = 2.5,
                    caches: tuple[str, ...] = ("none", "prefix", "dual")) -> tuple[ModelConfig, list[GenerationSetup]]:
    """The generations a model is evaluated on: each cache mode with the top-k schedule and with
    the threshold rule (0.9) committing `threshold_tokens_per_step` tokens per step on average.

    Public-shape models: a GSM8K-like 1000-token prompt, 256 tokens in blocks of 32. Tiny models:
    their task's prompt and their preset's decoding recipe.
    """
    spec = load_model_spec(name)
    model = spec.architecture
    recipe = generation_recipe(name)
    if spec.trainable:
        from npu.models.tasks import get_task

        task = get_task(spec.task)
        prompt = getattr(task, "prompt_length", model.max_seq_len - recipe["gen_length"])
    else:
        prompt = PUBLIC_SHAPE_GENERATION["prompt_length"]
    setups = []
    block = recipe["block_length"]
    for cache in caches:
        setups.append(GenerationSetup(prompt, DecodeConfig(cache=cache, **recipe)))
        steps = min(float(block), max(1.0, block / threshold_tokens_per_step))
        setups.append(GenerationSetup(prompt, DecodeConfig(cache=cache, threshold=0.9, **recipe), steps))
    return model, setups


def simulate_analytical_stage(out_dir: str | Path, npus: tuple[str, ...] = NPU_PRESETS,
                              models: tuple[str, ...] = MODELS, threshold_tokens_per_step: float = 2.5) -> list[Path]:
    """Write out_dir/<npu>__<model>.tsv: one row per (cache mode, commit rule) generation."""
    out_dir = Path(out_dir)
    return [simulate_analytical(npu_name, model_name, out_dir / f"{npu_name}__{model_name}.tsv", threshold_tokens_per_step)
            for npu_name in npus for model_name in models]


def simulate_analytical(npu_name: str, model_name: str, out: str | Path, threshold_tokens_per_step: float = 2.5,
                        compile_table: str | Path | None = None) -> Path:
    """One (NPU, model) table: a row per (cache mode, commit rule) generation, with figures only
    where the compiler accepts the model (its compile.tsv when given; see npu.check.fits)."""
    from npu.check.fits import analytical_rows

    npu_config = load_npu_config(npu_name)
    model, setups = model_scenarios(model_name, threshold_tokens_per_step)
    rows = analytical_rows(NpuStepModel(npu_config), npu_config, model, setups, compile_table)
    print(f"analytical {npu_name} {model_name}: " + ", ".join(
        f"{r['cache']}/{r['rule']} " + (f"{r['tokens_per_s']:.3g} tok/s" if r["status"] == "ok" else r["status"])
        for r in rows), file=sys.stderr)
    return write_tsv(out, rows)


def gpu_baselines_stage(out_dir: str | Path, models: tuple[str, ...] = ("llada-8b", "dream-7b"),
                        threshold_tokens_per_step: float = 2.5) -> list[Path]:
    """Write gpu_generations.tsv, fast_dllm_check.tsv and gpu_sampling_share.tsv to out_dir."""
    out_dir = Path(out_dir)
    rows = []
    configs = {}
    for model_name in models:
        model, setups = model_scenarios(model_name, threshold_tokens_per_step)
        configs[model_name] = model
        for spec in GPU_PRESETS.values():
            shared: dict = {}
            rows += [generation_report(DeviceModel(spec), model, setup, shared).row() for setup in setups]
    check = fast_dllm_check(load_model_spec("llada-8b").architecture)
    sweep = sampling_share_sweep(configs)
    peak = max(sweep, key=lambda row: row["sampling_share"])
    print(f"gpu baselines: Fast-dLLM A100 check {[(r['rates'], r['configuration'], round(r['predicted_tok_s'], 1)) for r in check]}; "
          f"largest GPU sampling share {peak['sampling_share']:.1%} ({peak['gpu']}, {peak['model']}, "
          f"T={peak['temperature']}, {peak['cache']}) vs the claimed {SAMPLING_CLAIM:.0%}", file=sys.stderr)
    return [write_tsv(out_dir / "gpu_generations.tsv", rows), write_tsv(out_dir / "fast_dllm_check.tsv", check),
            write_tsv(out_dir / "gpu_sampling_share.tsv", sweep)]


def device_validation_stage(out_dir: str | Path, device: str = "cpu", scale: float = 1.0, rounds: int = 2) -> list[Path]:
    """Calibrate the device model on this machine, predict and measure the validation kernels;
    write device_calibration.tsv and device_validation.tsv to out_dir."""
    from npu.sim.analytical.validation import error_summary, validate

    calibration, rows = validate(device, scale=scale, rounds=rounds)
    summary = error_summary(rows)
    print("device validation: mean |error| " + ", ".join(f"{k} {v:.1%}" for k, v in summary.items()), file=sys.stderr)
    out_dir = Path(out_dir)
    return [write_tsv(out_dir / "device_calibration.tsv", calibration.rows()),
            write_tsv(out_dir / "device_validation.tsv", [row.to_dict() for row in rows])]
