"""What the stages of several rule files share (as workflow/rules/common.smk does for the rules):
reading a model preset that must be trainable, its decoding recipe, and evaluation prompts."""

from __future__ import annotations

from pathlib import Path

from npu.config import ConfigError
from npu.models.presets import ModelSpec, load_model_spec


def trained_spec(preset: str | Path) -> ModelSpec:
    """The model preset, which must carry a task and a training recipe."""
    spec = load_model_spec(preset)
    if not spec.trainable:
        raise ConfigError(f"{spec.source}: model {spec.name!r} has no 'task'/'training' section, so it cannot be trained")
    return spec


def decode_config(spec: ModelSpec, **overrides):
    """The preset's decoding recipe as a DecodeConfig (with overrides); a bad recipe names the file."""
    from npu.models.decoding import DecodeConfig

    if spec.decoding is None:
        raise ConfigError(f"{spec.source}: model {spec.name!r} has no 'decoding' section")
    try:
        return DecodeConfig(**(spec.decoding | overrides))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{spec.source}: key 'decoding': {exc}") from None


def evaluation_prompts(task, gen_length: int, n: int, seed: int):
    """Prompts for generation: a task's own prompts, or for a text corpus the start of
    validation windows with the rest (gen_length characters) left to generate."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    if hasattr(task, "prompt_length"):
        prompts, _ = task.sample(n, generator)
        return prompts
    windows = task.sample_windows(n, task.window_length, generator, split="validation")
    return windows[:, : task.window_length - gen_length]
