rule simulate_analytical:
    """Analytical latency, energy and DRAM traffic of whole generations (every cache mode and rule),
    costed on the compiled step programs."""
    input:
        npu=npu_preset,
        technology=npu_energy_technology,  # the calibrated table with synth.calibrated_energy
    output:
        table=f"{RESULTS}/{{npu}}/{{model}}/analytical.tsv",
    params:
        code=stage_code("simulate", "simulate_analytical_stage"),
        preset=model_preset,
        sections=preset_sections("name", "architecture", "task", "decoding"),
        scenarios=SCENARIO_ARGS,
    log:
        f"{RESULTS}/logs/simulate_analytical/{{npu}}__{{model}}.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu simulate-analytical --npu {input.npu} --technology {input.technology} --model {params.preset} "
        "{params.scenarios} --out {output.table} 2> {log}"


rule simulate_cycle:
    """Every compiled step program on the cycle-accurate simulator with the DRAM model in the loop;
    whole generations step by step for simulate.whole_generations."""
    input:
        compiled=f"{RESULTS}/{{npu}}/{{model}}/compile.tsv",
        npu=npu_preset,
        technology=npu_energy_technology,  # the calibrated table with synth.calibrated_energy
    output:
        steps=f"{RESULTS}/{{npu}}/{{model}}/cycle.tsv",
        generation=f"{RESULTS}/{{npu}}/{{model}}/cycle_generation.tsv",
        traces=directory(f"{RESULTS}/{{npu}}/{{model}}/traces"),
    params:
        code=stage_code("simulate", "simulate_cycle_stage"),
        preset=model_preset,
        sections=preset_sections("name", "task", "decoding"),
        scenarios=SCENARIO_ARGS,
        dram=config["simulate"]["cycle_dram"],
        max_instructions=config["simulate"]["max_instructions"],
        trace_max_instructions=config["simulate"]["trace_max_instructions"],
        jedec_max=config["simulate"]["jedec_max_instructions"],
        # > 0: cycle_generation.tsv from every step of whole generations (simulate.whole_generations)
        whole_generation=lambda wc: config["export"]["shape_only_kv_length"]
        if wc.model in config["simulate"]["whole_generations"]["models"]
        and wc.npu in config["simulate"]["whole_generations"]["npus"] else 0,
    log:
        f"{RESULTS}/logs/simulate_cycle/{{npu}}__{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/simulate_cycle/{{npu}}__{{model}}.tsv"
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu simulate-cycle --npu {input.npu} --technology {input.technology} --model {params.preset} {params.scenarios} --compile-dir $(dirname {input.compiled}) "
        "--dram {params.dram} --max-instructions {params.max_instructions} "
        "--trace-max-instructions {params.trace_max_instructions} --trace-dir {output.traces} "
        "--jedec-max-instructions {params.jedec_max} --whole-generation-kv-length {params.whole_generation} "
        "--out {output.steps} --generation-out {output.generation} 2> {log}"


rule crossvalidate:
    """Analytical program model vs the cycle simulator per step, unit class and operator."""
    input:
        compiled=f"{RESULTS}/{{npu}}/{{model}}/compile.tsv",
        npu=npu_preset,
        technology=npu_technology,
    output:
        table=f"{RESULTS}/{{npu}}/{{model}}/crossval.tsv",
    params:
        code=stage_code("simulate", "crossvalidate_stage"),
        max_instructions=config["simulate"]["max_instructions"],
    log:
        f"{RESULTS}/logs/crossvalidate/{{npu}}__{{model}}.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu crossvalidate --npu {input.npu} --compile-dir $(dirname {input.compiled}) "
        "--max-instructions {params.max_instructions} --out {output.table} 2> {log}"


rule roofline:
    """Every compiled step program per operator and step: attained cycles vs compute and DRAM bounds."""
    input:
        compiled=f"{RESULTS}/{{npu}}/{{model}}/compile.tsv",
        npu=npu_preset,
        technology=npu_technology,
    output:
        table=f"{RESULTS}/{{npu}}/{{model}}/roofline.tsv",
        figure=figure(f"{RESULTS}/{{npu}}/{{model}}/roofline.png", "fig3_roofline.rst", "3 roofline per operator"),
    params:
        code=stage_code("simulate", "roofline_stage"),
        max_instructions=config["simulate"]["max_instructions"],
        attained=config["simulate"]["roofline_attained"],
    log:
        f"{RESULTS}/logs/roofline/{{npu}}__{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/roofline/{{npu}}__{{model}}.tsv"
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu roofline --npu {input.npu} --compile-dir $(dirname {input.compiled}) "
        "--max-instructions {params.max_instructions} --attained {params.attained} "
        "--out {output.table} --figure {output.figure} 2> {log}"


rule crossvalidation_summary:
    """All (npu, model) cross-validation tables in one summary table and figure."""
    input:
        tables=expand(f"{RESULTS}/{{npu}}/{{model}}/crossval.tsv", npu=NPUS, model=ALL_MODELS),
    output:
        table=table(f"{RESULTS}/crossval/summary.tsv", "crossval_summary.rst", "cross-validation summary"),
        figure=figure(f"{RESULTS}/crossval/summary.png", "crossval_summary.rst", "4 cross-validation"),
    params:
        code=stage_code("simulate", "crossvalidation_summary_stage"),
    log:
        f"{RESULTS}/logs/crossvalidation_summary.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu crossvalidation-summary --tables {input.tables} --out {output.table} --figure {output.figure} 2> {log}"


rule gpu_baselines:
    """Analytical A6000 / A100 / H100 models of the same generations, the Fast-dLLM A100 check and
    the GPU sampling share."""
    output:
        generations=f"{RESULTS}/gpu/gpu_generations.tsv",
        fast_dllm=f"{RESULTS}/gpu/fast_dllm_check.tsv",
        sampling=f"{RESULTS}/gpu/gpu_sampling_share.tsv",
    params:
        code=stage_code("simulate", "gpu_baselines_stage"),
        presets=" ".join(model_preset_path(name) for name in SHAPE_ONLY_MODELS),
        sections=presets_sections(SHAPE_ONLY_MODELS, "name", "architecture", "task", "decoding"),
        scenarios=SCENARIO_ARGS,
    log:
        f"{RESULTS}/logs/gpu_baselines.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu gpu-baselines --models {params.presets} {params.scenarios} --out-dir $(dirname {output.generations}) 2> {log}"


rule speedup:
    """The NPU presets' generations of the public-shape models next to the modelled GPUs running
    the same schedules: tokens/s, energy per token, ratios, a bandwidth-matched ratio."""
    input:
        analytical=expand(f"{RESULTS}/{{npu}}/{{model}}/analytical.tsv", npu=NPUS, model=SHAPE_ONLY_MODELS),
        gpu=f"{RESULTS}/gpu/gpu_generations.tsv",
        npus=[npu_preset_files(name)["npu"] for name in NPUS],
    output:
        table=table(f"{RESULTS}/speedup.tsv", "speedup.rst", "NPU vs GPU generations"),
        figure=figure(f"{RESULTS}/speedup.png", "speedup.rst", "2 throughput and energy"),
    params:
        code=stage_code("simulate", "speedup_stage"),
    log:
        f"{RESULTS}/logs/speedup.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu speedup --analytical {input.analytical} --npus {input.npus} --gpu {input.gpu} "
        "--out {output.table} --figure {output.figure} 2> {log}"
