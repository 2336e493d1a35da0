# The 7 nm synthesis flow (npu.synth, docs/synthesis.md): the ASAP7 RVT libraries merged per
# corner; each synthesis job - a unit of npu.synth.units.SYNTH_UNITS with its Verilog parameters,
# clock period and mapping corner (npu.synth.jobs) - synthesized by Yosys once, however many
# presets share it, timed and powered by OpenSTA per corner; per-preset tables join the jobs and
# compose the units too large to synthesize flat (npu.synth.compose). Tables land in results/synth/.
#
#   synth_liberty      merged library per corner          results/synth/liberty/asap7_rvt_{corner}.lib
#   synth_netlist      one job's netlist                  results/synth/units/{job}/netlist.v, synthesis.json
#   synth_activity     its switching activity (gate-level) results/synth/units/{job}/activity.json
#   synth_timing       its timing and power per corner    results/synth/units/{job}/timing_{corner}.tsv
#   synth_units        a preset's jobs + compositions     results/synth/{npu}/units.tsv
#   synth_sram         a preset's SRAMs                   results/synth/{npu}/sram.tsv
#   synth_composition  composed vs flat arrays (error)    results/synth/composition.tsv
#   synth_anchor       the ORFS-style INT8 anchor         results/synth/anchor.tsv
#   synth_summary      every preset                       results/synth/summary.tsv
#   synth_die          die area per preset vs GA102       results/synth/die_area.tsv
#   synth_trace        a trained model's operands         results/synth/trace/{model}.npz
#   synth_tech         calibrated technology table        results/synth/{npu}/tech.yaml, energy_calibration.tsv
#   synth_energy       energy per token before / after    results/synth/{npu}/energy_per_token.tsv, energy_by_unit.tsv
#
# A job reruns when its unit's Verilog (content, as a parameter), its parameters, period or
# corner (its key), the library or the code of its stage changes. An edit of a preset that leaves
# a unit's parameters and clock alone changes no job; the preset's table reruns only when its
# jobs or compositions change.

wildcard_constraints:
    job="|".join(re.escape(key) for key in SYNTH_JOBS) or "NO_JOBS",
    corner="TT|SS|FF",


rule synth_liberty:
    """The ASAP7 RVT cell groups of one corner, decompressed and merged, dont_use cells marked."""
    output:
        liberty=f"{RESULTS}/synth/liberty/asap7_rvt_{{corner}}.lib",
    params:
        code=stage_code("synth", "synth_liberty_stage"),
        pdk=f"--pdk {SYNTH['pdk']}" if SYNTH["pdk"] else "",
    log:
        f"{RESULTS}/logs/synth/liberty_{{corner}}.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu synth-liberty --corner {wildcards.corner} {params.pdk} --out {output.liberty} 2> {log}"


rule synth_netlist:
    """One job: a unit with its parameters, synthesized by Yosys at its clock (mapping-corner library)."""
    input:
        liberty=synth_job_liberty,
    output:
        netlist=f"{RESULTS}/synth/units/{{job}}/netlist.v",
        record=f"{RESULTS}/synth/units/{{job}}/synthesis.json",
    params:
        code=stage_code("synth", "synth_netlist_stage"),
        rtl=lambda wildcards: source_fingerprint(get_unit(synth_job(wildcards).unit)),  # the Verilog, by content
        unit=lambda wildcards: synth_job(wildcards).unit,
        parameters=lambda wildcards: json.dumps(synth_job(wildcards).parameters, sort_keys=True),
        period=lambda wildcards: synth_job(wildcards).period_ps,
        yosys=SYNTH["yosys"],
    log:
        f"{RESULTS}/logs/synth/units/{{job}}_netlist.log",
    benchmark:
        f"{BENCHMARKS}/synth/units/{{job}}_netlist.tsv"
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu synth-netlist --unit {params.unit} --parameters '{params.parameters}' --clock-period-ps {params.period} "
        "--liberty {input.liberty} --yosys {params.yosys} --out-dir $(dirname {output.record}) 2> {log}"


rule synth_trace:
    """The vector / matrix operands of a trained model's generation on the functional simulator."""
    input:
        weights=f"{RESULTS}/models/{{model}}/checkpoint/model.safetensors",
        meta=f"{RESULTS}/models/{{model}}/checkpoint/meta.json",
        npu=NPU_FILES[NPUS[0]]["npu"] if NPUS else [],
    output:
        trace=f"{RESULTS}/synth/trace/{{model}}.npz",
    params:
        code=stage_code("synth", "synth_trace_stage"),
    log:
        f"{RESULTS}/logs/synth/trace_{{model}}.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu synth-trace --checkpoint $(dirname {input.weights}) --npu {input.npu} --out {output.trace} 2> {log}"


rule synth_activity:
    """Per-net switching activity of a netlist on its unit's workload (gate-level simulation):
    the traced operands of a model run where they exist, else the unit's operand distribution."""
    input:
        record=f"{RESULTS}/synth/units/{{job}}/synthesis.json",
        netlist=f"{RESULTS}/synth/units/{{job}}/netlist.v",
        trace=SYNTH_TRACE,
    output:
        activity=f"{RESULTS}/synth/units/{{job}}/activity.json",
    params:
        code=stage_code("synth", "synth_activity_stage"),
        vectors=SYNTH["activity_vectors"],
        max_cells=SYNTH["activity_max_cells"],
        pdk=f"--pdk {SYNTH['pdk']}" if SYNTH["pdk"] else "",
        trace=lambda wildcards, input: f"--trace {input.trace}" if input.trace else "",
    log:
        f"{RESULTS}/logs/synth/units/{{job}}_activity.log",
    benchmark:
        f"{BENCHMARKS}/synth/units/{{job}}_activity.tsv"
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu synth-activity --synthesis {input.record} --vectors {params.vectors} --max-cells {params.max_cells} {params.pdk} "
        "{params.trace} --out {output.activity} 2> {log}"


rule synth_timing:
    """OpenSTA: worst slack, fmax, critical path, leakage and power of one netlist at one corner."""
    input:
        record=f"{RESULTS}/synth/units/{{job}}/synthesis.json",
        netlist=f"{RESULTS}/synth/units/{{job}}/netlist.v",
        liberty=f"{RESULTS}/synth/liberty/asap7_rvt_{{corner}}.lib",
        activity=synth_activity_of,
    output:
        row=f"{RESULTS}/synth/units/{{job}}/timing_{{corner}}.tsv",
        path=f"{RESULTS}/synth/units/{{job}}/critical_path_{{corner}}.txt",
    params:
        code=stage_code("synth", "synth_timing_stage"),
        activity=lambda wildcards, input: f"--activities {input.activity}" if input.activity else "",
    log:
        f"{RESULTS}/logs/synth/units/{{job}}_timing_{{corner}}.log",
    benchmark:
        f"{BENCHMARKS}/synth/units/{{job}}_timing_{{corner}}.tsv"
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu synth-timing --synthesis {input.record} --liberty {input.liberty} --corner {wildcards.corner} "
        "{params.activity} --out {output.row} --path-report {output.path} 2> {log}"


rule synth_sram:
    """The preset's vector, matrix, FP and INT SRAMs tiled from the ASAP7 SRAM bank macros."""
    input:
        npu=npu_preset,
        liberty=f"{RESULTS}/synth/liberty/asap7_rvt_TT.lib",  # its inverter: the SRAM leakage estimate
    output:
        table=f"{RESULTS}/synth/{{npu}}/sram.tsv",
    params:
        code=stage_code("synth", "synth_sram_stage"),
        sram_pdk=f"--sram-pdk {SYNTH['sram_pdk']}" if SYNTH["sram_pdk"] else "",
    log:
        f"{RESULTS}/logs/synth/{{npu}}/sram.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu synth-sram --npu {input.npu} {params.sram_pdk} --liberty {input.liberty} --out {output.table} 2> {log}"


rule synth_units:
    """A preset's jobs x corners and the units composed from them: results/synth/{npu}/units.tsv."""
    input:
        rows=synth_preset_rows,
    output:
        table=f"{RESULTS}/synth/{{npu}}/units.tsv",
    params:
        code=stage_code("synth", "synth_table_stage"),
        compositions=synth_compositions,
    log:
        f"{RESULTS}/logs/synth/{{npu}}/units.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu synth-table --npu {wildcards.npu} --compositions '{params.compositions}' --tables {input.rows} "
        "--out {output.table} 2> {log}"


rule synth_composition:
    """Composed arrays (PE x count) against flat synthesis at small sizes: results/synth/composition.tsv."""
    input:
        rows=lambda wildcards: [f"{RESULTS}/synth/units/{job.key}/timing_{corner}.tsv"
                                for job in [*SYNTH_PRESET_JOBS[NPUS[0]].values(), *SYNTH_ANCHOR_JOBS.values()]
                                for corner in SYNTH_CORNERS],
    output:
        table=f"{RESULTS}/synth/composition.tsv",
    params:
        code=stage_code("synth", "synth_composition_stage"),
    log:
        f"{RESULTS}/logs/synth/composition.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu synth-composition --tables {input.rows} --out {output.table} 2> {log}"


rule synth_anchor:
    """The ORFS-style 8x8 INT8 array (200 ps, FF), its PE, and our fp PE: results/synth/anchor.tsv."""
    input:
        rows=lambda wildcards: [f"{RESULTS}/synth/units/{job.key}/timing_{corner}.tsv"
                                for job in SYNTH_ANCHOR_JOBS.values() for corner in SYNTH_CORNERS],
    output:
        table=f"{RESULTS}/synth/anchor.tsv",
    params:
        code=stage_code("synth", "synth_anchor_stage"),
    log:
        f"{RESULTS}/logs/synth/anchor.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu synth-anchor --tables {input.rows} --out {output.table} 2> {log}"


rule synth_summary:
    """Every preset's units.tsv in one table: results/synth/summary.tsv."""
    input:
        tables=expand(f"{RESULTS}/synth/{{npu}}/units.tsv", npu=NPUS),
    output:
        table=table(f"{RESULTS}/synth/summary.tsv", "synth_summary.rst", "synthesis per unit"),
    params:
        code=stage_code("synth", "synth_summary_stage"),
    log:
        f"{RESULTS}/logs/synth/summary.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu synth-summary --tables {input.tables} --out {output.table} 2> {log}"


rule synth_tech:
    """The preset's technology table with energies calibrated from its synthesis: results/synth/{npu}/tech.yaml."""
    input:
        npu=npu_preset,
        technology=npu_technology,
        units=f"{RESULTS}/synth/{{npu}}/units.tsv",
        sram=f"{RESULTS}/synth/{{npu}}/sram.tsv",
        liberty=f"{RESULTS}/synth/liberty/asap7_rvt_TT.lib",
    output:
        tech=f"{RESULTS}/synth/{{npu}}/tech.yaml",
        table=f"{RESULTS}/synth/{{npu}}/energy_calibration.tsv",
    params:
        code=stage_code("synth", "synth_tech_stage"),
    log:
        f"{RESULTS}/logs/synth/{{npu}}/tech.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu synth-tech --npu {input.npu} --units {input.units} --sram {input.sram} --liberty {input.liberty} "
        "--out {output.tech} --table {output.table} 2> {log}"


rule synth_energy:
    """Energy per token of the models' generations with the preset's table and the calibrated one."""
    input:
        npu=npu_preset,
        technology=npu_technology,
        tech=f"{RESULTS}/synth/{{npu}}/tech.yaml",
    output:
        table=f"{RESULTS}/synth/{{npu}}/energy_per_token.tsv",
        by_unit=f"{RESULTS}/synth/{{npu}}/energy_by_unit.tsv",
    params:
        code=stage_code("synth", "synth_energy_stage"),
        models=" ".join(model_preset_path(name) for name in SYNTH_ENERGY_MODELS),
        sections=presets_sections(SYNTH_ENERGY_MODELS, "name", "architecture", "task", "decoding"),
        scenarios=SCENARIO_ARGS,
    log:
        f"{RESULTS}/logs/synth/{{npu}}/energy.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu synth-energy --npu {input.npu} --technology {input.tech} --models {params.models} {params.scenarios} "
        "--out {output.table} --by-unit {output.by_unit} 2> {log}"


rule synth_die:
    """Each preset's modelled die area (logic, SRAM, uncore allowance) beside GA102: results/synth/die_area.tsv."""
    input:
        units=expand(f"{RESULTS}/synth/{{npu}}/units.tsv", npu=NPUS),
        srams=expand(f"{RESULTS}/synth/{{npu}}/sram.tsv", npu=NPUS),
    output:
        table=f"{RESULTS}/synth/die_area.tsv",
    params:
        code=stage_code("synth", "synth_die_stage"),
    log:
        f"{RESULTS}/logs/synth/die_area.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu synth-die --units {input.units} --srams {input.srams} --out {output.table} 2> {log}"
