# The design-space sweep (npu.dse, docs/dse.md): one job per design point of the `dse:` grid,
# keyed by the point's id (npu.dse.grid.point_id: readable parameters + a digest of the derived
# preset), then one summary with area, power, Pareto fronts and figure 8. A point's job reruns
# only when its own parameters, the base preset, the generation settings or the code change:
# a grown grid runs only its new points. The points and checks: workflow/rules/common.smk.
rule dse_point:
    """One design point: its derived preset, its generations on the analytical model, and on
    sampled points the cycle simulator's check."""
    input:
        base=lambda wildcards: DSE_BASE_FILES["npu"],
        technology=lambda wildcards: DSE_BASE_FILES["technology"],
    output:
        table=f"{RESULTS}/dse/points/{{point}}/point.tsv",
        preset=f"{RESULTS}/dse/points/{{point}}/npu.yaml",
        cycle=f"{RESULTS}/dse/points/{{point}}/cycle.tsv",
    params:
        code=stage_code("dse", "dse_point_stage"),
        point=dse_point_arguments,
        models=" ".join(DSE_MODEL_FILES) if DSE["enabled"] else "",
        sections=presets_sections(DSE["models"], "name", "architecture", "task", "decoding") if DSE["enabled"] else "",
        scenarios=SCENARIO_ARGS,
        generations=f"--cache-modes {' '.join(DSE['cache_modes'])} --rules {' '.join(DSE['rules'])}",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    log:
        f"{RESULTS}/logs/dse_point/{{point}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/dse_point/{{point}}.tsv"
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu dse-point --base {input.base} --technology {input.technology} --point {wildcards.point} {params.point} --models {params.models} "
        "{params.scenarios} {params.generations} --out-dir $(dirname {output.table}) 2> {log}"


rule dse_summary:
    """Every point with area and power, the presets beside them, the Pareto fronts, figure 8."""
    input:
        points=lambda wildcards: expand(f"{RESULTS}/dse/points/{{point}}/point.tsv", point=DSE_POINTS),
        analytical=lambda wildcards: expand(f"{RESULTS}/{{npu}}/{{model}}/analytical.tsv", npu=DSE_PRESETS,
                                            model=DSE["models"]),
        presets=lambda wildcards: [NPU_FILES[name]["npu"] for name in DSE_PRESETS],
        synth=lambda wildcards: list(DSE_SYNTH.values()),
    output:
        points=f"{RESULTS}/dse/points.tsv",
        pareto=f"{RESULTS}/dse/pareto.tsv",
        figure=figure(f"{RESULTS}/dse/pareto.png", "dse.rst", "8 design-space Pareto front"),
    params:
        code=stage_code("dse", "dse_summary_stage"),
        presets=lambda wildcards, input: f"--presets {' '.join(input.presets)} --analytical {' '.join(input.analytical)}"
        if input.presets else "",
        synth=lambda wildcards: " ".join(f"--{key} {path}" for key, path in DSE_SYNTH.items()),
        generations=f"--cache-modes {' '.join(DSE['cache_modes'])} --rules {' '.join(DSE['rules'])}",
        budgets=" ".join(str(value) for value in DSE["area_budgets_mm2"]),
    resources:
        mem_mb=1000,
        runtime=10,
    log:
        f"{RESULTS}/logs/dse_summary.log",
    benchmark:
        f"{RESULTS}/benchmarks/dse_summary.tsv"
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu dse-summary --points {input.points} {params.presets} {params.synth} {params.generations} "
        "--area-budgets {params.budgets} --out {output.points} --pareto {output.pareto} "
        "--figure {output.figure} 2> {log}"
