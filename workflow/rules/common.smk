# Shared by every stage: validated presets, result paths and code fingerprints.
import sys

from npu.config import ConfigError, preset_path
from npu.models.presets import load_model_spec
from npu.models.tasks import get_task
from npu.provenance import source_hash

CONFIG_DIR = config["config_dir"]
RESULTS = config["results_dir"]
TRAINED_MODELS = config["models"]["trained"]
SHAPE_ONLY_MODELS = config["models"]["shape_only"]
ALL_MODELS = TRAINED_MODELS + SHAPE_ONLY_MODELS  # the models of the hardware stages
# Models the KV study trains for itself (e.g. a second seed): no export, compile or simulation.
KV_ONLY_MODELS = [name for name in config["quantization"]["models"] if name not in TRAINED_MODELS]

# Validate every preset the run names before any job starts: a bad file fails here, by name.
try:
    MODEL_SPECS = {name: load_model_spec(name, CONFIG_DIR) for name in ALL_MODELS + KV_ONLY_MODELS}
except ConfigError as error:
    sys.exit(f"dnpu: {error}")
for key, names in (("models.trained", TRAINED_MODELS), ("quantization.models", KV_ONLY_MODELS)):
    for name in names:
        if not MODEL_SPECS[name].trainable:
            sys.exit(f"dnpu: config: {key} lists {name!r}, but {MODEL_SPECS[name].source} has no task/training section")

# The code each stage runs (relative to the npu package); a change to it reruns the stage.
TRAIN_CODE = source_hash("models/transformer.py", "models/tasks.py", "models/train.py",
                         "models/checkpoint.py", "models/presets.py", "config.py", "stages.py")
EVALUATE_CODE = source_hash("models/transformer.py", "models/tasks.py", "models/decoding.py",
                            "models/evaluate.py", "models/checkpoint.py", "stages.py")
EXPORT_CODE = source_hash("models/transformer.py", "models/decoding.py", "models/checkpoint.py", "ir", "stages.py")
COMPILE_CODE = source_hash("compiler", "isa", "hw", "ir", "stages.py")
SIMULATE_CODE = source_hash("sim", "isa", "hw", "models/presets.py", "models/decoding.py")
QUANT_CODE = source_hash("quant", "sim/analytical", "hw/numerics.py", "hw/config.py", "models/transformer.py", "models/tasks.py",
                         "models/decoding.py", "models/checkpoint.py")

# The accuracy simulator's exact mode decodes with the compiler's NPU-arithmetic reference.
QUANT_EXACT_CODE = source_hash("quant", "compiler", "runtime", "hw", "ir", "models/decoding.py", "models/tasks.py",
                               "models/checkpoint.py", "models/transformer.py")

NPUS = config["npus"]
GPU_TARGETS = [f"{RESULTS}/gpu/gpu_generations.tsv"] if SHAPE_ONLY_MODELS else []
try:
    for name in NPUS:
        preset_path("npu", name, CONFIG_DIR)
except ConfigError as error:
    sys.exit(f"dnpu: {error}")

wildcard_constraints:
    model="|".join(ALL_MODELS + KV_ONLY_MODELS) or "NO_MODELS",
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


# The KV-quantization study (workflow/rules/quantize.smk).
QUANT = config["quantization"]
QUANT_MODELS = QUANT["models"]
for name in QUANT["outliers"]:
    if name not in QUANT_MODELS:
        sys.exit(f"dnpu: config: quantization.outliers lists {name!r}, which is not in quantization.models")
ABLATION = QUANT["ablation"]
if QUANT_MODELS and ABLATION["model"] not in QUANT_MODELS:
    sys.exit(f"dnpu: config: quantization.ablation.model {ABLATION['model']!r} is not one of quantization.models")
if ABLATION["outliers"] and ABLATION["model"] not in QUANT["outliers"]:
    sys.exit(f"dnpu: config: quantization.ablation.outliers needs {ABLATION['model']!r} in quantization.outliers")
ABLATION_LABEL = f"{ABLATION['model']}+outliers" if ABLATION["outliers"] else ABLATION["model"]
try:
    preset_path("npu", QUANT["npu"], CONFIG_DIR)
except ConfigError as error:
    sys.exit(f"dnpu: config: quantization.npu: {error}")
QUANT_TARGETS = [f"{RESULTS}/kv/{name}" for name in ("accuracy.tsv", "ablation.tsv", "kv_stats.tsv", "traffic.tsv", "exact.tsv")] if QUANT_MODELS else []


def kv_source_args(wildcards, input):
    """--checkpoint LABEL=DIR for every model of the grid, --outliers for the outlier copies."""
    dirs = [f"--checkpoint {m}=$(dirname {w})" for m, w in zip(QUANT_MODELS, input.weights)]
    return " ".join([*dirs, *(f"--outliers {m}" for m in QUANT["outliers"])])

# Compiler verification (workflow/rules/verify.smk, `make verify`).
VERIFY = config["verify"]
for name in VERIFY["models"]:
    if name not in TRAINED_MODELS:
        sys.exit(f"dnpu: config: verify.models lists {name!r}, which is not in models.trained")
    if not hasattr(get_task(MODEL_SPECS[name].task), "exact_match"):
        sys.exit(f"dnpu: config: verify.models lists {name!r}, whose task has no exact-match answers to decode")
for name in VERIFY["npus"]:
    try:
        preset_path("npu", name, CONFIG_DIR)
    except ConfigError as error:
        sys.exit(f"dnpu: config: verify.npus: {error}")
