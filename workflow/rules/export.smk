rule export:
    """One denoising step (transformer + sampling pass) per cache mode as a JSON graph IR.

    Trained models are exported with their weights and checked against PyTorch by the numpy IR
    interpreter; public-shape models are exported shape-only.
    """
    input:
        preset=model_preset,
        checkpoint=checkpoint_of,
    output:
        check=f"{RESULTS}/models/{{model}}/ir/check.tsv",
    params:
        code=EXPORT_CODE,
        cache_modes=" ".join(config["export"]["cache_modes"]),
        checkpoint_arg=lambda wc, input: f"--checkpoint $(dirname {input.checkpoint[0]})" if input.checkpoint else "",
        query_length=config["export"]["shape_only_query_length"],
        kv_length=config["export"]["shape_only_kv_length"],
    log:
        f"{RESULTS}/logs/export/{{model}}.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu export --preset {input.preset} {params.checkpoint_arg} "
        "--cache-modes {params.cache_modes} --query-length {params.query_length} "
        "--kv-length {params.kv_length} --out-dir $(dirname {output.check}) 2> {log}"
