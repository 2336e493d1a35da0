# Shared by every stage: validated presets, result paths and code fingerprints.
import json
import re
import sys

from npu.config import ConfigError, preset_path
from npu.hw.config import load_npu_config
from npu.models.presets import load_model_spec, seed_variant_name
from npu.models.tasks import get_task, task_layout
from npu.provenance import stage_fingerprint
from npu.synth.calibrate import calibration_units
from npu.synth.compose import checkable, preset_compositions
from npu.synth.jobs import job_for, preset_jobs
from npu.synth.units import ANCHOR_UNITS, OPT_IN_UNITS, SYNTH_UNITS, get_unit, source_fingerprint

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

# Further training seeds (models.seeds): each trained task model is also trained and evaluated from
# every listed seed other than its preset's own, as the model `<model>-seed<n>` (npu.models.presets).
SEED_MODELS = [seed_variant_name(name, seed) for name in TRAINED_MODELS
               if task_layout(MODEL_SPECS[name].task).answer_length is not None
               for seed in config["models"]["seeds"] if seed != MODEL_SPECS[name].training.get("seed", 0)]
for name in SEED_MODELS:
    MODEL_SPECS.setdefault(name, load_model_spec(name, CONFIG_DIR))
SEED_TARGETS = expand(f"{RESULTS}/models/{{model}}/accuracy.tsv", model=SEED_MODELS)

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
    model="|".join(dict.fromkeys(ALL_MODELS + KV_ONLY_MODELS + SEED_MODELS)) or "NO_MODELS",
    npu="|".join(NPUS) or "NO_NPUS",


def model_preset_path(name):
    """The preset file of a model; for a seed variant `<preset>-seed<n>`, which has none, the path it
    would have beside its preset, which the stages' preset loader reads as that variant."""
    spec = MODEL_SPECS.get(name)
    if spec is not None and spec.source.stem != name:
        return str(spec.source.parent / f"{name}.yaml")
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

# The 7 nm synthesis flow (workflow/rules/synth.smk). Netlists are made per job - unit, Verilog
# parameters, clock period, mapping corner (npu.synth.jobs) - so presets that agree on a unit's
# parameters share its job, and each preset's table joins its jobs.
SYNTH = config["synth"]
SYNTH_UNIT_NAMES = SYNTH["units"] or [name for name in SYNTH_UNITS if name not in ANCHOR_UNITS + OPT_IN_UNITS]
for name in SYNTH_UNIT_NAMES + SYNTH["anchor_units"]:
    if name not in SYNTH_UNITS:
        sys.exit(f"dnpu: config: synth.units lists {name!r}; known units: {', '.join(SYNTH_UNITS)}")
SYNTH_CORNERS = SYNTH["corners"]
if SYNTH["enabled"] and "TT" not in SYNTH_CORNERS:
    sys.exit(f"dnpu: config: synth.corners {SYNTH_CORNERS} must include TT: the die area, the calibrated "
             "technology table and the summary are at the typical corner (SS / FF are added beside it)")
# The calibrated technology table needs these units (npu.synth.calibrate); energy per token is
# computed for synth.energy_models (default: every model of the run).
CALIBRATION_UNITS = calibration_units()
SYNTH_ENERGY_MODELS = ALL_MODELS if SYNTH["energy_models"] is None else SYNTH["energy_models"]
SYNTH_PRESET_JOBS = {}  # preset -> {unit: SynthJob}
if SYNTH["enabled"]:
    for name in NPUS:
        try:
            SYNTH_PRESET_JOBS[name] = preset_jobs(load_npu_config(NPU_FILES[name]["npu"]), SYNTH_UNIT_NAMES,
                                                  SYNTH["clock_period_ps"], SYNTH["map_corner"])
        except ValueError as error:
            sys.exit(f"dnpu: config: synth: preset {name}: {error}")
# The model whose generation's operands the gate-level simulations replay (synth.smk, synth_trace):
# synth.activity_trace, null - the first trained model of the run (none: operand distributions).
_TRACE_MODEL = (TRAINED_MODELS[0] if TRAINED_MODELS else "") if SYNTH["activity_trace"] is None else SYNTH["activity_trace"]
if _TRACE_MODEL and _TRACE_MODEL not in TRAINED_MODELS:
    sys.exit(f"dnpu: config: synth.activity_trace {_TRACE_MODEL!r} is not in models.trained")
SYNTH_TRACE = [f"{RESULTS}/synth/trace/{_TRACE_MODEL}.npz"] if _TRACE_MODEL and NPUS else []
# The anchor (npu.synth.units.ANCHOR_UNITS) is preset-independent: fixed period and corner.
SYNTH_ANCHOR_JOBS = ({name: job_for(name, None, None, SYNTH["map_corner"]) for name in SYNTH["anchor_units"]}
                     if SYNTH["enabled"] else {})
SYNTH_JOBS = {job.key: job for jobs in [*SYNTH_PRESET_JOBS.values(), SYNTH_ANCHOR_JOBS] for job in jobs.values()}
SYNTH_TARGETS = ((([f"{RESULTS}/synth/summary.tsv", f"{RESULTS}/synth/die_area.tsv"]
                    + expand(f"{RESULTS}/synth/{{npu}}/units.tsv", npu=NPUS)
                   if SYNTH_UNIT_NAMES else []) + expand(f"{RESULTS}/synth/{{npu}}/sram.tsv", npu=NPUS)
                  + ([f"{RESULTS}/synth/anchor.tsv"] if SYNTH["anchor_units"] else [])
                  + ([f"{RESULTS}/synth/composition.tsv"]
                     if checkable(SYNTH_UNIT_NAMES) else [])
                  + (expand(f"{RESULTS}/synth/{{npu}}/{{table}}", npu=NPUS,
                            table=["tech.yaml"] + (["energy_per_token.tsv"] if SYNTH_ENERGY_MODELS else []))
                     if set(CALIBRATION_UNITS) <= set(SYNTH_UNIT_NAMES) else []))
                 if SYNTH["enabled"] else [])

# synth.calibrated_energy: the simulators price energy with the preset's calibrated table
# (rule synth_tech) when this run makes one; they then wait for the preset's synthesis.
SYNTH_CALIBRATES = bool(SYNTH["enabled"] and NPUS and set(CALIBRATION_UNITS) <= set(SYNTH_UNIT_NAMES))
CALIBRATED_ENERGY = SYNTH_CALIBRATES and SYNTH["calibrated_energy"]


def npu_energy_technology(wildcards):
    """The technology table a simulation's energy comes from: the calibrated one, else the preset's file."""
    if CALIBRATED_ENERGY:
        return f"{RESULTS}/synth/{wildcards.npu}/tech.yaml"
    return npu_technology(wildcards)


def synth_job(wildcards):
    return SYNTH_JOBS[wildcards.job]


def synth_activity_of(wildcards):
    """The measured activity a timing job uses: none when disabled or the unit has no workload."""
    from npu.synth.activity import WORKLOADS

    if SYNTH["activity_vectors"] and synth_job(wildcards).unit in WORKLOADS:
        return [f"{RESULTS}/synth/units/{wildcards.job}/activity.json"]
    return []


def synth_job_liberty(wildcards):
    return f"{RESULTS}/synth/liberty/asap7_rvt_{synth_job(wildcards).map_corner}.lib"


def synth_preset_rows(wildcards):
    """The timing rows of a preset's jobs, every corner."""
    return [f"{RESULTS}/synth/units/{job.key}/timing_{corner}.tsv"
            for job in SYNTH_PRESET_JOBS[wildcards.npu].values() for corner in SYNTH_CORNERS]


def synth_compositions(wildcards):
    """The preset's composed units (npu.synth.compose) as JSON: counts from its MLEN / VLEN."""
    npu_config = load_npu_config(NPU_FILES[wildcards.npu]["npu"])
    return json.dumps(preset_compositions(npu_config, SYNTH_UNIT_NAMES), sort_keys=True)

# The HTML report (workflow/rules/plots.smk, `make report`): outputs wrapped in report() with a
# caption from workflow/report/ (paths relative to the rule files in workflow/rules/), and the
# benchmark files (`benchmark:`, wall time and memory per job) the report's jobs table reads.
REPORT_CAPTIONS = "../report"
BENCHMARKS = f"{RESULTS}/benchmarks"


def figure(path, caption, name):
    """A figure of the report, in the category Figures under `name`."""
    return report(path, caption=f"{REPORT_CAPTIONS}/{caption}", category="Figures", subcategory=name)


def table(path, caption, name):
    """A key table of the report, in the category Tables under `name`."""
    return report(path, caption=f"{REPORT_CAPTIONS}/{caption}", category="Tables", subcategory=name)

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
        # With synth.calibrated_energy the points' energies come from the base's calibrated
        # table too, as the presets' analytical rows they are set beside.
        if CALIBRATED_ENERGY:
            DSE_BASE_FILES = {**DSE_BASE_FILES, "technology": f"{RESULTS}/synth/{DSE['base']}/tech.yaml"}
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

# RTL verification (workflow/rules/rtl.smk).
RTL = config["rtl"]
for key, names, known, where in (("models", RTL["models"], TRAINED_MODELS, "models.trained"),
                                 ("npus", RTL["npus"], NPUS, "npus")):
    for name in names if RTL["enabled"] else []:
        if name not in known:
            sys.exit(f"dnpu: config: rtl.{key} lists {name!r}, which is not in {where}")
RTL_TABLES = expand(f"{RESULTS}/rtl/{{npu}}/verify.tsv", npu=RTL["npus"]) if RTL["enabled"] else []
