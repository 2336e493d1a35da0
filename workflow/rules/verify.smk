# Compiler verification (`make verify`; not part of `all`): every generation of the trained task
# models, decoded by the compiled step programs on the functional simulator (50 prompts in lock
# step, npu.runtime.lockstep), must equal the NPU-arithmetic reference token for token. Progress:
# the bar in results/logs/verify/{model}.log.

rule verify_compiled:
    """Compiled generations vs the NPU-arithmetic reference for one model (all machines, cache modes and rules)."""
    input:
        weights=f"{RESULTS}/models/{{model}}/checkpoint/model.safetensors",
    output:
        report=f"{RESULTS}/verify/{{model}}.json",
    params:
        code=stage_code("verify", "verify_stage"),
        sections=preset_sections("name", "task", "decoding"),
        npus=" ".join(VERIFY["npus"]),
        prompts=VERIFY["prompts"],
    log:
        f"{RESULTS}/logs/verify/{{model}}.log",
    threads: 18  # one worker process per (machine, cache, rule) run at most; Snakemake caps it at --cores
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu verify --checkpoint $(dirname {input.weights}) --npu {params.npus} "
        "--prompts {params.prompts} --jobs {threads} --out {output.report} > {log} 2>&1"


rule verify:
    """Every model of config["verify"]["models"]."""
    input:
        expand(f"{RESULTS}/verify/{{model}}.json", model=VERIFY["models"]),
