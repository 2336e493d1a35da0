# Shared by every stage: validated presets, result paths and code fingerprints.
import json
import sys

from npu.config import ConfigError, preset_path
from npu.hw.config import load_npu_config
from npu.models.presets import load_model_spec
from npu.models.tasks import get_task
from npu.provenance import stage_fingerprint
from npu.synth.units import SYNTH_UNITS, get_unit, source_fingerprint

CONFIG_DIR = config["config_dir"]
RESULTS = config["results_dir"]
TRAINED_MODELS = config["models"]["trained"]
SHAPE_ONLY_MODELS = config["models"]["shape_only"]
ALL_MODELS = TRAINED_MODELS + SHAPE_ONLY_MODELS  # the models of the hardware stages
# Models the KV study trains for itself (e.g. a second seed): no export, compile or simulation.
KV_ONLY_MODELS = [name for name in config["quantization"]["models"] if name not in TRAINED_MODELS]

# Validate every preset the run names before any job starts: a bad file fails here, by name.
MODEL_SPECS = {}
for key, names in (("models.trained", TRAINED_MODELS), ("models.shape_only", SHAPE_ONLY_MODELS),
                   ("quantization.models", KV_ONLY_MODELS)):
    for name in names:
        try:
            MODEL_SPECS[name] = load_model_spec(name, CONFIG_DIR)
        except ConfigError as error:
            sys.exit(f"dnpu: config: {key}: {error}")
for key, names in (("models.trained", TRAINED_MODELS), ("quantization.models", KV_ONLY_MODELS)):
    for name in names:
        if not MODEL_SPECS[name].trainable:
            sys.exit(f"dnpu: config: {key} lists {name!r}, but {MODEL_SPECS[name].source} has no task/training section")

# The code of each stage, fingerprinted from its stage function's import closure (npu.provenance),
# so a change to any module the stage imports, directly or not, reruns that rule and no other.
def stage_code(module, function):
    return stage_fingerprint(f"npu.stages.{module}", function)


# The sections of a model preset that a stage reads, as a parameter - an edit elsewhere in the file
# (e.g. `decoding`, which training never reads) does not rerun the rule.
def preset_sections(*sections):
    def content(wildcards):
        data = MODEL_SPECS[wildcards.model].raw
        return json.dumps({key: data.get(key) for key in sections}, sort_keys=True)
    return content


def presets_sections(models, *sections):
    """preset_sections for a rule over several models."""
    return json.dumps({name: {key: MODEL_SPECS[name].raw.get(key) for key in sections} for name in models},
                      sort_keys=True)


# The settings of the analytical generations (config.yaml `analytical:`), as command-line options.
ANALYTICAL = config["analytical"]
SCENARIO_ARGS = " ".join([
    f"--threshold-tokens-per-step {ANALYTICAL['threshold_tokens_per_step']}",
    "--public-generation " + " ".join(str(ANALYTICAL["public_shape_generation"][key])
                                      for key in ("prompt_length", "gen_length", "block_length", "steps")),
    "--text-generation " + " ".join(str(ANALYTICAL["text_generation"][key])
                                    for key in ("gen_length", "block_length", "steps")),
])

NPUS = config["npus"]
GPU_TARGETS = [f"{RESULTS}/gpu/gpu_generations.tsv"] if SHAPE_ONLY_MODELS else []
# The NPU-vs-GPU generation table needs a public-shape model and an NPU to compare.
SPEEDUP_TARGETS = [f"{RESULTS}/speedup.tsv"] if SHAPE_ONLY_MODELS and NPUS else []

wildcard_constraints:
    model="|".join(ALL_MODELS + KV_ONLY_MODELS) or "NO_MODELS",
    npu="|".join(NPUS) or "NO_NPUS",


def model_preset_path(name):
    return str(preset_path("models", name, CONFIG_DIR))


def model_preset(wildcards):
    return model_preset_path(wildcards.model)


def checkpoint_of(wildcards):
    """The trained checkpoint a stage needs, or nothing for shape-only models."""
    if wildcards.model in TRAINED_MODELS:
        return [f"{RESULTS}/models/{wildcards.model}/checkpoint/model.safetensors"]
    return []


def npu_preset_files(name):
    """An NPU preset and the technology file it names: the files a rule that models the machine reads."""
    preset = preset_path("npu", name, CONFIG_DIR)
    technology = load_npu_config(preset, CONFIG_DIR).technology.source
    return {"npu": str(preset), "technology": str(technology)}


# Each NPU preset (and the technology file it names) loaded and checked in full, once, before any job.
NPU_FILES = {}
for name in NPUS:
    try:
        NPU_FILES[name] = npu_preset_files(name)
    except ConfigError as error:
        sys.exit(f"dnpu: config: npus: {error}")


def npu_preset(wildcards):
    return NPU_FILES[wildcards.npu]["npu"]


def npu_technology(wildcards):
    return NPU_FILES[wildcards.npu]["technology"]


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
QUANT_SECTIONS = presets_sections(QUANT_MODELS, "name", "task", "decoding")
ABLATION_LABEL = f"{ABLATION['model']}+outliers" if ABLATION["outliers"] else ABLATION["model"]
try:
    QUANT_NPU_FILES = npu_preset_files(QUANT["npu"])
except ConfigError as error:
    sys.exit(f"dnpu: config: quantization.npu: {error}")
QUANT_TARGETS = [f"{RESULTS}/kv/{name}" for name in ("accuracy.tsv", "ablation.tsv", "kv_stats.tsv", "traffic.tsv", "exact.tsv")] if QUANT_MODELS else []


def kv_source_args(wildcards, input):
    """--checkpoint LABEL=DIR for every model of the grid, --outliers for the outlier copies."""
    dirs = [f"--checkpoint {m}=$(dirname {w})" for m, w in zip(QUANT_MODELS, input.weights)]
    presets = [f"--preset {m}={model_preset_path(m)}" for m in QUANT_MODELS]
    return " ".join([*dirs, *presets, *(f"--outliers {m}" for m in QUANT["outliers"])])

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

# The 7 nm synthesis flow (workflow/rules/synth.smk).
SYNTH = config["synth"]
SYNTH_UNIT_NAMES = SYNTH["units"] or list(SYNTH_UNITS)
for name in SYNTH_UNIT_NAMES:
    if name not in SYNTH_UNITS:
        sys.exit(f"dnpu: config: synth.units lists {name!r}; known units: {', '.join(SYNTH_UNITS)}")
SYNTH_CORNERS = SYNTH["corners"]
SYNTH_TARGETS = ((([f"{RESULTS}/synth/summary.tsv"] + expand(f"{RESULTS}/synth/{{npu}}/units.tsv", npu=NPUS)
                   if SYNTH_UNIT_NAMES else []) + expand(f"{RESULTS}/synth/{{npu}}/sram.tsv", npu=NPUS))
                 if SYNTH["enabled"] else [])


def synth_activity_of(wildcards):
    """The measured activity a timing job uses: none when disabled or the unit has no workload."""
    from npu.synth.activity import WORKLOADS

    if SYNTH["activity_vectors"] and wildcards.unit in WORKLOADS:
        return [f"{RESULTS}/synth/{wildcards.npu}/{wildcards.unit}/activity.json"]
    return []


def synth_setting(wildcards):
    """What a unit's netlist depends on in the preset: its Verilog parameters and the clock period."""
    from npu.hw.config import load_npu_config
    from npu.synth.flow import clock_period_ps

    npu_config = load_npu_config(NPU_FILES[wildcards.npu]["npu"])
    unit = get_unit(wildcards.unit)
    return json.dumps({"parameters": unit.parameters(npu_config),
                       "period_ps": clock_period_ps(npu_config.clock_ghz, SYNTH["clock_period_ps"])}, sort_keys=True)

# The design-space sweep (workflow/rules/dse.smk, npu.dse, docs/dse.md): the points of the
# `dse:` grid, keyed by id, and the checks of the section against the rest of the config.
from npu.config import read_yaml
from npu.dse.grid import cycle_sampled, design_points

DSE = config["dse"]
DSE_TARGETS = []
DSE_POINTS = {}
if DSE["enabled"]:
    try:
        DSE_BASE_FILES = npu_preset_files(DSE["base"])
        DSE_POINTS = {point.id: point for point in design_points(DSE["grid"], read_yaml(DSE_BASE_FILES["npu"]))}
        DSE_MODEL_FILES = [model_preset_path(name) for name in DSE["models"]]
        for name in DSE["models"]:
            if name not in MODEL_SPECS:
                MODEL_SPECS[name] = load_model_spec(name, CONFIG_DIR)
    except ConfigError as error:
        sys.exit(f"dnpu: config: dse: {error}")
    DSE_PRESETS = NPUS if DSE["presets"] is None else DSE["presets"]
    for name in DSE_PRESETS:
        if name not in NPUS:
            sys.exit(f"dnpu: config: dse.presets lists {name!r}, which is not in npus")
    if DSE_PRESETS:
        for name in DSE["models"]:
            if name not in ALL_MODELS:
                sys.exit(f"dnpu: config: dse.models lists {name!r}, which is not in models.trained or models.shape_only "
                         "(the presets' rows come from their analytical.tsv; set dse.presets: [] to sweep it alone)")
    for name in DSE["cycle_sample"]["points"]:
        if name not in DSE_POINTS:
            sys.exit(f"dnpu: config: dse.cycle_sample.points lists {name!r}, which is not a point of dse.grid")
    # The area model reads the base preset's synthesis tables when the pipeline synthesizes it.
    DSE_SYNTH = {}
    if SYNTH["enabled"]:
        if DSE["base"] not in NPUS:
            sys.exit(f"dnpu: config: dse.base {DSE['base']!r} must be one of npus when synth.enabled "
                     "(its synthesis tables calibrate the area model)")
        DSE_SYNTH = {"sram": f"{RESULTS}/synth/{DSE['base']}/sram.tsv",
                     "liberty": f"{RESULTS}/synth/liberty/asap7_rvt_{SYNTH['map_corner']}.lib"}
        if SYNTH_UNIT_NAMES:
            DSE_SYNTH["units"] = f"{RESULTS}/synth/{DSE['base']}/units.tsv"
    DSE_TARGETS = [f"{RESULTS}/dse/{name}" for name in ("points.tsv", "pareto.tsv", "pareto.png")]

wildcard_constraints:
    point="[A-Za-z0-9_.-]+",


def dse_point_arguments(wildcards):
    """The point's grid parameters and, on sampled points, the cycle check's options."""
    point = DSE_POINTS[wildcards.point]
    sample = DSE["cycle_sample"]
    arguments = f"--parameters '{json.dumps(point.parameters, sort_keys=True)}'"
    if cycle_sampled(point.id, sample["every"], sample["points"]):
        arguments += f" --cycle-max-instructions {sample['max_instructions']} --cycle-dram {sample['dram']}"
    return arguments
