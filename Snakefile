# dnpu pipeline: the table of contents. Each stage lives in workflow/rules/<stage>.smk, each rule
# calls one `npu <stage>` command, and every artifact lands under results/.
#
#   train      tiny masked-diffusion models on offline tasks      results/models/{model}/checkpoint/
#   evaluate   exact match / perplexity per cache mode           results/models/{model}/accuracy.tsv
#   export     one denoising step per cache mode -> graph IR     results/models/{model}/ir/
#   compile    step graphs -> NPU programs, DRAM map, statistics  results/{npu}/{model}/compile.tsv
#   simulate_analytical  analytical latency/energy per generation results/{npu}/{model}/analytical.tsv
#   simulate_cycle  step programs on the cycle simulator (DRAM in loop) results/{npu}/{model}/cycle.tsv
#   crossvalidate   analytical vs cycle-accurate, per step/class/operator results/{npu}/{model}/crossval.tsv
#                   and over every configuration                       results/crossval/summary.{tsv,png}
#   roofline        per operator/step: attained vs compute and DRAM bound results/{npu}/{model}/roofline.{tsv,png}
#   gpu_baselines   A6000/A100/H100 models of the same generations      results/gpu/*.tsv
#   calibrate       static KV-smoothing factors (offline baseline)      results/models/{model}/kv/
#   accuracy        KV methods x bits x cache modes (BAOS, baselines)   results/kv/accuracy.{tsv,md}
#   accuracy_exact  bf16 / BAOS-MXINT KV in the NPU's exact arithmetic    results/kv/exact.tsv
#   baos_ablation   BAOS design choices one at a time                   results/kv/ablation.tsv
#   kv_analysis     K/V statistics across steps and blocks              results/kv/kv_stats.tsv, kv_drift.png
#   kv_traffic      KV DRAM bytes per generated token per method        results/kv/traffic.tsv
#
# Not in `all` (hours on 2 cores; `make verify`):
#   verify_compiled compiled generations == NPU-arithmetic reference    results/verify/{model}.json

from snakemake.utils import validate

configfile: "config/config.yaml"
validate(config, "workflow/schemas/config.schema.yaml")

include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/compile.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/quantize.smk"
include: "workflow/rules/verify.smk"


rule all:
    input:
        expand(f"{RESULTS}/models/{{model}}/accuracy.tsv", model=TRAINED_MODELS),
        expand(f"{RESULTS}/models/{{model}}/ir/check.tsv", model=ALL_MODELS),
        expand(f"{RESULTS}/{{npu}}/{{model}}/compile.tsv", npu=NPUS, model=ALL_MODELS),
        expand(f"{RESULTS}/{{npu}}/{{model}}/analytical.tsv", npu=NPUS, model=ALL_MODELS),
        expand(f"{RESULTS}/{{npu}}/{{model}}/cycle.tsv", npu=NPUS, model=ALL_MODELS),
        f"{RESULTS}/crossval/summary.tsv",
        expand(f"{RESULTS}/{{npu}}/{{model}}/roofline.tsv", npu=NPUS, model=ALL_MODELS),
        GPU_TARGETS,
        QUANT_TARGETS,
    default_target: True
