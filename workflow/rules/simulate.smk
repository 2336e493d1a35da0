rule simulate_analytical:
    """Closed-form latency, energy and DRAM traffic of whole generations (every cache mode and rule)."""
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
