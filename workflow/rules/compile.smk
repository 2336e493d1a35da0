rule compile:
    """Compile a model's exported step graphs (refresh, prefix and dual in-block) for one NPU preset."""
    input:
        check=f"{RESULTS}/models/{{model}}/ir/check.tsv",
        npu=npu_preset,
        technology=npu_technology,
    output:
        table=f"{RESULTS}/{{npu}}/{{model}}/compile.tsv",
    params:
        code=stage_code("compile", "compile_stage"),
    log:
        f"{RESULTS}/logs/compile/{{npu}}__{{model}}.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu compile --npu {input.npu} --ir-dir $(dirname {input.check}) "
        "--out-dir $(dirname {output.table}) 2> {log}"
