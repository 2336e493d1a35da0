rule train:
    """Train a tiny masked-diffusion model on its offline task (LLaDA/MDLM loss)."""
    output:
        weights=f"{RESULTS}/models/{{model}}/checkpoint/model.safetensors",
        meta=f"{RESULTS}/models/{{model}}/checkpoint/meta.json",
    params:
        code=stage_code("train", "train_stage"),
        preset=model_preset,
        sections=preset_sections("name", "architecture", "task", "training"),
        threads=config["train"]["threads"],
    log:
        f"{RESULTS}/logs/train/{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/train/{{model}}.tsv"
    threads: config["train"]["threads"]
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu train --preset {params.preset} --out $(dirname {output.weights}) "
        "--threads {params.threads} 2> {log}"
