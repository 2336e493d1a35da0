# dnpu pipeline: the table of contents. Each stage lives in workflow/rules/<stage>.smk, each rule
# calls one `npu <stage>` command, and every artifact lands under results/.
#
#   train      tiny masked-diffusion models on offline tasks      results/models/{model}/checkpoint/
#   evaluate   exact match / perplexity per cache mode           results/models/{model}/accuracy.tsv
#              (also of each task model's further seeds, models.seeds:  results/models/{model}-seed{n}/)
#   export     one denoising step per cache mode -> graph IR     results/models/{model}/ir/
#   compile    step graphs -> NPU programs, DRAM map, statistics  results/{npu}/{model}/compile.tsv
#   simulate_analytical  analytical latency/energy per generation results/{npu}/{model}/analytical.tsv
#   simulate_cycle  step programs on the cycle simulator (DRAM in loop) results/{npu}/{model}/cycle.tsv
#   crossvalidate   analytical vs cycle-accurate, per step/class/operator results/{npu}/{model}/crossval.tsv
#                   and over every configuration                       results/crossval/summary.{tsv,png}
#   roofline        per operator/step: attained vs compute and DRAM bound results/{npu}/{model}/roofline.{tsv,png}
#   gpu_baselines   A6000/A100/H100 models of the same generations      results/gpu/*.tsv
#   speedup         NPU presets vs those GPUs: tok/s, mJ/token, ratios  results/speedup.{tsv,png}
#   calibrate       static KV-smoothing factors (offline baseline)      results/models/{model}/kv/
#   accuracy        KV methods x bits x cache modes (BAOS, baselines)   results/kv/accuracy.{tsv,md}
#   accuracy_exact  bf16 / BAOS-MXINT KV in the NPU's exact arithmetic    results/kv/exact.tsv
#   baos_ablation   BAOS design choices one at a time                   results/kv/ablation.tsv
#   kv_analysis     K/V statistics across steps and blocks              results/kv/kv_stats.tsv, kv_channels.tsv, kv_drift.png
#   kv_traffic      KV DRAM bytes per generated token per method        results/kv/traffic.tsv
#   synth_*         7 nm synthesis: Yosys + OpenSTA on ASAP7 per job (unit, parameters, clock),
#                   shared by presets; area, fmax, critical path, power results/synth/units/{job}/, {npu}/units.tsv,
#                   arrays composed from PEs, anchor, die area,         summary.tsv, composition.tsv, anchor.tsv, die_area.tsv,
#                   calibrated technology table, energy per token       {npu}/tech.yaml, {npu}/energy_per_token.tsv
#   rtl_verify      compiled steps + microbenchmarks on the RTL (npu_top): bit-exact vs the functional
#                   simulator, cycles vs the cycle simulator; activity dump   results/rtl/{npu}/verify.tsv, activity.vcd
#   plot_*          the paper's figures 1, 2, 4, 5, 7, 9 from those tables results/figures/*.png
#   report_jobs     log and benchmark of every job behind the figures    results/report/jobs.tsv
#   (`make report`: snakemake --report results/report.html - every figure and key table, captioned)
#   dse_point       one design point of the `dse:` grid: analytical gens   results/dse/points/{point}/point.tsv
#   dse_summary     points + area/power, Pareto fronts, figure 8          results/dse/{points,pareto}.tsv, pareto.png
#
# Not in `all` (hours on 2 cores; `make verify`):
#   verify_compiled compiled generations == NPU-arithmetic reference    results/verify/{model}.json

import sys
from pathlib import Path

from npu.config import ConfigError, load_pipeline_config

# The configuration: config/config.yaml (when the working directory has one), every --configfile
# merged over it and then the --config values, as Snakemake's `configfile:` would merge them, but
# read and checked by the project's loader (npu.config.load_pipeline_config, schema
# npu/schemas/config.schema.yaml): a YAML syntax error names the file and line, a missing,
# misspelled or wrong-typed key names the file and key, one line each, before any job runs.
# (A YAML syntax error in a --configfile itself is reported by Snakemake, which parses that file
# before this Snakefile runs.)
DEFAULT_CONFIG = Path("config/config.yaml")
try:
    _settings = workflow.config_settings
    _validated = load_pipeline_config([DEFAULT_CONFIG] * DEFAULT_CONFIG.is_file() + list(_settings.configfiles),
                                      dict(_settings.config))
except ConfigError as error:
    sys.exit(f"dnpu: {error}")
config.clear()
config.update(_validated)

include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/compile.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/quantize.smk"
include: "workflow/rules/verify.smk"
include: "workflow/rules/synth.smk"
include: "workflow/rules/rtl.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/dse.smk"

report: "workflow/report/workflow.rst"


rule all:
    input:
        expand(f"{RESULTS}/models/{{model}}/accuracy.tsv", model=TRAINED_MODELS),
        SEED_TARGETS,
        expand(f"{RESULTS}/models/{{model}}/ir/check.tsv", model=ALL_MODELS),
        expand(f"{RESULTS}/{{npu}}/{{model}}/compile.tsv", npu=NPUS, model=ALL_MODELS),
        expand(f"{RESULTS}/{{npu}}/{{model}}/analytical.tsv", npu=NPUS, model=ALL_MODELS),
        expand(f"{RESULTS}/{{npu}}/{{model}}/cycle.tsv", npu=NPUS, model=ALL_MODELS),
        f"{RESULTS}/crossval/summary.tsv",
        expand(f"{RESULTS}/{{npu}}/{{model}}/roofline.tsv", npu=NPUS, model=ALL_MODELS),
        GPU_TARGETS,
        SPEEDUP_TARGETS,
        QUANT_TARGETS,
        SYNTH_TARGETS,
        RTL_TABLES,
        REPORT_TARGETS,
        DSE_TARGETS,
    default_target: True
