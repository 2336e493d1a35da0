# KV-cache quantization (BAOS and its baselines) on the trained tiny models, in the arithmetic of
# the NPU preset config["quantization"]["npu"]. Tables land in results/kv/.

rule calibrate:
    """Static K-smoothing factors of one model (SmoothAttention-style offline baseline)."""
    input:
        weights=f"{RESULTS}/models/{{model}}/checkpoint/model.safetensors",
    output:
        factors=f"{RESULTS}/models/{{model}}/kv/static_smoothing.json",
    params:
        code=QUANT_CODE,
        npu=QUANT["npu"],
    log:
        f"{RESULTS}/logs/calibrate/{{model}}.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu calibrate --checkpoint $(dirname {input.weights}) --npu {params.npu} --out {output.factors} 2> {log}"


rule accuracy:
    """Exact match / perplexity of every KV method x bit width x cache mode on every model."""
    input:
        weights=expand(f"{RESULTS}/models/{{model}}/checkpoint/model.safetensors", model=QUANT_MODELS),
        factors=expand(f"{RESULTS}/models/{{model}}/kv/static_smoothing.json", model=QUANT_MODELS),
    output:
        table=f"{RESULTS}/kv/accuracy.tsv",
        json=f"{RESULTS}/kv/accuracy.json",
        markdown=f"{RESULTS}/kv/accuracy.md",
    params:
        code=QUANT_CODE,
        sources=kv_source_args,
        static=lambda wc, input: " ".join(f"--static {m}={f}" for m, f in zip(QUANT_MODELS, input.factors)),
        npu=QUANT["npu"],
        methods=" ".join(QUANT["methods"]),
        bits=" ".join(str(b) for b in QUANT["bits"]),
        cache_modes=" ".join(QUANT["cache_modes"]),
        prompts=QUANT["prompts"],
    threads: config["train"]["threads"]
    log:
        f"{RESULTS}/logs/accuracy.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu kv-accuracy {params.sources} {params.static} --npu {params.npu} --methods {params.methods} "
        "--bits {params.bits} --cache-modes {params.cache_modes} --prompts {params.prompts} "
        "--threads {threads} --out {output.table} --json {output.json} --markdown {output.markdown} 2> {log}"


rule baos_ablation:
    """BAOS design choices, one changed at a time, on one model (dual cache)."""
    input:
        weights=expand(f"{RESULTS}/models/{{model}}/checkpoint/model.safetensors", model=QUANT_MODELS),
    output:
        table=f"{RESULTS}/kv/ablation.tsv",
    params:
        code=QUANT_CODE,
        sources=kv_source_args,
        label=ABLATION_LABEL,
        npu=QUANT["npu"],
        prompts=QUANT["prompts"],
    threads: config["train"]["threads"]
    log:
        f"{RESULTS}/logs/baos_ablation.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu kv-ablation {params.sources} --label {params.label} --npu {params.npu} "
        "--prompts {params.prompts} --threads {threads} --out {output.table} 2> {log}"


rule accuracy_exact:
    """Exact match in the NPU's own arithmetic (bf16 and BAOS-MXINT KV, dual cache) next to the fast simulator's."""
    input:
        weights=expand(f"{RESULTS}/models/{{model}}/checkpoint/model.safetensors", model=QUANT_MODELS),
    output:
        table=f"{RESULTS}/kv/exact.tsv",
    params:
        code=QUANT_EXACT_CODE,
        checkpoints=lambda wc, input: " ".join(f"--checkpoint {m}=$(dirname {w})" for m, w in zip(QUANT_MODELS, input.weights)),
        npu=QUANT["npu"],
        bits=" ".join(str(b) for b in QUANT["exact_bits"]),
        prompts=QUANT["exact_prompts"],
    threads: config["train"]["threads"]
    log:
        f"{RESULTS}/logs/accuracy_exact.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu kv-exact {params.checkpoints} --npu {params.npu} --bits {params.bits} --prompts {params.prompts} "
        "--threads {threads} --out {output.table} 2> {log}"


rule kv_analysis:
    """Per layer and channel K/V statistics across steps and blocks, decoded vs [MASK] slots."""
    input:
        weights=expand(f"{RESULTS}/models/{{model}}/checkpoint/model.safetensors", model=QUANT_MODELS),
    output:
        table=f"{RESULTS}/kv/kv_stats.tsv",
        figure=f"{RESULTS}/kv/kv_drift.png",
    params:
        code=QUANT_CODE,
        sources=kv_source_args,
        npu=QUANT["npu"],
        prompts=QUANT["analysis_prompts"],
    threads: config["train"]["threads"]
    log:
        f"{RESULTS}/logs/kv_analysis.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu kv-analysis {params.sources} --npu {params.npu} --prompts {params.prompts} "
        "--threads {threads} --out {output.table} --figure {output.figure} 2> {log}"


rule kv_traffic:
    """KV-cache DRAM bytes per generated token with each method (analytical NPU model)."""
    input:
        presets=expand(f"{CONFIG_DIR}/models/{{model}}.yaml", model=[*QUANT_MODELS, *SHAPE_ONLY_MODELS]),
        npu=f"{CONFIG_DIR}/npu/{QUANT['npu']}.yaml",
    output:
        table=f"{RESULTS}/kv/traffic.tsv",
    params:
        code=QUANT_CODE,
        models=" ".join([*QUANT_MODELS, *SHAPE_ONLY_MODELS]),
        methods=" ".join(QUANT["methods"]),
        bits=" ".join(str(b) for b in QUANT["bits"]),
        cache_modes=" ".join(QUANT["cache_modes"]),
    log:
        f"{RESULTS}/logs/kv_traffic.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu kv-traffic --npu {input.npu} --models {params.models} --methods {params.methods} "
        "--bits {params.bits} --cache-modes {params.cache_modes} --out {output.table} 2> {log}"
