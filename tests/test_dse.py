"""The design-space sweep (npu.dse, workflow/rules/dse.smk, docs/dse.md).

Specifications: design points are validated presets with stable ids; combinations the hardware
cannot build are reported by name; the area model scales the synthesized units by the point's
counts; the Pareto fronts keep exactly the non-dominated points; the DSE rules run on a small
grid, and a grown grid reruns only its new points.
"""

from __future__ import annotations

import copy
import csv
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from npu.config import read_yaml
from npu.dse.area import UnitFigures, UnitLibrary, area_report
from npu.dse.grid import DesignSpaceError, base_parameters, check_point, cycle_sampled, design_points, point_id
from npu.dse.pareto import pareto_front, pareto_rows
from npu.hw.config import npu_config_from_dict

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"

# A base preset written out here (not read from config/npu/), so the ids below stay what they are
# whatever happens to the shipped presets.
BASE = {
    "name": "base", "clock_ghz": 1.0, "mlen": 64, "blen": 16, "vlen": 64, "mx_block": 32,
    "dllm_instructions": True, "paired_issue": True, "accumulators": 8,
    "vector_sram": {"size_bytes": 2097152, "width_bits": 1024, "ports": 2},
    "matrix_sram": {"size_bytes": 4194304, "width_bits": 4096, "ports": 2},
    "fp_sram": {"size_bytes": 65536, "width_bits": 2048},
    "int_sram": {"size_bytes": 65536, "width_bits": 2048},
    "dram": {"kind": "lpddr5", "channels": 4, "bandwidth_gbps": 51.2, "capacity_gib": 16},
    "formats": {"weights": "mxint4", "activations": "bf16", "vector": "bf16", "accumulator": "fp32",
                "kv_cache": "bf16"},
}


def rows_of(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


# ---- design points ----------------------------------------------------------------------------


def test_an_empty_grid_is_the_base_itself():
    [point] = design_points({}, BASE)
    assert point.parameters == base_parameters(BASE)
    derived = {key: value for key, value in point.preset.items() if key not in ("name", "description")}
    assert derived == {key: value for key, value in BASE.items() if key not in ("name", "description")}


def test_point_ids_are_readable_and_stable():
    points = design_points({"mlen": [32, 64], "weights": ["mxint4", "mxfp8_e4m3"]}, BASE)
    assert [p.id for p in points] == [
        "m32-b16-v32-vs2-ms4-ch4-mxint4-kvbf16-" + points[0].id[-8:],
        "m32-b16-v32-vs2-ms4-ch4-mxfp8_e4m3-kvbf16-" + points[1].id[-8:],
        "m64-b16-v64-vs2-ms4-ch4-mxint4-kvbf16-" + points[2].id[-8:],
        "m64-b16-v64-vs2-ms4-ch4-mxfp8_e4m3-kvbf16-" + points[3].id[-8:],
    ]
    # the digest is of the derived preset's content: pinned, so a code change that silently
    # changes a point's machine (and orphans its results) shows up here
    assert points[2].id == "m64-b16-v64-vs2-ms4-ch4-mxint4-kvbf16-9ef828e7"
    # growing the grid keeps every existing id (so their results are reused)
    grown = design_points({"mlen": [32, 64, 128], "weights": ["mxint4", "mxfp8_e4m3"], "blen": [16, 8]}, BASE)
    assert {p.id for p in points} < {p.id for p in grown}
    # an edited base gives other ids for the same parameters
    edited = copy.deepcopy(BASE)
    edited["dram"]["capacity_gib"] = 32
    assert design_points({}, edited)[0].id != design_points({}, BASE)[0].id


def test_derived_presets_follow_the_presets_width_rules():
    point = design_points({"mlen": [128], "dram_channels": [8], "matrix_sram_mib": [16]}, BASE)[0]
    config = npu_config_from_dict(point.preset, source=point.id)
    assert (config.mlen, config.vlen) == (128, 128)           # VLEN keeps the base's VLEN/MLEN ratio
    assert config.matrix_sram.width_bits == 4 * 128 * 16      # 4 bf16 tile rows per access, as the base
    assert config.vector_sram.width_bits == 128 * 16          # one row of VLEN bf16
    assert config.fp_sram.width_bits == config.int_sram.width_bits == 128 * 32
    assert config.matrix_sram.size_bytes == 16 << 20
    assert config.dram.channels == 8 and config.dram.bandwidth_gbps == pytest.approx(102.4)


def test_infeasible_points_are_named_not_crashed():
    points = {p.parameters["vlen"]: p for p in design_points({"mlen": [32], "vlen": [32, 64]}, BASE)}
    assert check_point(points[32]) is None
    reason = check_point(points[64])
    assert "vlen: 64 must divide mlen=32" in reason and points[64].id in reason
    [tiny] = design_points({"matrix_sram_mib": [0.0078125]}, BASE)  # 8 KiB: not two 64x64 bf16 tiles
    assert "matrix_sram.size_bytes" in check_point(tiny)
    [odd] = design_points({"weights": ["int4"]}, BASE)  # a KV-only format
    assert "formats.weights" in check_point(odd)


def test_bad_grids_are_refused_by_name():
    with pytest.raises(DesignSpaceError, match="dse.grid: unknown key.*mlne"):
        design_points({"mlne": [64]}, BASE)
    with pytest.raises(DesignSpaceError, match="not a whole number of bytes"):
        design_points({"vector_sram_mib": [1e-7]}, BASE)


def test_the_dse_section_is_checked_by_the_config_loader(tmp_path):
    from npu.config import ConfigError, load_pipeline_config

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"models": {}, "npus": [], "dse": {"grid": {"mlne": [64]}}}))
    with pytest.raises(ConfigError, match=r"dse.grid.*mlne"):
        load_pipeline_config([path])
    path.write_text(yaml.safe_dump({"models": {}, "npus": [], "dse": {"rules": ["greedy"]}}))
    with pytest.raises(ConfigError, match=r"dse.rules"):
        load_pipeline_config([path])
    path.write_text(yaml.safe_dump({"models": {}, "npus": []}))
    defaults = load_pipeline_config([path])["dse"]
    assert defaults["base"] == "dnpu-cloud" and defaults["models"] == ["llada-8b", "dream-7b"]
    assert defaults["grid"]["mlen"] == [64, 128] and defaults["cycle_sample"]["every"] == 4


def test_cycle_sample_is_stable_per_point():
    ids = [p.id for p in design_points({"mlen": [16, 32, 64, 128], "blen": [8, 16]}, BASE)]
    sampled = [i for i in ids if cycle_sampled(i, 3)]
    assert 0 < len(sampled) < len(ids)
    assert all(cycle_sampled(i, 1) for i in ids) and not any(cycle_sampled(i, 0) for i in ids)
    assert cycle_sampled(ids[1], 0, [ids[1]])
    grown = [p.id for p in design_points({"mlen": [16, 32, 64, 128, 256], "blen": [8, 16]}, BASE)]
    assert [i for i in grown if i in ids and cycle_sampled(i, 3)] == sampled


# ---- area model -------------------------------------------------------------------------------

UNITS_TSV = """npu\tunit\tcorner\tcell_area_um2\tleakage_uw
base\tfp32_mul\tTT\t500\t1.0
base\tfp32_mul\tSS\t999\t9.0
base\tfp32_add\tTT\t150\t0.5
base\tfp32_exp\tTT\t6000\t17
base\tfp32_recip\tTT\t2500\t7
base\tfp32_rsqrt\tTT\t4500\t12
"""
SRAM_ROWS = [("vector_sram", 2097152, 2), ("matrix_sram", 4194304, 2), ("fp_sram", 65536, 1), ("int_sram", 65536, 1)]
LIBERTY = """library (test) {
  cell (DFFHQNx1_ASAP7_75t_R) {
    area : 0.2916;
    ff (IQN, IQNN) { next_state : "D"; clocked_on : "CLK"; }
  }
}
"""


@pytest.fixture()
def tables(tmp_path) -> tuple[Path, Path, Path]:
    units = tmp_path / "units.tsv"
    units.write_text(UNITS_TSV)
    sram = tmp_path / "sram.tsv"
    lines = ["memory\tsize_bytes\twidth_bits\tports\tarea_um2"]
    for memory, size, ports in SRAM_ROWS:  # 0.1 um^2 per bit and port
        lines.append(f"{memory}\t{size}\t1024\t{ports}\t{size * 8 * ports * 0.1}")
    sram.write_text("\n".join(lines) + "\n")
    liberty = tmp_path / "cells.lib"
    liberty.write_text(LIBERTY)
    return units, sram, liberty


def test_area_scales_the_synthesized_units_by_the_points_counts(tables):
    library = UnitLibrary.from_tables(*tables)
    point = design_points({"mlen": [128], "vector_sram_mib": [4]}, BASE)[0]
    config = npu_config_from_dict(point.preset, source=point.id)
    area = area_report(config, library)
    assert area["area_status"] == "ok"
    assert area["area_matrix_mm2"] == pytest.approx(128 ** 2 * (500 + 150) * 1e-6)  # TT rows, mul + add per PE
    assert area["area_vector_mm2"] == pytest.approx(128 * (150 + 500 + 6000 + 2500 + 4500) * 1e-6)
    assert area["area_accumulators_mm2"] == pytest.approx(8 * 16 * 128 * 32 * 0.2916 * 1e-6)
    assert area["area_vector_sram_mm2"] == pytest.approx((4 << 20) * 8 * 2 * 0.1 * 1e-6)
    assert area["area_matrix_sram_mm2"] == pytest.approx((4 << 20) * 8 * 2 * 0.1 * 1e-6)
    assert area["area_dma_codec_mm2"] == 0 and area["area_dma_codec"].startswith("not synthesized")
    parts = [value for key, value in area.items() if key.startswith("area_") and key.endswith("_mm2") and key != "area_mm2"]
    assert area["area_mm2"] == pytest.approx(sum(parts))
    assert area["logic_leakage_mw"] == pytest.approx((128 ** 2 * 1.5 + 128 * 37.5) * 1e-3)
    # the composed DMA codec row (npu.synth.compose) counts when the flat codec was not synthesized
    composed = UnitLibrary({**library.units, "dma_codec_composed": UnitFigures(105833.0, 290.0)},
                           library.sram_um2_per_bit, library.flop_um2)
    assert area_report(config, composed)["area_dma_codec_mm2"] == pytest.approx(0.105833)
    # twice the array: four times the PEs
    bigger = npu_config_from_dict(design_points({"mlen": [256]}, BASE)[0].preset)
    assert area_report(bigger, library)["area_matrix_mm2"] == pytest.approx(4 * area["area_matrix_mm2"])


def test_a_synthesized_pe_is_preferred_and_missing_units_are_named(tables, tmp_path):
    units, sram, liberty = tables
    with_pe = tmp_path / "with_pe.tsv"
    with_pe.write_text(UNITS_TSV + "base\tmatrix_pe\tTT\t420\t0.9\n")
    config = npu_config_from_dict(BASE)
    assert area_report(config, UnitLibrary.from_tables(with_pe, sram, liberty))["area_matrix_mm2"] == \
        pytest.approx(64 ** 2 * 420e-6)
    partial = tmp_path / "partial.tsv"
    partial.write_text("npu\tunit\tcorner\tcell_area_um2\tleakage_uw\nbase\tfp32_to_bf16\tTT\t6\t0.01\n")
    area = area_report(config, UnitLibrary.from_tables(partial, sram, None))
    assert math.isnan(area["area_mm2"])
    assert "matrix: none of matrix_pe / fp32_mul+fp32_add synthesized" in area["area_status"]
    assert "accumulators: no DFFHQNx1_ASAP7_75t_R area" in area["area_status"]
    assert math.isnan(area["logic_leakage_mw"])
    assert area["area_vector_sram_mm2"] == pytest.approx((2 << 20) * 8 * 2 * 0.1 * 1e-6)  # known parts still given
    nothing = area_report(config, UnitLibrary())
    assert math.isnan(nothing["area_mm2"]) and nothing["area_status"].startswith("no synthesis tables")
    no_sram = area_report(config, UnitLibrary.from_tables(units, None, liberty))
    assert no_sram["area_status"] == "; ".join(f"{memory}: not in sram.tsv" for memory in
                                               ("vector_sram", "matrix_sram", "fp_sram", "int_sram"))


# ---- Pareto fronts ----------------------------------------------------------------------------


def _row(point, tokens, area, energy, kind="grid", status="ok"):
    return {"point": point, "point_kind": kind, "model": "m", "cache": "dual", "rule": "topk", "status": status,
            "tokens_per_s": tokens, "area_mm2": area, "energy_per_token_mj": energy, "power_w": tokens * energy / 1e3}


def test_pareto_front_keeps_exactly_the_non_dominated_points():
    rows = [_row("a", 10, 10, 5), _row("b", 20, 20, 4), _row("c", 15, 25, 3), _row("d", 30, 40, 6),
            _row("e", 30, 50, 2), _row("f", 25, math.nan, 1), _row("g", 99, 1, 1, status="infeasible: x")]
    assert [r["point"] for r in pareto_front(rows, "area_mm2")] == ["a", "b", "d"]
    assert [r["point"] for r in pareto_front(rows, "energy_per_token_mj")] == ["f", "e"]
    rows.append(_row("cloud", 18, 30, 4, kind="preset"))
    table = pareto_rows(rows, [15, 35, 1])
    budgets = {r["budget_mm2"]: r for r in table if r["kind"] == "budget"}
    assert budgets[15]["point"] == "a" and budgets[35]["point"] == "b"
    assert budgets[1]["note"] == "no point within the budget"
    [preset] = [r for r in table if r["kind"] == "preset"]
    assert preset["point"] == "cloud" and preset["front_tokens_per_s_at_area"] == 20 and preset["note"] == "off the fronts"


# ---- the DSE rules in a miniature pipeline -------------------------------------------------------


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
                           "--configfile", str(workdir / "config.yaml"), *args],
                          capture_output=True, text=True, env=env, timeout=900)


def mini_dse_config(presets: Path, grid: dict) -> dict:
    return {
        "config_dir": str(presets), "results_dir": "results",
        "models": {"trained": ["tiny-sort"], "shape_only": []}, "npus": ["dnpu-edge"],
        "quantization": {"models": [], "outliers": [], "ablation": {"model": "tiny-sort", "outliers": False}}, "verify": {"models": [], "npus": []},
        "synth": {"enabled": False},
        "dse": {"base": "dnpu-edge", "models": ["tiny-sort"], "cache_modes": ["dual"], "rules": ["topk", "threshold"],
                "grid": grid, "cycle_sample": {"every": 1, "max_instructions": 2_000_000}},
    }


MINI_GRID = {"mlen": [32, 64], "vlen": [32, 64], "weights": ["mxint4"]}


@pytest.fixture(scope="module")
def mini_dse(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("dse")
    presets = workdir / "presets"
    for folder in ("npu", "tech", "dram", "models"):
        (presets / folder).mkdir(parents=True)
        for path in (REPO / "config" / folder).glob("*.yaml"):
            if folder != "models" or path.stem == "tiny-sort":
                (presets / folder / path.name).write_text(path.read_text())
    (workdir / "config.yaml").write_text(yaml.safe_dump(mini_dse_config(presets, MINI_GRID)))
    result = snakemake(workdir, "--cores", "2", "results/dse/points.tsv")
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def test_dse_rules_write_points_fronts_and_figure(mini_dse):
    results = mini_dse / "results" / "dse"
    points = rows_of(results / "points.tsv")
    grid = {row["point"] for row in points if row["point_kind"] == "grid"}
    assert len(grid) == 4 and len(list((results / "points").iterdir())) == 4
    infeasible = [row for row in points if row["status"].startswith("infeasible")]
    assert len(infeasible) == 1 and "vlen: 64 must divide mlen=32" in infeasible[0]["status"]
    ok = [row for row in points if row["status"] == "ok"]
    assert {(row["point_kind"], row["rule"]) for row in ok} >= {("grid", "topk"), ("grid", "threshold0.9"),
                                                                  ("preset", "topk"), ("preset", "threshold0.9")}
    for row in ok:
        assert float(row["tokens_per_s"]) > 0 and float(row["energy_per_token_mj"]) > 0
        assert float(row["power_w"]) == pytest.approx(float(row["tokens_per_s"]) * float(row["energy_per_token_mj"])
                                                      / 1e3, rel=1e-4)
        assert math.isnan(float(row["area_mm2"])) and row["area_status"].startswith("no synthesis tables")
        if row["point_kind"] == "grid":             # every grid point is sampled (every: 1)
            assert abs(float(row["cycle_error"])) < 0.05 and float(row["cycle_coverage"]) == pytest.approx(1.0)
    # the preset's own row equals the pipeline's analytical table
    [edge] = [row for row in ok if row["point"] == "dnpu-edge" and row["rule"] == "topk"]
    [analytical] = [row for row in rows_of(mini_dse / "results" / "dnpu-edge" / "tiny-sort" / "analytical.tsv")
                    if row["cache"] == "dual" and row["rule"] == "topk"]
    assert float(edge["tokens_per_s"]) == pytest.approx(float(analytical["tokens_per_s"]), rel=1e-5)
    # the grid point equal to the base preset gives the preset's figures: the same entry
    [same] = [row for row in ok if row["point_kind"] == "grid" and row["mlen"] == "64" and row["vlen"] == "64"
              and row["rule"] == "topk"]
    assert float(same["tokens_per_s"]) == pytest.approx(float(edge["tokens_per_s"]), rel=1e-5)
    pareto = rows_of(results / "pareto.tsv")
    assert {row["kind"] for row in pareto} >= {"front_energy", "budget", "preset"}
    assert (results / "pareto.png").stat().st_size > 10_000
    preset_yaml = read_yaml(results / "points" / same["point"] / "npu.yaml")
    assert preset_yaml["name"] == same["point"]


def test_a_grown_grid_reruns_only_its_new_points(mini_dse, tmp_path):
    config = yaml.safe_load((mini_dse / "config.yaml").read_text())
    config["dse"]["grid"] = MINI_GRID | {"blen": [16, 8]}
    workdir_config = mini_dse / "config.yaml"
    original = workdir_config.read_text()
    try:
        workdir_config.write_text(yaml.safe_dump(config))
        result = snakemake(mini_dse, "-n", "results/dse/points.tsv")
        assert result.returncode == 0, result.stderr[-3000:]
        rules = re.findall(r"^rule (\w+):", result.stdout, re.M)
        points = set(re.findall(r"wildcards: point=(\S+)", result.stdout))
        old = {path.name for path in (mini_dse / "results" / "dse" / "points").iterdir()}
        assert sorted(set(rules)) == ["dse_point", "dse_summary"]
        assert len(points) == 4 and not points & old and all("-b8-" in point for point in points)
    finally:
        workdir_config.write_text(original)


def test_a_point_the_compiler_refuses_gets_its_reason(tmp_path):
    from npu.stages.dse import dse_point_stage

    base_file = REPO / "config" / "npu" / "dnpu-edge.yaml"
    [point] = design_points({"kv_cache": ["mxint4"]}, read_yaml(base_file))
    dse_point_stage(base_file, point.parameters, point.id, [REPO / "config" / "models" / "tiny-sort.yaml"], tmp_path,
                    rules=("topk",))
    [row] = rows_of(tmp_path / "point.tsv")
    assert row["status"].startswith("not compilable: ") and "formats.kv_cache=mxint4" in row["status"]
    assert math.isnan(float(row["tokens_per_s"]))
    with pytest.raises(DesignSpaceError, match="give the id"):  # a stale id is refused, not mislabelled
        dse_point_stage(base_file, point.parameters, point.id.replace("kvmxint4", "kvbf16"),
                        [REPO / "config" / "models" / "tiny-sort.yaml"], tmp_path)


def test_bad_dse_sections_fail_before_any_job(tmp_path):
    presets = tmp_path / "presets"
    shutil.copytree(REPO / "config", presets, ignore=shutil.ignore_patterns("config.yaml", "paper.yaml"))
    config = mini_dse_config(presets, MINI_GRID)
    for change, message in (({"presets": ["dnpu-cloud"]}, "dse.presets lists 'dnpu-cloud', which is not in npus"),
                            ({"models": ["llada-8b"]}, "dse.models lists 'llada-8b', which is not in models"),
                            ({"base": "dnpu-clod"}, "dse: unknown npu preset 'dnpu-clod'")):
        broken = copy.deepcopy(config)
        broken["dse"] |= change
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(broken))
        result = snakemake(tmp_path, "-n", "results/dse/points.tsv")
        assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]
