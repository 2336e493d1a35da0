"""The NPU-vs-GPU generation table (npu.sim.analytical.speedup, npu speedup) on hand-made tables:
ratios recomputed here from the inputs, failed NPU configurations carried without ratios, and
bad inputs named."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from npu.cli import main
from npu.sim.analytical.speedup import NORMALISATION, PAPER_SPEEDUP_OVER_A6000, speedup_rows

COLUMNS = ["machine", "model", "cache", "rule", "gen_length", "block_length", "steps", "tokens_per_s",
           "energy_per_token_mj"]


def write_table(path: Path, rows: list[list], status: list[str] | None = None) -> Path:
    header = COLUMNS + (["status"] if status is not None else [])
    lines = ["\t".join(header)]
    for i, row in enumerate(rows):
        lines.append("\t".join(str(v) for v in row + ([status[i]] if status is not None else [])))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def tables(tmp_path: Path) -> dict[str, Path]:
    npu = write_table(tmp_path / "npu.tsv", [
        ["npu-a", "m", "none", "topk", 256, 32, 256, 1.0, 100.0],      # not compared: no cache
        ["npu-a", "m", "dual", "topk", 256, 32, 256, 30.0, 200.0],
        ["npu-a", "m", "prefix", "threshold0.9", 256, 32, 102.4, 12.0, 50.0],
    ], status=["ok", "ok", "ok"])
    failed = write_table(tmp_path / "failed.tsv", [
        ["npu-b", "m", "dual", "topk", "nan", "nan", "nan", "nan", "nan"],
    ], status=["not compilable: too big"])
    gpu = write_table(tmp_path / "gpu.tsv", [
        ["rtx-a6000", "m", "dual", "topk", 256, 32, 256, 10.0, 1000.0],
        ["h100-sxm", "m", "dual", "topk", 256, 32, 256, 40.0, 800.0],
        ["rtx-a6000", "m", "prefix", "threshold0.9", 256, 32, 102.4, 24.0, 300.0],
        ["h100-sxm", "m", "prefix", "threshold0.9", 256, 32, 102.4, 60.0, 250.0],
        ["rtx-a6000", "m", "none", "topk", 256, 32, 256, 5.0, 2000.0],
    ])
    return {"npu": npu, "failed": failed, "gpu": gpu}


BANDWIDTH = {"npu-a": 800.0, "npu-b": 50.0}
GPU_BANDWIDTH = {"rtx-a6000": 768.0, "h100-sxm": 3350.0}


def test_ratios_are_those_of_the_input_figures(tables):
    rows = speedup_rows([tables["npu"]], BANDWIDTH, tables["gpu"], GPU_BANDWIDTH)
    assert {(r["cache"], r["rule"], r["gpu"]) for r in rows} == {
        ("dual", "topk", "rtx-a6000"), ("dual", "topk", "h100-sxm"),
        ("prefix", "threshold0.9", "rtx-a6000"), ("prefix", "threshold0.9", "h100-sxm")}
    row = next(r for r in rows if r["cache"] == "dual" and r["gpu"] == "h100-sxm")
    assert row["npu_tokens_per_s"] == 30.0 and row["gpu_tokens_per_s"] == 40.0
    assert row["speedup"] == pytest.approx(0.75)
    assert row["energy_ratio_gpu_over_npu"] == pytest.approx(4.0)           # 800 / 200 mJ
    assert row["bandwidth_matched_speedup"] == pytest.approx((30 / 800) / (40 / 3350))
    assert row["normalisation"] == NORMALISATION and row["status"] == "ok"
    assert math.isnan(row["paper_speedup"])                                  # the claim is over the A6000
    a6000 = next(r for r in rows if r["cache"] == "prefix" and r["gpu"] == "rtx-a6000")
    assert a6000["speedup"] == pytest.approx(0.5) and a6000["energy_ratio_gpu_over_npu"] == pytest.approx(6.0)
    assert a6000["paper_speedup"] == PAPER_SPEEDUP_OVER_A6000 == 2.53


def test_default_gpu_bandwidths_are_the_gpu_specs(tables):
    rows = speedup_rows([tables["npu"]], BANDWIDTH, tables["gpu"])
    assert {r["gpu"]: r["gpu_bandwidth_gbps"] for r in rows} == pytest.approx({"rtx-a6000": 768.0, "h100-sxm": 3350.0})


def test_a_configuration_that_does_not_compile_keeps_its_status_and_has_no_ratio(tables):
    rows = speedup_rows([tables["npu"], tables["failed"]], BANDWIDTH, tables["gpu"], GPU_BANDWIDTH)
    failed = [r for r in rows if r["npu"] == "npu-b"]
    assert len(failed) == 2 and all(r["status"] == "not compilable: too big" for r in failed)
    for row in failed:
        for key in ("npu_tokens_per_s", "speedup", "energy_ratio_gpu_over_npu", "bandwidth_matched_speedup"):
            assert math.isnan(row[key])
        assert row["gpu_tokens_per_s"] > 0  # the GPU's figures stay, for the reader


def test_missing_table_is_named(tables, tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.tsv: no such generation table"):
        speedup_rows([tmp_path / "nothere.tsv"], BANDWIDTH, tables["gpu"], GPU_BANDWIDTH)
    with pytest.raises(FileNotFoundError, match="gpu_missing.tsv"):
        speedup_rows([tables["npu"]], BANDWIDTH, tmp_path / "gpu_missing.tsv", GPU_BANDWIDTH)


def test_unknown_machine_and_different_schedule_are_refused(tables, tmp_path):
    with pytest.raises(ValueError, match="'npu-a' is not among the NPU presets"):
        speedup_rows([tables["npu"]], {"npu-b": 1.0}, tables["gpu"], GPU_BANDWIDTH)
    other = write_table(tmp_path / "other.tsv", [["npu-a", "m", "dual", "topk", 128, 32, 128, 1.0, 1.0]], ["ok"])
    with pytest.raises(ValueError, match="gen_length is 128 on npu-a but 256 on rtx-a6000"):
        speedup_rows([other], BANDWIDTH, tables["gpu"], GPU_BANDWIDTH)


def test_command_writes_table_and_figure_and_names_a_missing_input(tables, tmp_path, capsys):
    npu = write_table(tmp_path / "cloud.tsv", [["dnpu-cloud", "m", "dual", "topk", 256, 32, 256, 30.0, 200.0]], ["ok"])
    out, figure = tmp_path / "out" / "speedup.tsv", tmp_path / "out" / "speedup.png"
    args = ["speedup", "--analytical", str(npu), "--npus", "dnpu-cloud", "--gpu", str(tables["gpu"]),
            "--out", str(out), "--figure", str(figure)]
    assert main(args) == 0
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert [(r["gpu"], float(r["npu_bandwidth_gbps"]), float(r["speedup"])) for r in rows] == [
        ("rtx-a6000", 819.2, 3.0), ("h100-sxm", 819.2, 0.75)]
    assert figure.stat().st_size > 0
    args[2] = str(tmp_path / "absent.tsv")
    assert main(args) == 2
    assert "absent.tsv: no such generation table" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(args[:4] + ["dnpu-clod"] + args[5:])  # an unknown preset fails at parse time
