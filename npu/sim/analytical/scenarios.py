"""The generations the pipeline evaluates a model on with the analytical models.

- `ScenarioSettings`: the experiment settings (config.yaml `analytical:`);
- `generation_recipe(preset)`: gen_length, block_length and steps of a model's generation;
- `model_scenarios(preset)`: the model's architecture and one `GenerationSetup` per (cache mode,
  commit rule);
- `kv_traffic_of_generation(machine, model, setup)`: a generation's DRAM bytes, the K/V share apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from npu.models.decoding import DecodeConfig
from npu.models.presets import load_model_spec
from npu.models.transformer import ModelConfig
from npu.sim.analytical.baselines import FAST_DLLM_PROMPT
from npu.sim.analytical.generation import GenerationSetup, StepModel, step_schedule

RECIPE_KEYS = ("gen_length", "block_length", "steps")


@dataclass(frozen=True)
class ScenarioSettings:
    """The experiment settings of the analytical generations (config.yaml `analytical:`).

    - `threshold_tokens_per_step`: tokens the threshold rule (confidence 0.9) commits per step on
      average (Fast-dLLM, arXiv 2505.22618, reports 2-3.5 on GSM8K for LLaDA);
    - `public_shape_generation`: prompt_length, gen_length, block_length, steps of the shape-only
      models - a GSM8K-like few-shot prompt, 256 tokens in blocks of 32 (Fast-dLLM's setting);
    - `text_generation`: gen_length, block_length, steps of trained models without a decoding
      recipe (the text-corpus model).
    """

    threshold_tokens_per_step: float = 2.5
    public_shape_generation: dict = field(default_factory=lambda: {
        "prompt_length": FAST_DLLM_PROMPT, "gen_length": 256, "block_length": 32, "steps": 256})
    text_generation: dict = field(default_factory=lambda: {"gen_length": 32, "block_length": 8, "steps": 32})

    def __post_init__(self) -> None:
        if not self.threshold_tokens_per_step > 0:
            raise ValueError(f"threshold_tokens_per_step must be positive, got {self.threshold_tokens_per_step}")
        for name, keys in (("public_shape_generation", ("prompt_length", *RECIPE_KEYS)), ("text_generation", RECIPE_KEYS)):
            recipe = getattr(self, name)
            if sorted(recipe) != sorted(keys) or not all(isinstance(recipe[k], int) and recipe[k] > 0 for k in keys):
                raise ValueError(f"{name} needs positive integers {', '.join(keys)}; got {recipe}")


def generation_recipe(preset: str | Path, settings: ScenarioSettings = ScenarioSettings()) -> dict:
    """gen_length, block_length and steps of the generation a model is evaluated on: its
    preset's decoding recipe, else `settings.text_generation` for a trained model, else
    `settings.public_shape_generation`."""
    spec = load_model_spec(preset)
    if spec.decoding is not None:
        return {key: spec.decoding[key] for key in RECIPE_KEYS}
    source = settings.text_generation if spec.trainable else settings.public_shape_generation
    return {key: source[key] for key in RECIPE_KEYS}


def model_scenarios(preset: str | Path, settings: ScenarioSettings = ScenarioSettings(),
                    caches: tuple[str, ...] = ("none", "prefix", "dual")) -> tuple[ModelConfig, list[GenerationSetup]]:
    """The generations a model is evaluated on: each cache mode with the top-k schedule and with
    the threshold rule (0.9) committing `settings.threshold_tokens_per_step` tokens per step on
    average. Trained models: their task's prompt; shape-only models: the public-shape prompt.
    """
    spec = load_model_spec(preset)
    model = spec.architecture
    recipe = generation_recipe(preset, settings)
    if spec.trainable:
        from npu.models.tasks import get_task

        task = get_task(spec.task)
        prompt = getattr(task, "prompt_length", model.max_seq_len - recipe["gen_length"])
    else:
        prompt = settings.public_shape_generation["prompt_length"]
    setups = []
    block = recipe["block_length"]
    for cache in caches:
        setups.append(GenerationSetup(prompt, DecodeConfig(cache=cache, **recipe)))
        steps = min(float(block), max(1.0, block / settings.threshold_tokens_per_step))
        setups.append(GenerationSetup(prompt, DecodeConfig(cache=cache, threshold=0.9, **recipe), steps))
    return model, setups


def kv_traffic_of_generation(machine: StepModel, model: ModelConfig, setup: GenerationSetup) -> dict:
    """DRAM bytes of a whole generation: KV reads (attention operators), KV writes (kv_write
    operators), and everything."""
    reads = writes = total = 0.0
    for shape, count in step_schedule(setup):
        for op in machine.step(model, shape).operators:
            total += count * op.dram_bytes
            if op.kind == "attention":
                reads += count * op.dram_bytes
            elif op.kind == "kv_write":
                writes += count * op.dram_bytes
    return {"kv_read_bytes": reads, "kv_write_bytes": writes, "dram_bytes": total}
