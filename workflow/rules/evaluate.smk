rule evaluate:
    """Exact match (tasks) or perplexity (corpus) of a trained model, per cache mode and selection rule."""
    input:
        weights=f"{RESULTS}/models/{{model}}/checkpoint/model.safetensors",
    output:
        table=f"{RESULTS}/models/{{model}}/accuracy.tsv",
    params:
        code=stage_code("evaluate", "evaluate_stage"),
        preset=model_preset,
        sections=preset_sections("name", "task", "decoding"),
        n_samples=config["evaluate"]["n_samples"],
        cache_modes=" ".join(config["evaluate"]["cache_modes"]),
        thresholds=" ".join(str(t) for t in config["evaluate"]["thresholds"]),
    log:
        f"{RESULTS}/logs/evaluate/{{model}}.log",
    threads: config["train"]["threads"]
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu evaluate --preset {params.preset} --checkpoint $(dirname {input.weights}) "
        "--n-samples {params.n_samples} --cache-modes {params.cache_modes} "
        "--thresholds {params.thresholds} --threads {threads} --out {output.table} 2> {log}"
