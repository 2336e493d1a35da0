rule train:
    """Train a tiny masked-diffusion model on its offline task (LLaDA/MDLM loss)."""
    input:
        preset=model_preset,
    output:
        weights=f"{RESULTS}/models/{{model}}/checkpoint/model.safetensors",
        meta=f"{RESULTS}/models/{{model}}/checkpoint/meta.json",
    params:
        code=TRAIN_CODE,
        threads=config["train"]["threads"],
    log:
        f"{RESULTS}/logs/train/{{model}}.log",
    threads: config["train"]["threads"]
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu train --preset {input.preset} --out $(dirname {output.weights}) "
        "--threads {params.threads} 2> {log}"
