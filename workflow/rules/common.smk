# Shared by every stage: validated presets, result paths and code fingerprints.
import sys

from npu.config import ConfigError, preset_path
from npu.models.presets import load_model_spec
from npu.provenance import source_hash

CONFIG_DIR = config["config_dir"]
RESULTS = config["results_dir"]
TRAINED_MODELS = config["models"]["trained"]
SHAPE_ONLY_MODELS = config["models"]["shape_only"]
ALL_MODELS = TRAINED_MODELS + SHAPE_ONLY_MODELS

# Validate every preset the run names before any job starts: a bad file fails here, by name.
try:
    MODEL_SPECS = {name: load_model_spec(name, CONFIG_DIR) for name in ALL_MODELS}
except ConfigError as error:
    sys.exit(f"dnpu: {error}")
for name in TRAINED_MODELS:
    if not MODEL_SPECS[name].trainable:
        sys.exit(f"dnpu: config: models.trained lists {name!r}, but {MODEL_SPECS[name].source} has no task/training section")

# The code each stage runs (relative to the npu package); a change to it reruns the stage.
TRAIN_CODE = source_hash("models/transformer.py", "models/tasks.py", "models/train.py",
                         "models/checkpoint.py", "models/presets.py", "config.py", "stages.py")
EVALUATE_CODE = source_hash("models/transformer.py", "models/tasks.py", "models/decoding.py",
                            "models/evaluate.py", "models/checkpoint.py", "stages.py")
EXPORT_CODE = source_hash("models/transformer.py", "models/decoding.py", "models/checkpoint.py", "ir", "stages.py")
COMPILE_CODE = source_hash("compiler", "isa", "hw", "ir", "stages.py")
SIMULATE_CODE = source_hash("sim", "isa", "hw", "models/presets.py", "models/decoding.py")

NPUS = config["npus"]
try:
    for name in NPUS:
        preset_path("npu", name, CONFIG_DIR)
except ConfigError as error:
    sys.exit(f"dnpu: {error}")

wildcard_constraints:
    model="|".join(ALL_MODELS) or "NO_MODELS",
    npu="|".join(NPUS) or "NO_NPUS",


def model_preset(wildcards):
    return str(preset_path("models", wildcards.model, CONFIG_DIR))


def checkpoint_of(wildcards):
    """The trained checkpoint a stage needs, or nothing for shape-only models."""
    if wildcards.model in TRAINED_MODELS:
        return [f"{RESULTS}/models/{wildcards.model}/checkpoint/model.safetensors"]
    return []


def npu_preset(wildcards):
    return str(preset_path("npu", wildcards.npu, CONFIG_DIR))
