rule simulate_analytical:
    """Analytical latency, energy and DRAM traffic of whole generations (every cache mode and rule),
    costed on the compiled step programs."""
    input:
        preset=model_preset,
        npu=npu_preset,
    output:
        table=f"{RESULTS}/{{npu}}/{{model}}/analytical.tsv",
    params:
        code=SIMULATE_CODE,
    log:
        f"{RESULTS}/logs/simulate_analytical/{{npu}}__{{model}}.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu simulate-analytical --npu {wildcards.npu} --model {wildcards.model} --out {output.table} 2> {log}"


rule simulate_cycle:
    """Every compiled step program on the cycle-accurate simulator with the DRAM model in the loop."""
    input:
        compiled=f"{RESULTS}/{{npu}}/{{model}}/compile.tsv",
        preset=model_preset,
        npu=npu_preset,
    output:
        steps=f"{RESULTS}/{{npu}}/{{model}}/cycle.tsv",
        generation=f"{RESULTS}/{{npu}}/{{model}}/cycle_generation.tsv",
        traces=directory(f"{RESULTS}/{{npu}}/{{model}}/traces"),
    params:
        code=SIMULATE_CODE,
        dram=config["simulate"]["cycle_dram"],
        max_instructions=config["simulate"]["max_instructions"],
        trace_max_instructions=config["simulate"]["trace_max_instructions"],
        jedec_max=config["simulate"]["jedec_max_instructions"],
    log:
        f"{RESULTS}/logs/simulate_cycle/{{npu}}__{{model}}.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu simulate-cycle --npu {input.npu} --model {input.preset} --compile-dir $(dirname {input.compiled}) "
        "--dram {params.dram} --max-instructions {params.max_instructions} "
        "--trace-max-instructions {params.trace_max_instructions} --trace-dir {output.traces} "
        "--jedec-max-instructions {params.jedec_max} "
        "--out {output.steps} --generation-out {output.generation} 2> {log}"


rule crossvalidate:
    """Analytical program model vs the cycle simulator per step, unit class and operator."""
    input:
        compiled=f"{RESULTS}/{{npu}}/{{model}}/compile.tsv",
        npu=npu_preset,
    output:
        table=f"{RESULTS}/{{npu}}/{{model}}/crossval.tsv",
    params:
        code=SIMULATE_CODE,
        max_instructions=config["simulate"]["max_instructions"],
    log:
        f"{RESULTS}/logs/crossvalidate/{{npu}}__{{model}}.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu crossvalidate --npu {input.npu} --compile-dir $(dirname {input.compiled}) "
        "--max-instructions {params.max_instructions} --out {output.table} 2> {log}"


rule crossvalidation_summary:
    """All (npu, model) cross-validation tables in one summary table and figure."""
    input:
        tables=expand(f"{RESULTS}/{{npu}}/{{model}}/crossval.tsv", npu=NPUS, model=ALL_MODELS),
    output:
        table=f"{RESULTS}/crossval/summary.tsv",
        figure=f"{RESULTS}/crossval/summary.png",
    params:
        code=SIMULATE_CODE,
    log:
        f"{RESULTS}/logs/crossvalidation_summary.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu crossvalidation-summary --tables {input.tables} --out {output.table} --figure {output.figure} 2> {log}"


rule gpu_baselines:
    """Analytical A6000 / A100 / H100 models of the same generations, the Fast-dLLM A100 check and
    the GPU sampling share."""
    input:
        presets=expand(f"{CONFIG_DIR}/models/{{model}}.yaml", model=SHAPE_ONLY_MODELS),
    output:
        generations=f"{RESULTS}/gpu/gpu_generations.tsv",
        fast_dllm=f"{RESULTS}/gpu/fast_dllm_check.tsv",
        sampling=f"{RESULTS}/gpu/gpu_sampling_share.tsv",
    params:
        code=SIMULATE_CODE,
        models=" ".join(SHAPE_ONLY_MODELS),
    log:
        f"{RESULTS}/logs/gpu_baselines.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu gpu-baselines --models {params.models} --out-dir $(dirname {output.generations}) 2> {log}"
