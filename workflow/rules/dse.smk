# The design-space sweep (npu.dse, docs/dse.md): one job per design point of the `dse:` grid,
# keyed by the point's id (npu.dse.grid.point_id: readable parameters + a digest of the derived
# preset), then one summary with area, power, Pareto fronts and figure 8. A point's job reruns
# only when its own parameters, the base preset, the generation settings or the code change:
# a grown grid runs only its new points.
from npu.config import read_yaml
from npu.dse.grid import cycle_sampled, design_points

DSE = config["dse"]
DSE_TARGETS = []
DSE_POINTS = {}
if DSE["enabled"]:
    try:
        DSE_BASE_FILES = npu_preset_files(DSE["base"])
        DSE_POINTS = {point.id: point for point in design_points(DSE["grid"], read_yaml(DSE_BASE_FILES["npu"]))}
        DSE_MODEL_FILES = [model_preset_path(name) for name in DSE["models"]]
        for name in DSE["models"]:
            if name not in MODEL_SPECS:
                MODEL_SPECS[name] = load_model_spec(name, CONFIG_DIR)
    except ConfigError as error:
        sys.exit(f"dnpu: config: dse: {error}")
    DSE_PRESETS = NPUS if DSE["presets"] is None else DSE["presets"]
    for name in DSE_PRESETS:
        if name not in NPUS:
            sys.exit(f"dnpu: config: dse.presets lists {name!r}, which is not in npus")
    if DSE_PRESETS:
        for name in DSE["models"]:
            if name not in ALL_MODELS:
                sys.exit(f"dnpu: config: dse.models lists {name!r}, which is not in models.trained or models.shape_only "
                         "(the presets' rows come from their analytical.tsv; set dse.presets: [] to sweep it alone)")
    for name in DSE["cycle_sample"]["points"]:
        if name not in DSE_POINTS:
            sys.exit(f"dnpu: config: dse.cycle_sample.points lists {name!r}, which is not a point of dse.grid")
    # The area model reads the base preset's synthesis tables when the pipeline synthesizes it.
    DSE_SYNTH = {}
    if SYNTH["enabled"]:
        if DSE["base"] not in NPUS:
            sys.exit(f"dnpu: config: dse.base {DSE['base']!r} must be one of npus when synth.enabled "
                     "(its synthesis tables calibrate the area model)")
        DSE_SYNTH = {"sram": f"{RESULTS}/synth/{DSE['base']}/sram.tsv",
                     "liberty": f"{RESULTS}/synth/liberty/asap7_rvt_{SYNTH['map_corner']}.lib"}
        if SYNTH_UNIT_NAMES:
            DSE_SYNTH["units"] = f"{RESULTS}/synth/{DSE['base']}/units.tsv"
    DSE_TARGETS = [f"{RESULTS}/dse/{name}" for name in ("points.tsv", "pareto.tsv", "pareto.png")]

wildcard_constraints:
    point="[A-Za-z0-9_.-]+",


def dse_point_arguments(wildcards):
    """The point's grid parameters and, on sampled points, the cycle check's options."""
    point = DSE_POINTS[wildcards.point]
    sample = DSE["cycle_sample"]
    arguments = f"--parameters '{json.dumps(point.parameters, sort_keys=True)}'"
    if cycle_sampled(point.id, sample["every"], sample["points"]):
        arguments += f" --cycle-max-instructions {sample['max_instructions']} --cycle-dram {sample['dram']}"
    return arguments


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
        "npu dse-point --base {input.base} --point {wildcards.point} {params.point} --models {params.models} "
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
        figure=report(f"{RESULTS}/dse/pareto.png", caption="../report/dse.rst", category="Design space"),
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
