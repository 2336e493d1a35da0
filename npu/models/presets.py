"""Model presets: `config/models/<name>.yaml` turned into a validated `ModelSpec`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from npu.config import ConfigError, load_validated_yaml, preset_path
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


def load_model_spec(name_or_path: str | Path, config_dir: str | Path | None = None) -> ModelSpec:
    """Load and validate a model preset by name (`config/models/<name>.yaml`) or path."""
    path = preset_path("models", name_or_path, config_dir)
    data = load_validated_yaml(path, "model")
    try:
        architecture = ModelConfig(name=data["name"], **data["architecture"])
    except ValueError as exc:
        raise ConfigError(f"{path}: key 'architecture': {exc}") from None
    if path.stem != data["name"]:
        raise ConfigError(f"{path}: key 'name': {data['name']!r} differs from the file name {path.stem!r}")
    if ("task" in data) != ("training" in data):
        raise ConfigError(f"{path}: a trained model needs both 'task' and 'training' (found only one)")
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
