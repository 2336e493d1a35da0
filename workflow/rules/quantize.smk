# KV-cache quantization (BAOS and its baselines) on the trained tiny models, in the arithmetic of
# the NPU preset config["quantization"]["npu"]. Tables land in results/kv/.

rule calibrate:
    """Static K-smoothing factors of one model (SmoothAttention-style offline baseline)."""
    input:
        weights=f"{RESULTS}/models/{{model}}/checkpoint/model.safetensors",
        **QUANT_NPU_FILES,
    output:
        factors=f"{RESULTS}/models/{{model}}/kv/static_smoothing.json",
    params:
        code=stage_code("quantize", "calibrate_stage"),
        preset=model_preset,
        sections=preset_sections("name", "task", "decoding"),
    log:
        f"{RESULTS}/logs/calibrate/{{model}}.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu calibrate --checkpoint $(dirname {input.weights}) --preset {params.preset} --npu {input.npu} --out {output.factors} 2> {log}"


rule accuracy:
    """Exact match / perplexity of every KV method x bit width x cache mode on every model."""
    input:
        weights=expand(f"{RESULTS}/models/{{model}}/checkpoint/model.safetensors", model=QUANT_MODELS),
        **QUANT_NPU_FILES,
        factors=expand(f"{RESULTS}/models/{{model}}/kv/static_smoothing.json", model=QUANT_MODELS),
    output:
        table=table(f"{RESULTS}/kv/accuracy.tsv", "kv_accuracy.rst", "KV-cache accuracy"),
        json=f"{RESULTS}/kv/accuracy.json",
        markdown=f"{RESULTS}/kv/accuracy.md",
    params:
        code=stage_code("quantize", "accuracy_stage"),
        sections=QUANT_SECTIONS,
        sources=kv_source_args,
        static=lambda wc, input: " ".join(f"--static {m}={f}" for m, f in zip(QUANT_MODELS, input.factors)),
        methods=" ".join(QUANT["methods"]),
        bits=" ".join(str(b) for b in QUANT["bits"]),
        cache_modes=" ".join(QUANT["cache_modes"]),
        prompts=QUANT["prompts"],
        baos=f"--baos-criterion {QUANT['baos_criterion']} --mx-scale {QUANT['mx_scale']}",
    threads: config["train"]["threads"]
    log:
        f"{RESULTS}/logs/accuracy.log",
    benchmark:
        f"{BENCHMARKS}/accuracy.tsv"
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu kv-accuracy {params.sources} {params.static} --npu {input.npu} --methods {params.methods} "
        "--bits {params.bits} --cache-modes {params.cache_modes} --prompts {params.prompts} {params.baos} "
        "--threads {threads} --out {output.table} --json {output.json} --markdown {output.markdown} 2> {log}"


rule baos_ablation:
    """BAOS design choices, one changed at a time, on one model (dual cache)."""
    input:
        weights=expand(f"{RESULTS}/models/{{model}}/checkpoint/model.safetensors", model=QUANT_MODELS),
        **QUANT_NPU_FILES,
    output:
        table=f"{RESULTS}/kv/ablation.tsv",
    params:
        code=stage_code("quantize", "ablation_stage"),
        sections=QUANT_SECTIONS,
        sources=kv_source_args,
        label=ABLATION_LABEL,
        prompts=QUANT["prompts"],
    threads: config["train"]["threads"]
    log:
        f"{RESULTS}/logs/baos_ablation.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu kv-ablation {params.sources} --label {params.label} --npu {input.npu} "
        "--prompts {params.prompts} --threads {threads} --out {output.table} 2> {log}"


rule accuracy_exact:
    """Exact match in the NPU's own arithmetic (bf16 and BAOS-MXINT KV, dual cache) next to the fast simulator's."""
    input:
        weights=expand(f"{RESULTS}/models/{{model}}/checkpoint/model.safetensors", model=QUANT_MODELS),
        **QUANT_NPU_FILES,
    output:
        table=f"{RESULTS}/kv/exact.tsv",
    params:
        code=stage_code("quantize", "exact_accuracy_stage"),
        sections=QUANT_SECTIONS,
        checkpoints=lambda wc, input: " ".join([*(f"--checkpoint {m}=$(dirname {w})" for m, w in zip(QUANT_MODELS, input.weights)),
                                                *(f"--preset {m}={model_preset_path(m)}" for m in QUANT_MODELS)]),
        bits=" ".join(str(b) for b in QUANT["exact_bits"]),
        prompts=QUANT["exact_prompts"],
    threads: config["train"]["threads"]
    log:
        f"{RESULTS}/logs/accuracy_exact.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu kv-exact {params.checkpoints} --npu {input.npu} --bits {params.bits} --prompts {params.prompts} "
        "--threads {threads} --out {output.table} 2> {log}"


rule kv_analysis:
    """Per layer and channel K/V statistics across steps and blocks, decoded vs [MASK] slots."""
    input:
        weights=expand(f"{RESULTS}/models/{{model}}/checkpoint/model.safetensors", model=QUANT_MODELS),
        **QUANT_NPU_FILES,
    output:
        table=f"{RESULTS}/kv/kv_stats.tsv",
        channels=f"{RESULTS}/kv/kv_channels.tsv",
        figure=figure(f"{RESULTS}/kv/kv_drift.png", "fig6_kv_drift.rst", "6 K/V drift"),
    params:
        code=stage_code("quantize", "kv_analysis_stage"),
        sections=QUANT_SECTIONS,
        sources=kv_source_args,
        prompts=QUANT["analysis_prompts"],
    threads: config["train"]["threads"]
    log:
        f"{RESULTS}/logs/kv_analysis.log",
    benchmark:
        f"{BENCHMARKS}/kv_analysis.tsv"
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu kv-analysis {params.sources} --npu {input.npu} --prompts {params.prompts} "
        "--threads {threads} --out {output.table} --channels-out {output.channels} --figure {output.figure} 2> {log}"


rule kv_traffic:
    """KV-cache DRAM bytes per generated token with each method (analytical NPU model)."""
    input:
        **QUANT_NPU_FILES,
    output:
        table=f"{RESULTS}/kv/traffic.tsv",
    params:
        code=stage_code("quantize", "kv_traffic_stage"),
        presets=" ".join(model_preset_path(name) for name in [*QUANT_MODELS, *SHAPE_ONLY_MODELS]),
        sections=presets_sections([*QUANT_MODELS, *SHAPE_ONLY_MODELS], "name", "architecture", "task", "decoding"),
        scenarios=SCENARIO_ARGS,
        methods=" ".join(QUANT["methods"]),
        bits=" ".join(str(b) for b in QUANT["bits"]),
        cache_modes=" ".join(QUANT["cache_modes"]),
    log:
        f"{RESULTS}/logs/kv_traffic.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu kv-traffic --npu {input.npu} --models {params.presets} {params.scenarios} --methods {params.methods} "
        "--bits {params.bits} --cache-modes {params.cache_modes} --out {output.table} 2> {log}"
