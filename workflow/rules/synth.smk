# The 7 nm synthesis flow (npu.synth, docs/synthesis.md): the ASAP7 RVT libraries merged per
# corner, each unit of npu.synth.units.SYNTH_UNITS synthesized by Yosys for each NPU preset (its
# parameters and clock), timed and powered by OpenSTA per corner. Tables land in results/synth/.
#
# A job reruns when its unit's Verilog (content, as a parameter), its parameters or clock period (from the preset, as a
# parameter: an unrelated edit of the preset reruns nothing here), the corner's library or the
# code of its stage changes.
# The unit list, corners and targets are set up in common.smk (SYNTH_*).

wildcard_constraints:
    unit="|".join(SYNTH_UNITS),
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
    """One unit of one preset, synthesized by Yosys at the preset's clock (mapping-corner library)."""
    input:
        liberty=f"{RESULTS}/synth/liberty/asap7_rvt_{SYNTH['map_corner']}.lib",
    output:
        netlist=f"{RESULTS}/synth/{{npu}}/{{unit}}/netlist.v",
        record=f"{RESULTS}/synth/{{npu}}/{{unit}}/synthesis.json",
    params:
        code=stage_code("synth", "synth_netlist_stage"),
        rtl=lambda wildcards: source_fingerprint(get_unit(wildcards.unit)),  # the Verilog, by content
        setting=synth_setting,
        npu=npu_preset,
        yosys=SYNTH["yosys"],
        period=f"--clock-period-ps {SYNTH['clock_period_ps']}" if SYNTH["clock_period_ps"] else "",
    log:
        f"{RESULTS}/logs/synth/{{npu}}/{{unit}}_netlist.log",
    benchmark:
        f"{BENCHMARKS}/synth/{{npu}}/{{unit}}_netlist.tsv"
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu synth-netlist --npu {params.npu} --unit {wildcards.unit} --liberty {input.liberty} "
        "--yosys {params.yosys} {params.period} --out-dir $(dirname {output.record}) 2> {log}"


rule synth_activity:
    """Per-net switching activity of a netlist on its unit's workload (gate-level simulation)."""
    input:
        record=f"{RESULTS}/synth/{{npu}}/{{unit}}/synthesis.json",
        netlist=f"{RESULTS}/synth/{{npu}}/{{unit}}/netlist.v",
    output:
        activity=f"{RESULTS}/synth/{{npu}}/{{unit}}/activity.json",
    params:
        code=stage_code("synth", "synth_activity_stage"),
        vectors=SYNTH["activity_vectors"],
        max_cells=SYNTH["activity_max_cells"],
        pdk=f"--pdk {SYNTH['pdk']}" if SYNTH["pdk"] else "",
    log:
        f"{RESULTS}/logs/synth/{{npu}}/{{unit}}_activity.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu synth-activity --synthesis {input.record} --vectors {params.vectors} --max-cells {params.max_cells} {params.pdk} "
        "--out {output.activity} 2> {log}"


rule synth_timing:
    """OpenSTA: worst slack, fmax, critical path, leakage and power of one netlist at one corner."""
    input:
        record=f"{RESULTS}/synth/{{npu}}/{{unit}}/synthesis.json",
        netlist=f"{RESULTS}/synth/{{npu}}/{{unit}}/netlist.v",
        liberty=f"{RESULTS}/synth/liberty/asap7_rvt_{{corner}}.lib",
        activity=synth_activity_of,
    output:
        row=f"{RESULTS}/synth/{{npu}}/{{unit}}/timing_{{corner}}.tsv",
        path=f"{RESULTS}/synth/{{npu}}/{{unit}}/critical_path_{{corner}}.txt",
    params:
        code=stage_code("synth", "synth_timing_stage"),
        activity=lambda wildcards, input: f"--activities {input.activity}" if input.activity else "",
    log:
        f"{RESULTS}/logs/synth/{{npu}}/{{unit}}_timing_{{corner}}.log",
    benchmark:
        f"{BENCHMARKS}/synth/{{npu}}/{{unit}}_timing_{{corner}}.tsv"
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu synth-timing --synthesis {input.record} --liberty {input.liberty} --corner {wildcards.corner} "
        "{params.activity} --out {output.row} --path-report {output.path} 2> {log}"


rule synth_sram:
    """The preset's vector, matrix, FP and INT SRAMs tiled from the ASAP7 SRAM bank macros."""
    input:
        npu=npu_preset,
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
        "npu synth-sram --npu {input.npu} {params.sram_pdk} --out {output.table} 2> {log}"


rule synth_units:
    """Every unit x corner of one preset: results/synth/{npu}/units.tsv."""
    input:
        rows=expand(f"{RESULTS}/synth/{{{{npu}}}}/{{unit}}/timing_{{corner}}.tsv", unit=SYNTH_UNIT_NAMES,
                    corner=SYNTH_CORNERS),
    output:
        table=f"{RESULTS}/synth/{{npu}}/units.tsv",
    params:
        code=stage_code("synth", "synth_table_stage"),
    log:
        f"{RESULTS}/logs/synth/{{npu}}/units.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu synth-table --tables {input.rows} --out {output.table} 2> {log}"


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
