"""Model presets: `config/models/<name>.yaml` turned into a validated `ModelSpec`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from npu.config import ConfigError, load_validated_yaml, preset_path, seed_variant_preset
from npu.models.transformer import ModelConfig


@dataclass(frozen=True)
class ModelSpec:
    """Everything a preset file says about one model."""

    name: str
    source: Path
    architecture: ModelConfig
    task: dict | None = None
    training: dict | None = None
    decoding: dict | None = None
    weights_dir: str | None = None
    description: str = ""
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def trainable(self) -> bool:
        """Tiny models carry a task and a training recipe; public-shape presets do not."""
        return self.task is not None and self.training is not None


def _check_architecture(arch: dict, fail) -> None:
    """What ModelConfig and the transformer require of the shape, each named by its key.

    (The attention projections map d_model to n_heads * head_dim and back, so the two need not be
    equal; a d_model that some NPU cannot tile is the compiler's to report, not the preset's.)"""
    if arch["n_heads"] % arch["n_kv_heads"]:
        fail("architecture.n_kv_heads", f"{arch['n_kv_heads']} does not divide n_heads={arch['n_heads']} "
                                        f"(grouped-query attention shares each K/V head by a whole group)")
    if arch["head_dim"] % 2:
        fail("architecture.head_dim", f"{arch['head_dim']} must be even (RoPE rotates pairs)")
    if arch["mask_token_id"] >= arch["vocab_size"]:
        fail("architecture.mask_token_id", f"{arch['mask_token_id']} is outside the vocabulary "
                                           f"(vocab_size={arch['vocab_size']})")


def _check_task(data: dict, fail):
    """The task must exist with these parameters, and the model must fit it (as training checks)."""
    from npu.models.tasks import task_layout

    try:
        layout = task_layout(data["task"])
    except ValueError as exc:
        fail("task", str(exc))
    arch = data["architecture"]
    if arch["vocab_size"] != layout.vocab_size:
        fail("architecture.vocab_size", f"{arch['vocab_size']} but task {layout.name!r} has {layout.vocab_size} tokens")
    if arch["mask_token_id"] != layout.mask_id:
        fail("architecture.mask_token_id", f"{arch['mask_token_id']} but task {layout.name!r} puts [MASK] "
                                           f"at {layout.mask_id}")
    if arch["max_seq_len"] < layout.sequence_length:
        fail("architecture.max_seq_len", f"{arch['max_seq_len']} is shorter than task {layout.name!r} "
                                         f"sequences ({layout.sequence_length})")
    return layout


def _check_training(training: dict, layout, fail) -> None:
    """The rules between training keys (the schema checks each key against TrainConfig's own
    rules, and tests keep the two in step: preset loading does not import the training code, so
    a change to it reruns only the stages that train)."""
    if training.get("block_fraction", 0) > 0:
        block = training.get("block_length", 0)
        if block < 1:
            fail("training.block_length", f"block_fraction={training['block_fraction']} needs block_length >= 1")
        if layout is not None and layout.maskable_length % block:
            fail("training.block_length", f"{block} does not divide the {layout.maskable_length} maskable "
                                          f"positions of task {layout.name!r}")
    if training.get("stop_exact_match", 0) > 0:
        if training.get("stop_every", 0) < 1:
            fail("training.stop_every", f"stop_exact_match={training['stop_exact_match']} needs stop_every >= 1 "
                                        f"(steps between the held-out checks)")
        if layout is not None and layout.answer_length is None:
            fail("training.stop_exact_match", f"task {layout.name!r} has no exact-match answers to check")


def _check_decoding(decoding: dict, arch: dict, layout, fail) -> None:
    from npu.models.decoding import DecodeConfig

    gen, block, steps = decoding["gen_length"], decoding["block_length"], decoding["steps"]
    if gen % block:
        fail("decoding.block_length", f"{block} does not divide gen_length={gen}")
    blocks = gen // block
    if steps % blocks:
        fail("decoding.steps", f"{steps} is not a multiple of the number of blocks "
                               f"({blocks} = gen_length {gen} / block_length {block})")
    if steps > gen:
        fail("decoding.steps", f"{steps} exceeds gen_length={gen}; some steps would commit no token")
    if layout is not None and layout.answer_length is not None and gen != layout.answer_length:
        fail("decoding.gen_length", f"{gen} but task {layout.name!r} answers have {layout.answer_length} tokens")
    if layout is not None and layout.answer_length is None and gen >= layout.sequence_length:
        fail("decoding.gen_length", f"{gen} leaves no prompt in task {layout.name!r} windows of "
                                    f"{layout.sequence_length} characters")
    if gen > arch["max_seq_len"]:
        fail("decoding.gen_length", f"{gen} exceeds architecture.max_seq_len={arch['max_seq_len']}")
    try:
        DecodeConfig(**decoding)
    except (TypeError, ValueError) as exc:
        fail("decoding", str(exc))


def check_model_preset(data: dict, source: str) -> None:
    """Cross-field rules of a schema-valid preset, checked before any work: every rule that
    ModelConfig, the task, TrainConfig or DecodeConfig would enforce later. Raises ConfigError
    `<source>: <dotted key>: <what is wrong>`."""

    def fail(key: str, message: str):
        raise ConfigError(f"{source}: {key}: {message}")

    _check_architecture(data["architecture"], fail)
    if ("task" in data) != ("training" in data):
        present, absent = ("task", "training") if "task" in data else ("training", "task")
        fail(absent, f"missing (a trained model needs both 'task' and 'training'; found only '{present}')")
    layout = _check_task(data, fail) if "task" in data else None
    if "training" in data:
        _check_training(data["training"], layout, fail)
        if data["training"].get("stop_exact_match", 0) > 0 and "decoding" not in data:
            fail("decoding", "missing (training.stop_exact_match decodes held-out prompts with it)")
    if "decoding" in data:
        _check_decoding(data["decoding"], data["architecture"], layout, fail)


def seed_variant_name(base: str, seed: int) -> str:
    """The name of preset `base` trained from `seed` (read back by `load_model_spec`)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"model {base!r}: a training seed must be a non-negative integer, got {seed!r}")
    return f"{base}-seed{seed}"


def load_model_spec(name_or_path: str | Path, config_dir: str | Path | None = None) -> ModelSpec:
    """Load and validate a model preset by name (`config/models/<name>.yaml`) or path.

    The schema (npu/schemas/model.schema.yaml) checks every key, type and range; then
    `check_model_preset` checks the rules between keys. Errors name the file and the key.
    `<preset>-seed<n>` (by name, or as the path `<dir>/<preset>-seed<n>.yaml` that does not exist)
    is `<preset>` with its training seed set to n and that name."""
    variant = seed_variant_preset(name_or_path, config_dir)
    if variant is not None:
        base_path, seed = variant
        base = load_model_spec(base_path)
        if not base.trainable:
            raise ConfigError(f"{base_path}: model {base.name!r} has no 'training' section, so there is no "
                              f"{Path(name_or_path).stem!r} trained from seed {seed}")
        name = seed_variant_name(base.name, seed)
        raw = base.raw | {"name": name, "training": base.raw["training"] | {"seed": seed}}
        return replace(base, name=name, architecture=replace(base.architecture, name=name),
                       training=raw["training"], raw=raw)
    path = preset_path("models", name_or_path, config_dir)
    data = load_validated_yaml(path, "model")
    if path.stem != data["name"]:
        raise ConfigError(f"{path}: name: {data['name']!r} differs from the file name {path.stem!r}")
    check_model_preset(data, str(path))
    try:
        architecture = ModelConfig(name=data["name"], **data["architecture"])
    except ValueError as exc:
        raise ConfigError(f"{path}: architecture: {exc}") from None
    return ModelSpec(
        name=data["name"],
        source=path,
        architecture=architecture,
        task=data.get("task"),
        training=data.get("training"),
        decoding=data.get("decoding"),
        weights_dir=data.get("weights_dir"),
        description=data.get("description", ""),
        raw=data,
    )
