# dnpu pipeline: the table of contents. Each stage lives in workflow/rules/<stage>.smk, each rule
# calls one `npu <stage>` command, and every artifact lands under results/.
#
#   train      tiny masked-diffusion models on offline tasks      results/models/{model}/checkpoint/
#   evaluate   exact match / perplexity per cache mode           results/models/{model}/accuracy.tsv
#   export     one denoising step per cache mode -> graph IR     results/models/{model}/ir/
#   compile    step graphs -> NPU programs, DRAM map, statistics  results/{npu}/{model}/compile.tsv
#   simulate_analytical  closed-form latency/energy per generation results/{npu}/{model}/analytical.tsv

from snakemake.utils import validate

configfile: "config/config.yaml"
validate(config, "workflow/schemas/config.schema.yaml")

include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/compile.smk"
include: "workflow/rules/simulate.smk"


rule all:
    input:
        expand(f"{RESULTS}/models/{{model}}/accuracy.tsv", model=TRAINED_MODELS),
        expand(f"{RESULTS}/models/{{model}}/ir/check.tsv", model=ALL_MODELS),
        expand(f"{RESULTS}/{{npu}}/{{model}}/compile.tsv", npu=NPUS, model=ALL_MODELS),
        expand(f"{RESULTS}/{{npu}}/{{model}}/analytical.tsv", npu=NPUS, model=ALL_MODELS),
    default_target: True
