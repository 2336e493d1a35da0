# RTL verification (docs/rtl.md): compiled step programs of the trained models and the
# microbenchmarks on npu_top, simulated as a reduced machine of each preset (VLEN = MLEN = 8):
# final state bit for bit against the functional simulator, cycles against the cycle simulator.

rule rtl_verify:
    """Compiled steps and microbenchmarks on the RTL: verify.tsv (program, bit_exact, RTL and cycle-simulator
    cycles, error %) and the switching activity of one compiled step (activity.vcd)."""
    input:
        npu=npu_preset,
        weights=expand(f"{RESULTS}/models/{{model}}/checkpoint/model.safetensors", model=RTL["models"]),
    output:
        table=f"{RESULTS}/rtl/{{npu}}/verify.tsv",
        activity=f"{RESULTS}/rtl/{{npu}}/activity.vcd",
    params:
        code=stage_code("rtl", "rtl_verify_stage"),
        sections=presets_sections(RTL["models"], "name", "task", "decoding") if RTL["enabled"] else "",
        checkpoints=lambda wildcards, input: " ".join(f"$(dirname {w})" for w in input.weights),
        caches=" ".join(RTL["cache_modes"]),
        steps=RTL["steps"],
        simulator=RTL["simulator"],
        vcd_cycles=RTL["vcd_cycles"],
    log:
        f"{RESULTS}/logs/rtl_verify/{{npu}}.log",
    benchmark:
        f"{BENCHMARKS}/rtl_verify/{{npu}}.tsv"
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu rtl-verify --npu {input.npu} --checkpoint {params.checkpoints} --cache {params.caches} "
        "--steps {params.steps} --simulator {params.simulator} --vcd-cycles {params.vcd_cycles} "
        "--out {output.table} --vcd {output.activity} > {log} 2>&1"
