"""Synthesis PPA of the datapath units (issue 17): jobs shared by presets, units composed from
their PEs and checked against flat synthesis, the core with its memories as black boxes, the
INT8 anchor.

Pure-Python cases (job keys, composition arithmetic, bad inputs) always run; the ones that run
Yosys / OpenSTA skip when `synthesis_unavailable()` names a missing tool or PDK. Sizes are the
small ones (a 4x4 array, one PE); the pipeline's own jobs at the presets' sizes take minutes
(docs/synthesis.md states the times).
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from npu.hw.config import load_npu_config
from npu.synth.compose import (COMPOSITIONS, CompositionError, compose_row, composition_check,
                               preset_compositions)
from npu.synth.flow import synthesis_unavailable
from npu.synth.jobs import SynthJob, job_for, preset_jobs
from npu.synth.units import ANCHOR_UNITS, SYNTH_UNITS, get_unit

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
needs_tools = pytest.mark.skipif(synthesis_unavailable() is not None, reason=str(synthesis_unavailable()))


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


# ---- jobs: one netlist per (unit, parameters, clock, corner) -----------------------------------

def test_presets_with_equal_parameters_share_one_job():
    presets = [load_npu_config(name) for name in ("dnpu-edge", "dnpu-cloud", "ar-npu")]
    for unit in ("fp32_add", "fp32_exp", "matrix_pe", "vector_lane"):
        assert len({job_for(unit, config).key for config in presets}) == 1, unit  # no parameters, same 1 GHz
    # The core's scalar memories and dLLM instructions differ: edge != cloud != ar-npu.
    assert len({job_for("npu_core_control", config).key for config in presets}) == 3
    edge = job_for("npu_core_control", presets[0])
    assert re.fullmatch(r"npu_core_control-[0-9a-f]{8}", edge.key)
    assert edge.parameters["INT_SRAM_WORDS"] == presets[0].int_sram.size_bytes // 4


def test_job_key_changes_with_parameters_clock_and_corner_only():
    base = SynthJob("dma_codec", {"BLOCK": 32}, 1000.0, "TT")
    assert SynthJob("dma_codec", {"BLOCK": 32}, 1000.0, "TT").key == base.key
    assert len({base.key, SynthJob("dma_codec", {"BLOCK": 16}, 1000.0, "TT").key,
                SynthJob("dma_codec", {"BLOCK": 32}, 500.0, "TT").key,
                SynthJob("dma_codec", {"BLOCK": 32}, 1000.0, "FF").key}) == 4


def test_anchor_units_keep_their_own_target_and_corner():
    config = load_npu_config("dnpu-edge")
    for name in ANCHOR_UNITS:
        job = job_for(name, config, clock_period_override_ps=700)
        assert job.period_ps == 200.0 and job.map_corner == "FF", name
    assert job_for("fp32_add", config, clock_period_override_ps=700).period_ps == 700


def test_preset_jobs_and_compositions_follow_the_preset():
    cloud = load_npu_config("dnpu-cloud")
    jobs = preset_jobs(cloud, ["fp32_add", "dma_codec"])
    assert jobs["dma_codec"].parameters == {"BLOCK": cloud.mx_block}
    compositions = preset_compositions(cloud, ["matrix_pe", "matrix_pe_row0", "vector_lane"])
    assert compositions["systolic_array"] == {"matrix_pe_row0": cloud.mlen, "matrix_pe": cloud.mlen * (cloud.mlen - 1)}
    assert compositions["vector_lanes"] == {"vector_lane": cloud.vlen}
    assert preset_compositions(cloud, ["matrix_pe"]) == {}  # a part missing: nothing composed


def test_the_core_is_composed_from_its_control_and_the_fpus_arithmetic_units():
    """npu_core = npu_core_control (the FPU's arithmetic units and the memories black boxes) + one
    of each arithmetic unit the scalar FPU instantiates; the default units compose it for every
    preset, and the flat core (opt-in) is its check."""
    from npu.synth.units import CORE_DATAPATH_UNITS, OPT_IN_UNITS

    control = get_unit("npu_core_control")
    assert control.module == get_unit("npu_core_flat").module == "npu_core"
    assert set(CORE_DATAPATH_UNITS) <= set(control.black_boxes) and "word_memory" in control.black_boxes
    assert not set(CORE_DATAPATH_UNITS) & set(get_unit("npu_core_flat").black_boxes)
    scalar_fpu = (REPO / "npu" / "rtl" / "scalar_fpu.v").read_text()
    for unit in CORE_DATAPATH_UNITS:
        assert len(re.findall(rf"^\s*{unit}\s+u_", scalar_fpu, re.M)) == 1, unit  # one instance each
    default = [name for name in SYNTH_UNITS if name not in ANCHOR_UNITS + OPT_IN_UNITS]
    assert "npu_core_flat" not in default and "npu_core_control" in default
    for name in ("dnpu-edge", "dnpu-cloud", "ar-npu"):
        parts = preset_compositions(load_npu_config(name), default)["npu_core"]
        assert parts == {"npu_core_control": 1, **{unit: 1 for unit in CORE_DATAPATH_UNITS}}
    assert COMPOSITIONS["npu_core"].flat_checks == {1: "npu_core_flat"}


def test_a_part_without_power_leaves_the_composed_power_not_computed():
    rows = {"a": _row("a", 10.0, 0.5), "b": _row("b", 5.0, 0.3)}
    rows["b"]["power_default_activity_uw"] = "not computed (OpenSTA crashed)"
    row = compose_row("x", {"a": 1, "b": 2}, rows)
    assert row["cell_area_um2"] == pytest.approx(20.0) and row["fmax_ghz"] == 0.3
    assert row["power_default_activity_uw"].startswith("not computed") and "b" in row["power_default_activity_uw"]


def test_unknown_unit_is_named():
    with pytest.raises(ValueError, match="no_such_unit"):
        get_unit("no_such_unit")


# ---- composition arithmetic ---------------------------------------------------------------------

def _row(unit: str, area: float, fmax: float, power: float | str = 2.0) -> dict:
    return {"unit": unit, "corner": "TT", "clock_period_ps": "1000", "cell_area_um2": area, "sequential_area_um2": 1.0,
            "cells": 10, "sequential_cells": 2, "leakage_uw": 0.5, "power_default_activity_uw": 1.0,
            "power_activity_uw": power, "worst_slack_ps": 1000 - 1000 / fmax, "critical_path_ps": 1000 / fmax,
            "fmax_ghz": fmax, "logic_levels": 3, "path_start": "a", "path_end": "y", "synth_seconds": 1,
            "sta_seconds": 1, "activity_workload": "w"}


def test_composed_row_sums_parts_and_takes_the_slowest_path():
    rows = {"matrix_pe": _row("matrix_pe", 10.0, 0.5), "matrix_pe_row0": _row("matrix_pe_row0", 6.0, 0.8)}
    row = compose_row("systolic_array", {"matrix_pe_row0": 4, "matrix_pe": 12}, rows)
    assert row["cell_area_um2"] == pytest.approx(4 * 6 + 12 * 10)
    assert row["cells"] == 160 and row["sequential_cells"] == 32
    assert row["leakage_uw"] == pytest.approx(8.0) and row["power_activity_uw"] == pytest.approx(32.0)
    assert row["fmax_ghz"] == 0.5 and row["path_start"] == "matrix_pe: a"
    rows["matrix_pe"]["power_activity_uw"] = "not measured"
    assert "not measured" in compose_row("systolic_array", {"matrix_pe_row0": 4, "matrix_pe": 12}, rows)["power_activity_uw"]


def test_composition_with_a_missing_part_is_a_named_error():
    with pytest.raises(CompositionError, match="matrix_pe_row0"):
        compose_row("systolic_array", {"matrix_pe_row0": 4, "matrix_pe": 12}, {"matrix_pe": _row("matrix_pe", 1, 1)})


def test_composition_check_reports_the_error_against_flat():
    rows = [_row("matrix_pe", 10.0, 0.5), _row("matrix_pe_row0", 6.0, 0.8), _row("systolic_array_4x4", 150.0, 0.45)]
    checks = {check["figure"]: check for check in composition_check(rows)}
    area = checks["cell_area_um2"]
    assert (area["size"], area["flat"], area["composed"]) == (4, 150.0, 144.0)
    assert area["error_percent"] == pytest.approx(-4.0)
    assert checks["fmax_ghz"]["error_percent"] == pytest.approx(100 * (0.5 - 0.45) / 0.45)


# ---- with the tools -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def liberties(tmp_path_factory) -> dict[str, Path]:
    from npu.synth.liberty import prepare_liberty
    from npu.synth.pdk import find_pdk

    folder = tmp_path_factory.mktemp("liberty")
    return {corner: prepare_liberty(find_pdk(), corner, folder / f"asap7_rvt_{corner}.lib") for corner in ("TT", "FF")}


def _synthesize_and_time(name: str, liberty: Path, out: Path, corner: str = "TT", activity_vectors: int = 0) -> dict:
    from npu.stages.synth import synth_activity_stage, synth_netlist_stage, synth_timing_stage

    job = job_for(name, load_npu_config("dnpu-edge"))
    synth_netlist_stage(name, liberty, out, parameters=job.parameters, clock_period_ps=job.period_ps)
    activities = None
    if activity_vectors:
        activities = out / "activity.json"
        synth_activity_stage(out / "synthesis.json", activities, vectors=activity_vectors)
    return synth_timing_stage(out / "synthesis.json", liberty, corner, out / f"timing_{corner}.tsv",
                              out / f"path_{corner}.txt", activities=activities)


@needs_tools
def test_pe_composition_matches_a_flat_2x2_array(tmp_path, liberties):
    """The default-suite size: a flat 2x2 systolic_array (4 PEs, one skew stage of 17 flops)
    against 2 x matrix_pe_row0 + 2 x matrix_pe synthesized alone. Same bounds as at 4x4."""
    from npu.synth.compose import compose_row
    from npu.synth.units import SynthUnit

    rows = {name: _synthesize_and_time(name, liberties["TT"], tmp_path / name) for name in ("matrix_pe", "matrix_pe_row0")}
    flat_unit = SynthUnit("systolic_array_2x2", get_unit("matrix_pe").sources, clock="clk", top="systolic_array")
    from npu.stages.synth import synth_timing_stage
    from npu.synth.flow import synthesize_unit

    synthesize_unit(flat_unit, {"MLEN": 2, "WROWS": 1}, liberties["TT"], 1000.0, tmp_path / "flat")
    flat = synth_timing_stage(tmp_path / "flat" / "synthesis.json", liberties["TT"], "TT", tmp_path / "flat.tsv",
                              tmp_path / "flat_path.txt")
    composed = compose_row("systolic_array", COMPOSITIONS["systolic_array"].parts(2), rows)
    for figure, bound in (("cell_area_um2", 10), ("cells", 10), ("leakage_uw", 10), ("fmax_ghz", 15)):
        error = 100 * (float(composed[figure]) - float(flat[figure])) / float(flat[figure])
        assert abs(error) < bound, (figure, error)


@needs_tools
@pytest.mark.slow  # four small syntheses, each reading the merged library: about a minute on the loaded machine
def test_max_tree_composed_from_its_node_matches_the_flat_tree_of_four(tmp_path, liberties):
    """vmaxr's tree of 4 (three compare-and-select nodes, two levels) flat against 3 x the node
    synthesized alone, with the path of two nodes in series: area within 15 %, fmax within 20 %
    (each node's path carries a wrapper flop's clock-to-output and setup the flat tree has once)."""
    rows = [_synthesize_and_time(name, liberties["TT"], tmp_path / name)
            for name in ("vector_max_tree_2", "vector_max_tree_4")]
    checks = {check["figure"]: check for check in composition_check(rows) if check["composition"] == "vector_max_tree"}
    assert checks["cell_area_um2"]["size"] == 4
    assert abs(checks["cell_area_um2"]["error_percent"]) < 15, checks["cell_area_um2"]
    assert abs(checks["fmax_ghz"]["error_percent"]) < 20, checks["fmax_ghz"]


@needs_tools
@pytest.mark.slow  # the flat 4x4 array is 34,000 cells: 3-10 minutes of Yosys (results/synth/composition.tsv has it)
def test_pe_composition_matches_a_flat_4x4_array(tmp_path, liberties):
    """The 4x4 array composed from its PEs against the flat 4x4 synthesis. The composition leaves
    out the input-skew flops (6 x 17 at 4x4) and the per-PE weight-load multiplexers, and flat
    synthesis optimizes across PE borders: the area may differ by a few per cent, not more
    (bound 10 %: the skew flops alone are 102 x 0.29 um^2 = 30 um^2 of some 4,000)."""
    from npu.stages.synth import synth_composition_stage

    tables = []
    for name in ("matrix_pe", "matrix_pe_row0", "systolic_array_4x4"):
        _synthesize_and_time(name, liberties["TT"], tmp_path / name, activity_vectors=32 if name == "matrix_pe" else 0)
        tables.append(tmp_path / name / "timing_TT.tsv")
    checks = read_rows(synth_composition_stage(tables, tmp_path / "composition.tsv"))
    by_figure = {row["figure"]: row for row in checks}
    assert {row["size"] for row in checks} == {"4"}
    assert abs(float(by_figure["cell_area_um2"]["error_percent"])) < 10
    assert abs(float(by_figure["cells"]["error_percent"])) < 10
    assert abs(float(by_figure["leakage_uw"]["error_percent"])) < 10
    # Timing: the array's register-to-register paths are the PE's; wrapper placement differs little.
    assert abs(float(by_figure["fmax_ghz"]["error_percent"])) < 15
    # The PE carries its weights (2 x 16), activation (16 + 1) and partial sum (32): 81 flops.
    pe = read_rows(tmp_path / "matrix_pe" / "timing_TT.tsv")[0]
    assert int(pe["sequential_cells"]) == 81 and float(pe["power_activity_uw"]) > float(pe["leakage_uw"])


@needs_tools
def test_anchor_int8_pe_at_200ps_ff(tmp_path, liberties):
    row = _synthesize_and_time("anchor_int8_pe", liberties["FF"], tmp_path / "pe", corner="FF", activity_vectors=32)
    assert float(row["clock_period_ps"]) == 200.0
    # 8 weight + 8 activation + 32 sum flops; an 8x8 multiplier and a 32-bit adder in between.
    assert int(row["sequential_cells"]) == 48
    assert 20 < float(row["cell_area_um2"]) < 400 and float(row["fmax_ghz"]) > 1.0


@needs_tools
@pytest.mark.slow  # npu_core_control is 28,000 cells: 1-5 minutes of Yosys
def test_core_control_leaves_memories_and_fpu_units_out_and_has_power(tmp_path, liberties):
    """npu_core_control: its memories and the FPU's arithmetic units are taken out of the netlist
    (listed in black_boxes.txt, their outputs tied low), none of the 64 KiB of scalar SRAM is
    counted as flops, and OpenSTA computes its power (the flat core's crashed it)."""
    from npu.synth.netlist import netlist_cells

    row = _synthesize_and_time("npu_core_control", liberties["TT"], tmp_path / "core")
    modules = netlist_cells(tmp_path / "core" / "netlist.v")
    assert not any("word_memory" in kind or "fp32_exp" in kind for counts in modules.values() for kind in counts)
    removed = (tmp_path / "core" / "work" / "black_boxes.txt").read_text()
    assert all(name in removed for name in ("u_program", "u_int_sram", "u_fp_sram", "u_exp", "u_recip", "u_rsqrt"))
    config = load_npu_config("dnpu-edge")
    assert int(row["sequential_cells"]) < (config.int_sram.size_bytes * 8) // 4  # far fewer flops than SRAM bits
    assert int(row["cells"]) < 60_000  # the control alone: the flat core is 157,000 cells
    assert float(row["fmax_ghz"]) > 0 and float(row["leakage_uw"]) > 0
    assert float(row["power_default_activity_uw"]) > float(row["leakage_uw"])  # a number, not "not computed"


@needs_tools
@pytest.mark.slow  # small, but Yosys and OpenSTA each read the merged library: 40 s on the loaded machine
def test_black_box_pins_become_registered_ports_and_the_unit_is_timed_and_powered(tmp_path, liberties):
    """A unit whose black box (a stand-in for the core's FPU units) feeds a register: the
    instance is listed and gone, its pins are ports of the unit (bb_<instance>_<pin>) that the
    wrapper registers, the logic that fed it stays (the operand isolation AND gates), and
    OpenSTA reports a finite power (undriven nets made it NaN) and times the path from the black
    box's output register."""
    import math

    from npu.stages.synth import synth_timing_stage
    from npu.synth.errors import SynthesisError
    from npu.synth.flow import synthesize_unit
    from npu.synth.netlist import netlist_cells
    from npu.synth.units import SynthUnit

    source = tmp_path / "bb_user.v"
    source.write_text("module bb (input [7:0] a, output [7:0] y);\n  assign y = a + 8'd1;\nendmodule\n"
                      "module bb_user (input clk, input use_bb, input [7:0] a, output reg [7:0] q);\n"
                      "  wire [7:0] y;\n  bb u_bb (.a(use_bb ? a : 8'd0), .y(y));\n"
                      "  always @(posedge clk) q <= y ^ a;\nendmodule\n")
    unit = SynthUnit("bb_user", lambda: [source], include_dirs=(), clock="clk", black_boxes=("bb",))
    record = synthesize_unit(unit, {}, liberties["TT"], 1000.0, tmp_path / "out")
    assert (tmp_path / "out" / "work" / "black_boxes.txt").read_text().split() == ["bb_user/u_bb"]
    assert record["ports"]["bb_u_bb_y"] == ["input", 8] and record["ports"]["bb_u_bb_a"] == ["output", 8]
    cells = netlist_cells(tmp_path / "out" / "netlist.v")["bb_user"]
    assert "bb" not in cells
    assert sum(count for kind, count in cells.items() if kind.startswith("AND2")) >= 8  # the isolation stays
    assert record["sequential_cells"] == 8
    row = synth_timing_stage(tmp_path / "out" / "synthesis.json", liberties["TT"], "TT", tmp_path / "t.tsv",
                             tmp_path / "p.txt")
    assert math.isfinite(float(row["power_default_activity_uw"])) and float(row["power_default_activity_uw"]) > 0
    other = SynthUnit("bb_user_without", lambda: [source], include_dirs=(), clock="clk", top="bb_user",
                      black_boxes=("not_instantiated",))
    with pytest.raises(SynthesisError, match="instantiates none"):
        synthesize_unit(other, {}, liberties["TT"], 1000.0, tmp_path / "none")


def test_black_box_that_is_not_declared_still_fails(tmp_path):
    """Only the unit's declared black boxes are allowed; any other undefined module is an error."""
    from npu.synth.units import SynthUnit
    from npu.synth.yosys import is_black_box

    unit = SynthUnit("core_like", lambda: [], black_boxes=("word_memory",))
    assert is_black_box(unit, "word_memory") and is_black_box(unit, "$paramod$0a1b\\word_memory")
    assert not is_black_box(unit, "register_file") and not is_black_box(unit, "$paramod\\word_memory_x\\W=1")


# ---- the pipeline: jobs shared, reruns only where a key changed ---------------------------------

def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                        "PYTHONPATH": str(REPO)}
    return subprocess.run([str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
                           "--configfile", str(workdir / "config.yaml"), *args],
                          capture_output=True, text=True, env=env, timeout=900)


def planned(output: str) -> list[str]:
    return sorted(m.group(1) for line in output.splitlines() if (m := re.match(r"^\s*rule (\w+):", line)))


@needs_tools
def test_pipeline_shares_jobs_between_presets_and_reruns_only_changed_keys(tmp_path):
    config_dir = tmp_path / "presets"  # not config/: the Snakefile would merge a config/config.yaml there
    shutil.copytree(REPO / "config", config_dir)
    twin = yaml.safe_load((config_dir / "npu" / "dnpu-edge.yaml").read_text())
    twin["name"] = "edge-twin"
    (config_dir / "npu" / "edge-twin.yaml").write_text(yaml.safe_dump(twin))
    config = {"config_dir": str(config_dir), "models": {"trained": [], "shape_only": []},
              "npus": ["dnpu-edge", "edge-twin"],
              "quantization": {"models": [], "ablation": {"model": "tiny-sort", "outliers": False}},
              "verify": {"models": []},
              "dse": {"enabled": False},
              "synth": {"units": ["fp32_to_bf16", "matrix_pe", "matrix_pe_row0"], "anchor_units": [],
                        "corners": ["TT"], "activity_vectors": 16}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    target = "results/synth/summary.tsv"
    plan = snakemake(tmp_path, "-n", target)
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert planned(plan.stdout).count("synth_netlist") == 3  # two presets, three shared jobs
    result = snakemake(tmp_path, "--cores", "2", target)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_rows(tmp_path / target)
    assert {(row["npu"], row["unit"]) for row in rows} == {
        (npu, unit) for npu in ("dnpu-edge", "edge-twin")
        for unit in ("fp32_to_bf16", "matrix_pe", "matrix_pe_row0", "systolic_array", "vector_lanes")
        if unit != "vector_lanes"}
    edge, twin_rows = ({row["unit"]: row for row in rows if row["npu"] == npu} for npu in ("dnpu-edge", "edge-twin"))
    assert edge["matrix_pe"]["job"] == twin_rows["matrix_pe"]["job"]  # one netlist
    mlen = load_npu_config("dnpu-edge").mlen
    assert float(edge["systolic_array"]["cell_area_um2"]) == pytest.approx(
        mlen * float(edge["matrix_pe_row0"]["cell_area_um2"]) + mlen * (mlen - 1) * float(edge["matrix_pe"]["cell_area_um2"]),
        rel=1e-5)
    assert planned(snakemake(tmp_path, "-n", target).stdout) == []

    def plan_after(edit: dict) -> list[str]:
        preset = yaml.safe_load((config_dir / "npu" / "edge-twin.yaml").read_text())
        (config_dir / "npu" / "edge-twin.yaml").write_text(yaml.safe_dump({**preset, **edit}))
        result = snakemake(tmp_path, "-n", target)
        assert result.returncode == 0, result.stderr[-2000:]
        (config_dir / "npu" / "edge-twin.yaml").write_text(yaml.safe_dump(preset))
        return planned(result.stdout)

    assert plan_after({"description": "an edit no unit reads"}) == []
    # The array's size changes its composition only: no synthesis job, the twin's table and the summary.
    assert plan_after({"mlen": mlen * 2}) == ["synth_summary", "synth_units"]
    # A new clock gives the twin its own jobs; dnpu-edge's stay as they are.
    assert plan_after({"clock_ghz": 0.5}) == sorted(["synth_netlist"] * 3 + ["synth_timing"] * 3
                                                    + ["synth_activity"] * 3 + ["synth_units", "synth_summary"])


def test_simulators_wait_for_and_read_the_calibrated_table(tmp_path):
    """synth.calibrated_energy (default true): simulate_analytical prices energy with the preset's
    results/synth/{npu}/tech.yaml, so the plan of an analytical table holds the preset's synthesis
    and synth_tech, and its command names that table (a dry run: nothing is synthesized)."""
    config = {"config_dir": str(REPO / "config"), "models": {"trained": ["tiny-sort"], "shape_only": []},
              "npus": ["dnpu-edge"], "quantization": {"models": [], "ablation": {"model": "tiny-sort", "outliers": False}},
              "verify": {"models": []}, "dse": {"enabled": False},
              "synth": {"anchor_units": [], "activity_trace": ""}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    plan = snakemake(tmp_path, "-n", "-p", "results/dnpu-edge/tiny-sort/analytical.tsv")
    assert plan.returncode == 0, plan.stderr[-3000:]
    rules = planned(plan.stdout)
    assert {"synth_tech", "synth_units", "synth_netlist", "simulate_analytical"} <= set(rules)
    assert "--technology results/synth/dnpu-edge/tech.yaml" in plan.stdout


# ---- activity from a model run ------------------------------------------------------------------

def test_recorded_operands_of_a_tiny_model_step_replay_as_a_workload(tmp_path):
    """A one-layer tiny-sort (random weights) generates on the functional simulator inside
    record_operands: the fp32 adds / multiplies / exps and the matrix PE stream it saw are
    recorded, the simulator's results are unchanged, and npu.synth.activity turns the file into
    the units' workloads."""
    import dataclasses

    import numpy as np

    from npu.ir import weights_from_model
    from npu.models.decoding import DecodeConfig
    from npu.models.presets import load_model_spec
    from npu.models.transformer import build_model
    from npu.runtime.generate import SimulatorStepper, generate
    from npu.sim.functional import vector
    from npu.sim.functional.recording import record_operands
    from npu.synth.activity import traced_workload

    config = dataclasses.replace(load_model_spec("tiny-sort").architecture, n_layers=1)
    weights = weights_from_model(build_model(config).init_weights(0))
    plan = DecodeConfig(gen_length=4, block_length=4, steps=2, cache="dual")
    npu = load_npu_config("dnpu-edge")
    prompt = np.arange(1, 14) % 8 + 1
    plain = generate(SimulatorStepper(config, weights, npu, 17, plan.sampling), prompt, plan, config.mask_token_id)
    add_before = vector._BINARY_OPERATIONS["vadd"]
    with record_operands(limit=64) as record:
        traced = generate(SimulatorStepper(config, weights, npu, 17, plan.sampling), prompt, plan, config.mask_token_id)
    assert vector._BINARY_OPERATIONS["vadd"] is add_before  # restored
    assert np.array_equal(plain.tokens, traced.tokens)  # recording changes nothing
    assert record.counts["fp32_add"] == 64 and record.counts["matrix_pe"] == 64
    arrays = record.arrays()
    a = arrays["fp32_add.a"].astype(np.uint32).view(np.float32)
    assert np.isfinite(a).all() and np.abs(a).max() > 0
    assert set(np.unique(arrays["matrix_pe.w_load0"])) == {0, 1}
    np.savez(tmp_path / "trace.npz", description=np.array("tiny-sort test"), **arrays)
    ports = {"clk": ("input", 1), "a": ("input", 32), "b": ("input", 32), "y": ("output", 32)}
    workload = traced_workload(tmp_path / "trace.npz", "fp32_add", ports, vectors=32)
    assert workload is not None and workload.description.startswith("traced: tiny-sort test, 32")
    operands = workload.operands(np.random.default_rng(0), 32)
    assert np.array_equal(operands["a"], arrays["fp32_add.a"][:32])
    pe_ports = {"clk": ("input", 1), **{name: ("input", 1) for name in ("w_load0", "w_load1", "sel_in")},
                "w_data": ("input", 16), "act_in": ("input", 16), "psum_in": ("input", 32)}
    assert traced_workload(tmp_path / "trace.npz", "matrix_pe_row0", pe_ports, 32) is not None  # the PE's stream
    assert traced_workload(tmp_path / "trace.npz", "fp32_to_bf16", {"a": ("input", 32)}, 32) is None  # not traced


# ---- the anchor's RTL ---------------------------------------------------------------------------

ANCHOR_SOURCES = [REPO / "npu" / "rtl" / "anchor" / name for name in ("anchor_int8_pe.v", "anchor_int8_array.v")]


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_anchor_int8_array_computes_int32_matrix_products(simulator):
    """16 rows of int8 activations through the 8x8 array against numpy's int64 product mod 2^32:
    column n of row b leaves the bottom PE after the clock edge of cycle b + 7 + n."""
    import numpy as np

    from npu.rtl import sim as rtl_sim

    reason = rtl_sim.missing_tool(simulator)
    if reason:
        pytest.skip(reason)
    rng = np.random.default_rng(7)
    weights = rng.integers(-128, 128, (8, 8))
    acts = rng.integers(-128, 128, (16, 8))
    acts[0] = -128  # the extremes: -128 x -128 summed 8 times
    weights[:, 0] = -128
    build = rtl_sim.build_design("anchor_int8_array", ANCHOR_SOURCES, simulator, parameters={"SIZE": 8})
    out = rtl_sim.run_cocotb("anchor_int8_array", build, "npu.rtl.cocotb_anchor", simulator,
                             files={"weights": weights, "acts": acts})["out"]
    expected = (acts.astype(np.int64) @ weights.astype(np.int64)) & 0xFFFFFFFF
    got = np.array([[out[b + 7 + n, n] for n in range(8)] for b in range(16)], dtype=np.int64)
    assert (got == expected).all(), np.argwhere(got != expected)[:5]


def test_anchor_rtl_lints_clean_and_synthesizes_without_latches():
    from rtl_helpers import ELABORATE, SYNTHESIZE, verilator_lint, yosys, yosys_binaries

    lint = verilator_lint("anchor_int8_array", ANCHOR_SOURCES)
    assert lint.returncode == 0, lint.stderr[-2000:]
    for binary in yosys_binaries():
        for script in (ELABORATE, SYNTHESIZE):
            result = yosys(binary, "anchor_int8_array", ANCHOR_SOURCES, script, {"SIZE": 4})
            assert result.returncode == 0, (binary, result.stderr[-2000:])


def test_opensta_crash_in_power_keeps_timing_and_names_the_cause(tmp_path, monkeypatch):
    """OpenSTA 2.0.17 segfaults in report_power on npu_core's netlist after reporting its timing.
    A stand-in `sta` that writes the path report, prints the worst slack and dies with SIGSEGV:
    the timing is kept and the power says why it is missing. A crash before any timing fails."""
    from npu.synth.errors import ToolFailedError
    from npu.synth.sta import analyze

    fake = tmp_path / "bin" / "sta"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n"
                    "path=$(sed -n 's/^report_checks.*> //p' \"$3\")\n"
                    "printf 'Startpoint: a_q (rising edge-triggered flip-flop clocked by clk)\\n"
                    "Endpoint: y (rising edge-triggered flip-flop clocked by clk)\\n' > \"$path\"\n"
                    "echo 'worst slack 250.000'\n"
                    "[ -n \"$STA_CRASH_EARLY\" ] && rm \"$path\"\n"
                    "kill -SEGV $$\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "lib.lib").write_text("library (x) { }\n")
    (tmp_path / "netlist.v").write_text("module top (clk); input clk; endmodule\n")
    report = analyze(tmp_path / "lib.lib", tmp_path / "netlist.v", "top", 1000, tmp_path / "work")
    assert report.worst_slack_ps == 250.0 and report.fmax_ghz == pytest.approx(1000 / 750)
    assert report.unit_power is None and "SIGSEGV" in report.power_error
    monkeypatch.setenv("STA_CRASH_EARLY", "1")
    with pytest.raises(ToolFailedError):
        analyze(tmp_path / "lib.lib", tmp_path / "netlist.v", "top", 1000, tmp_path / "work2")


# ---- die area and the calibrated technology table -----------------------------------------------

def test_die_area_sums_logic_sram_and_the_stated_allowance():
    from npu.synth.die import GA102_AREA_MM2, UNCORE_FRACTION, die_area_row

    units = [{"unit": "systolic_array", "corner": "TT", "cell_area_um2": 4e6},
             {"unit": "vector_lanes", "corner": "TT", "cell_area_um2": 1e6},
             {"unit": "systolic_array", "corner": "FF", "cell_area_um2": 9e9}]  # another corner: ignored
    row = die_area_row("p", units, [{"area_mm2": 10.0}, {"area_mm2": 5.0}])
    assert row["logic_mm2"] == pytest.approx(5.0) and row["sram_mm2"] == 15.0
    assert row["total_mm2"] == pytest.approx(20.0 * (1 + UNCORE_FRACTION))
    assert row["area_ratio_ga102_over_npu"] == pytest.approx(GA102_AREA_MM2 / row["total_mm2"])
    assert row["missing"] == ("matrix_accumulators, vector_sum_tree, vector_max_tree, vector_argmax_tree, npu_core, "
                              "dma_codec") and "assumption" in row["uncore"]
    # The DMA codec: the flat synthesis where there is one, else the composed row (never both).
    composed = units + [{"unit": "dma_codec_composed", "corner": "TT", "cell_area_um2": 2e6}]
    assert die_area_row("p", composed, [{"area_mm2": 15.0}])["dma_codec_mm2"] == pytest.approx(2.0)
    flat = composed + [{"unit": "dma_codec", "corner": "TT", "cell_area_um2": 3e6}]
    assert die_area_row("p", flat, [{"area_mm2": 15.0}])["logic_mm2"] == pytest.approx(8.0)


def _calibration_rows(power_uw: float = 500.0) -> list[dict]:
    from npu.synth.calibrate import calibration_units

    return [{"unit": unit, "corner": "TT", "clock_period_ps": 1000, "power_activity_uw": power_uw,
             "power_default_activity_uw": 100.0, "leakage_uw": 2.0, "activity_workload": "w"}
            for unit in calibration_units()]


def test_calibrated_table_prices_actions_with_the_synthesized_units():
    import yaml

    from npu.hw.technology import technology_from_dict
    from npu.synth.calibrate import CalibrationError, calibrated_technology

    base = yaml.safe_load((REPO / "config" / "tech" / "asap7-7nm.yaml").read_text())
    sram = [{"bank": "srambank_256x4x64_6t122", "read_pj_per_byte": 0.25}]
    rows = _calibration_rows()
    assert rows[0]["unit"] == "fp32_add"
    rows[0]["power_activity_uw"] = "not measured"  # falls back to default activity, labelled
    data, provenance = calibrated_technology(base, rows, sram, 0.3, "asap7-calibrated")
    table = technology_from_dict(data).energy
    assert table.mac == pytest.approx(0.5)                       # 500 uW x 1 ns
    assert table.lane_ops["vector_special"] == pytest.approx(0.5)
    assert table.sram_64bit_8kib == pytest.approx(2.0) and table.leakage_mw_per_mib_sram == 0.3
    assert table.lane_ops["scalar_int"] == pytest.approx(base["energy"]["pj_at_45nm"]["lane_ops"]["scalar_int"]
                                                         * base["energy"]["scale_from_45nm"])  # kept
    assert table.dram_pj_per_bit == base["energy"]["dram_pj_per_bit"]
    sources = {row["energy"]: row["source"] for row in provenance}
    assert "default activity" in sources["lane_ops.vector_add"] and "activity-based" in sources["mac"]
    assert table.lane_ops["vector_add"] == pytest.approx(0.1)     # the default-activity 100 uW
    with pytest.raises(CalibrationError, match="matrix_pe"):
        calibrated_technology(base, [row for row in rows if row["unit"] != "matrix_pe"], sram, 0.3, "x")


def test_accumulator_and_codec_energies_come_from_their_units():
    """mac = the PE's energy + 1/MLEN of an accumulator column's cycle (an array row's MLEN x MLEN
    MACs add MLEN column sums); dma_codec_element = the codec's conversion logic per cycle / its
    block; without those units the PE alone and the base table's codec figure (labelled)."""
    import yaml

    from npu.hw.technology import technology_from_dict
    from npu.synth.calibrate import calibrated_technology
    from npu.synth.units import CODEC_PART_BLOCK

    base = yaml.safe_load((REPO / "config" / "tech" / "asap7-7nm.yaml").read_text())
    sram = [{"bank": "srambank_256x4x64_6t122", "read_pj_per_byte": 0.25}]
    extra = [{"unit": unit, "corner": "TT", "clock_period_ps": 1000, "power_activity_uw": "not measured",
              "power_default_activity_uw": power, "leakage_uw": 1.0}
             for unit, power in (("matrix_accumulator", 6400.0), ("dma_codec_control", 800.0))]
    data, provenance = calibrated_technology(base, _calibration_rows() + extra, sram, 0.3, "x", mlen=64)
    table = technology_from_dict(data).energy
    assert table.mac == pytest.approx(0.5 + 6.4 / 64)
    assert table.dma_codec_element == pytest.approx(0.8 / CODEC_PART_BLOCK)
    sources = {row["energy"]: row["source"] for row in provenance}
    assert "matrix_accumulator" in sources["mac"] and "dma_codec_control" in sources["dma_codec_element"]
    data, provenance = calibrated_technology(base, _calibration_rows(), sram, 0.3, "x", mlen=64)
    table = technology_from_dict(data).energy
    assert table.mac == pytest.approx(0.5)
    assert table.dma_codec_element == pytest.approx(base["energy"]["pj_at_45nm"]["dma_codec_element"]
                                                    * base["energy"]["scale_from_45nm"])
    assert "not synthesized" in {row["energy"]: row["source"] for row in provenance}["dma_codec_element"]
    assert table.instruction == pytest.approx(base["energy"]["pj_at_45nm"]["instruction"]
                                              * base["energy"]["scale_from_45nm"])  # kept, at 7 nm too


def test_dma_codec_is_charged_per_element_in_both_simulators():
    """Every element a DMA moves passes through the codec; a KV load also multiplies it, a KV
    store also takes its scale's reciprocal: the one definition (npu.sim.cost.latency) feeds the
    analytical model's actions and the energy report's "dma codec" category."""
    from npu.isa.table import DRAM_FORMATS
    from npu.sim.analytical.segments import instruction_actions
    from npu.sim.cost.energy import energy_report
    from npu.sim.cost.latency import DmaShape, dma_codec_actions, instruction_timing

    edge = load_npu_config("dnpu-edge")
    table = edge.technology.energy
    assert dma_codec_actions("dld.v", 3, 64) == (("dma_codec_element", 192),)
    assert dma_codec_actions("dldkv.v", 2, 32) == (("dma_codec_element", 64), ("dma_kv_multiply", 64))
    assert dict(dma_codec_actions("dstkv.v", 1, 32))["dma_kv_reciprocal"] == 32
    assert dma_codec_actions("dst.v", 0, 32) == ()
    fmt = DRAM_FORMATS.index("mxint8")
    timing = instruction_timing("dst.v", edge, {"fmt": fmt}, DmaShape(4, 64))
    actions = instruction_actions(timing)
    assert actions["dma_codec_element"] == 256
    report = energy_report(actions, edge, 0)
    assert report.picojoules["dma codec"] == pytest.approx(256 * table.dma_codec_element)
    kv = energy_report({"dma_kv_multiply": 10, "dma_kv_reciprocal": 10}, edge, 0)
    assert kv.picojoules["dma codec"] == pytest.approx(10 * (table.lane_ops["vector_mul"]
                                                             + table.lane_ops["vector_special"]))


def test_reduction_trees_compose_from_nodes_with_log2_levels_in_series():
    """A VLEN tree is VLEN - 1 nodes; its combinational path is log2(VLEN) nodes long."""
    cloud = load_npu_config("dnpu-cloud")
    units = ["fp32_add", "vector_max_tree_2", "vector_argmax_tree_2", "matrix_accumulator", "dma_codec_control",
             "fp32_recip", "fp32_mul"]
    compositions = preset_compositions(cloud, units)
    assert compositions["vector_sum_tree"] == {"fp32_add": cloud.vlen - 1}
    assert compositions["vector_argmax_tree"] == {"vector_argmax_tree_2": cloud.vlen - 1}
    assert compositions["matrix_accumulators"] == {"matrix_accumulator": cloud.mlen}
    assert compositions["dma_codec_composed"] == {"dma_codec_control": cloud.mx_block // 4,
                                                  "fp32_recip": cloud.mx_block, "fp32_mul": cloud.mx_block}
    assert "matrix_unit" not in compositions and "dma_codec_control_scaled" not in compositions  # checks only
    node = _row("vector_max_tree_2", 30.0, 2.0)
    row = compose_row("vector_max_tree", {"vector_max_tree_2": 127}, {"vector_max_tree_2": node})
    assert row["cell_area_um2"] == pytest.approx(127 * 30.0)
    assert row["critical_path_ps"] == pytest.approx(7 * 500.0) and row["fmax_ghz"] == pytest.approx(1 / 3.5)
    assert row["worst_slack_ps"] == pytest.approx(1000 - 3500) and row["logic_levels"] == 21
    flat = _row("vector_max_tree_4", 80.0, 1.2)
    node["sequential_area_um2"] = flat["sequential_area_um2"] = 0.0  # combinational: 0 on both sides
    check = {c["figure"]: c for c in composition_check([node, flat])}
    assert check["cell_area_um2"]["composed"] == pytest.approx(90.0) and check["fmax_ghz"]["composed"] == 1.0
    assert check["sequential_area_um2"]["error_percent"] == 0.0


def test_accumulator_parameters_follow_the_preset():
    for name in ("dnpu-edge", "dnpu-cloud"):
        config = load_npu_config(name)
        parameters = job_for("matrix_accumulator", config).parameters
        assert parameters["ENTRIES"] == config.accumulators * config.blen
        assert 2 ** parameters["ADDR_BITS"] >= parameters["ENTRIES"]
    small = SYNTH_UNITS["matrix_accumulator_4"].parameters(None)
    assert small["ENTRIES"] == 4  # the 2x2 matrix unit's check: ACCUMULATORS 2 x BLEN 2
    assert COMPOSITIONS["matrix_unit"].parts(2) == {"matrix_pe_row0": 2, "matrix_pe": 2, "matrix_accumulator_4": 2}


# ---- the simulators reading the calibrated table; energy per token by unit ---------------------

def _calibrated_table(tmp_path: Path, mac_pj: float) -> Path:
    """A technology table as synth_tech writes it: the preset's latencies, other energies."""
    base = yaml.safe_load((REPO / "config" / "tech" / "asap7-7nm.yaml").read_text())
    scale = base["energy"]["scale_from_45nm"]
    base["name"] = "asap7-7nm-test-calibrated"  # not the file's stem: a written table names itself
    energy = base["energy"]
    energy["pj_at_45nm"] = {key: (value * scale if not isinstance(value, dict) else
                                  {k: v * scale for k, v in value.items()})
                            for key, value in energy["pj_at_45nm"].items()}
    energy["scale_from_45nm"] = 1.0
    energy["pj_at_45nm"]["mac"] = mac_pj
    path = tmp_path / "tech.yaml"
    path.write_text(yaml.safe_dump(base))
    return path


def test_energy_per_token_by_unit_adds_up_and_follows_the_calibrated_table(tmp_path):
    """A small dual-cache generation of a one-layer tiny-sort on dnpu-edge priced with the preset's table and
    with a table whose MAC costs 10x: the units' energies add up to the generation's energy per
    token, only the MAC array's changes (by 10x), and timing is the same."""
    from npu.hw.config import with_technology
    from npu.models.decoding import DecodeConfig
    from npu.models.presets import load_model_spec
    from npu.runtime.lowering import generation_row, step_program
    from npu.sim.analytical.generation import GenerationSetup
    from npu.sim.analytical.unit_energy import UNITS, GroupedStepModel, breakdown_rows, shared_lowering, unit_breakdown

    import dataclasses

    edge = load_npu_config("dnpu-edge")
    tiny = dataclasses.replace(load_model_spec("tiny-sort").architecture, n_layers=1)
    setup = GenerationSetup(13, DecodeConfig(4, 4, 2, cache="dual"))  # a refresh step and an in-block step
    table = _calibrated_table(tmp_path, 10 * edge.technology.energy.mac)
    lower = shared_lowering(step_program)
    machines = {"before": GroupedStepModel(edge, lower), "after": GroupedStepModel(with_technology(edge, table), lower)}
    rows = {when: generation_row(machine, tiny, setup, {}) for when, machine in machines.items()}
    split = {when: unit_breakdown(machine, tiny, setup) for when, machine in machines.items()}
    for when in machines:
        assert rows[when]["status"] == "ok"
        assert sum(split[when].values()) == pytest.approx(rows[when]["energy_per_token_mj"], rel=1e-9)
    assert rows["after"]["tokens_per_s"] == rows["before"]["tokens_per_s"]
    assert split["after"]["MAC array"] == pytest.approx(10 * split["before"]["MAC array"]) and split["before"]["MAC array"] > 0
    for unit in UNITS:
        if unit != "MAC array":
            assert split["after"][unit] == pytest.approx(split["before"][unit]), unit
    assert split["before"]["DMA / codec"] > 0 and split["before"]["DRAM"] > 0 and split["before"]["control"] > 0
    table_rows = breakdown_rows("dnpu-edge", "tiny-sort", "dual", "topk", split["before"], split["after"])
    assert [row["unit"] for row in table_rows] == list(UNITS)
    assert sum(row["share_after"] for row in table_rows) == pytest.approx(1.0)


def test_technology_override_is_checked_and_named(tmp_path):
    from npu.hw.config import NPUConfigError, with_technology

    edge = load_npu_config("dnpu-edge")
    assert with_technology(edge, None) is edge
    calibrated = with_technology(edge, _calibrated_table(tmp_path, 0.123))
    assert calibrated.technology.name == "asap7-7nm-test-calibrated" and calibrated.technology.energy.mac == 0.123
    assert calibrated.technology.latency == edge.technology.latency
    with pytest.raises(NPUConfigError, match="no_such_table.yaml"):
        with_technology(edge, tmp_path / "no_such_table.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump({"name": "x", "energy": {}}))
    with pytest.raises(NPUConfigError, match="broken.yaml"):
        with_technology(edge, broken)
