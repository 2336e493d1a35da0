rule export:
    """One denoising step (transformer + sampling pass) per cache mode as a JSON graph IR.

    Trained models are exported with their weights and checked against PyTorch by the numpy IR
    interpreter; public-shape models are exported shape-only.
    """
    input:
        checkpoint=checkpoint_of,
    output:
        check=f"{RESULTS}/models/{{model}}/ir/check.tsv",
    params:
        code=stage_code("export", "export_stage"),
        preset=model_preset,
        sections=preset_sections("name", "architecture", "task", "decoding"),
        cache_modes=" ".join(config["export"]["cache_modes"]),
        checkpoint_arg=lambda wc, input: f"--checkpoint $(dirname {input.checkpoint[0]})" if input.checkpoint else "",
        query_length=config["export"]["shape_only_query_length"],
        kv_length=config["export"]["shape_only_kv_length"],
    log:
        f"{RESULTS}/logs/export/{{model}}.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu export --preset {params.preset} {params.checkpoint_arg} "
        "--cache-modes {params.cache_modes} --query-length {params.query_length} "
        "--kv-length {params.kv_length} --out-dir $(dirname {output.check}) 2> {log}"
