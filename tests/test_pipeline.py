"""The Snakemake pipeline end to end on a miniature configuration.

A copy of two tiny presets with a few training steps runs every stage for real (train, evaluate,
export, compile, analytical and cycle simulation, cross-validation, roofline, the
KV-quantization study); then editing one preset must rerun only that model's jobs.
"""

import os
import re
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from npu.provenance import source_revision
from npu.rtl import sim as rtl_sim
from npu.synth.flow import synthesis_unavailable
from report_helpers import chromium_missing, probe_report

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
         "--configfile", str(workdir / "config.yaml"), *args],
        capture_output=True, text=True, env=env, timeout=900,
    )


def jobs_to_run(dry_run_output: str) -> set[tuple[str, str]]:
    """(rule, model) pairs from `snakemake -n` output."""
    pairs, rule = set(), None
    for line in dry_run_output.splitlines():
        if match := re.match(r"^(?:local)?rule (\w+):", line.strip()):
            rule = match.group(1)
        elif line.strip().startswith("wildcards:") and (match := re.search(r"\bmodel=([\w.-]+)", line)):
            pairs.add((rule, match.group(1)))
    return pairs


@pytest.fixture(scope="module")
def mini_pipeline(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("pipeline")
    presets = workdir / "presets"
    (presets / "models").mkdir(parents=True)
    for folder in ("npu", "tech", "dram"):  # a config_dir holds every preset the run reads
        shutil.copytree(REPO / "config" / folder, presets / folder)
    for name in ("tiny-sort", "tiny-add", "dream-7b"):
        data = yaml.safe_load((REPO / "config" / "models" / f"{name}.yaml").read_text())
        if "training" in data:
            data["training"] |= {"steps": 8, "eval_every": 0, "batch_size": 16, "eval_batch_size": 16}
        (presets / "models" / f"{name}.yaml").write_text(yaml.safe_dump(data))
    config = {
        "config_dir": str(presets),
        "results_dir": "results",
        "models": {"trained": ["tiny-sort", "tiny-add"], "shape_only": ["dream-7b"]},
        "npus": ["dnpu-edge"],
        "train": {"threads": 1},
        "evaluate": {"n_samples": 4, "cache_modes": ["none", "dual"], "thresholds": [0.9]},
        "export": {"cache_modes": ["none", "dual"], "shape_only_query_length": 8, "shape_only_kv_length": 64},
        "quantization": {"models": ["tiny-sort"], "outliers": ["tiny-sort"], "methods": ["bf16", "int", "baos-int"],
                         "bits": [16, 4], "cache_modes": ["dual"], "prompts": 4, "analysis_prompts": 4,
                         "exact_prompts": 2, "exact_bits": [4], "npu": "dnpu-edge",
                         "ablation": {"model": "tiny-sort", "outliers": False}},
        # the smallest unit that has logic (tests/test_synth.py covers the flow); left out where
        # the tools or the ASAP7 PDK are not installed
        "synth": {"enabled": synthesis_unavailable() is None, "units": ["fp32_to_bf16"], "anchor_units": [],
                  "activity_trace": ""},
        "dse": {"enabled": False},  # the sweep's rules have their own miniature run: tests/test_dse.py
        # the RTL's smallest case: the microbenchmarks on Icarus (about 20 s); compiled steps need
        # Verilator's build of npu_top (minutes): tests/test_rtl_steps.py
        "rtl": {"enabled": rtl_sim.missing_tool("icarus") is None, "models": [], "simulator": "icarus",
                "vcd_cycles": 100},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def test_pipeline_produces_every_artifact(mini_pipeline):
    results = mini_pipeline / "results" / "models"
    for model in ("tiny-sort", "tiny-add"):
        assert (results / model / "checkpoint" / "model.safetensors").stat().st_size > 0
        table = (results / model / "accuracy.tsv").read_text().splitlines()
        assert table[0].startswith("model\ttask\tcache\trule")
        assert len(table) == 1 + 2 * 2  # two cache modes x (fixed-k, threshold)
        check = (results / model / "ir" / "check.tsv").read_text()
        assert "NO" not in check.split() and (results / model / "ir" / "step_dual.json").exists()
    assert "shape-only" in (results / "dream-7b" / "ir" / "check.tsv").read_text()
    compiled = (mini_pipeline / "results" / "dnpu-edge" / "tiny-sort" / "compile.tsv").read_text()
    assert compiled.count("\tok\t") == 2  # refresh and dual in-block programs
    assert (mini_pipeline / "results" / "dnpu-edge" / "tiny-sort" / "dual_inblock.bin").stat().st_size > 0
    too_big = (mini_pipeline / "results" / "dnpu-edge" / "dream-7b" / "compile.tsv").read_text()
    assert "does-not-fit" in too_big and "vector_sram" in too_big
    assert "tokens_per_s" in (mini_pipeline / "results" / "dnpu-edge" / "dream-7b" / "analytical.tsv").read_text()
    # dream-7b does not compile for dnpu-edge: the generation table carries it without figures or ratios
    speedup = [line.split("\t") for line in (mini_pipeline / "results" / "speedup.tsv").read_text().splitlines()]
    header, body = speedup[0], [dict(zip(speedup[0], line)) for line in speedup[1:]]
    assert {"speedup", "bandwidth_matched_speedup", "normalisation", "paper_speedup", "status"} <= set(header)
    assert {(r["model"], r["npu"], r["gpu"]) for r in body} == {("dream-7b", "dnpu-edge", gpu)
                                                              for gpu in ("rtx-a6000", "a100-80gb", "h100-sxm")}
    assert len(body) == 2 * 2 * 3  # (dual, prefix) x (top-k, threshold) x three GPUs
    assert all(r["status"].startswith("not compilable") and r["speedup"] == "nan" for r in body)
    assert (mini_pipeline / "results" / "speedup.png").stat().st_size > 0


def test_pipeline_simulates_compiled_programs_and_crossvalidates_them(mini_pipeline):
    import csv

    def rows(path):
        with open(path, newline="") as handle:
            return list(csv.DictReader(handle, delimiter="\t"))

    sort_dir = mini_pipeline / "results" / "dnpu-edge" / "tiny-sort"
    cycle = {row["step"]: row for row in rows(sort_dir / "cycle.tsv")}
    assert set(cycle) == {"refresh", "dual_inblock"}
    assert all(row["status"] == "ok" and int(row["cycles"]) > 0 and row["dram_backend"] == "jedec"
               for row in cycle.values())
    assert all(int(row["dram_commands_checked"]) > 1000 and row["dram_timing_violations"] == "0"
               for row in cycle.values())
    generation = {row["cache"]: row for row in rows(sort_dir / "cycle_generation.tsv")}
    assert generation["dual"]["status"] == "ok" and float(generation["dual"]["tokens_per_s"]) > 0
    assert generation["prefix"]["status"].startswith("missing")  # the prefix step was not exported
    assert (sort_dir / "traces" / "dual_inblock.trace.json").stat().st_size > 0
    dream = rows(mini_pipeline / "results" / "dnpu-edge" / "dream-7b" / "cycle.tsv")
    assert all(row["status"].startswith("not compiled") for row in dream)
    summary = rows(mini_pipeline / "results" / "crossval" / "summary.tsv")
    checked = [row for row in summary if row["status"] == "ok"]
    assert {(row["model"], row["step"]) for row in checked} >= {("tiny-sort", "dual_inblock"), ("tiny-add", "refresh")}
    assert all(float(row["step_abs_error"]) < 0.05 for row in checked)
    assert (mini_pipeline / "results" / "crossval" / "summary.png").stat().st_size > 0
    roofline = rows(sort_dir / "roofline.tsv")
    totals = {row["step"]: row for row in roofline if row["kind"] == "step"}
    assert set(totals) == {"refresh", "dual_inblock"}
    assert all(row["status"] == "ok" and float(row["attained_cycles"]) >= float(row["bound_cycles"]) > 0
               for row in totals.values())
    assert "dram" in {row["binds"] for row in roofline if row["kind"] == "operator"}  # MXINT4 weights on edge
    assert (sort_dir / "roofline.png").stat().st_size > 0
    assert all(row["status"].startswith("not compiled")
               for row in rows(mini_pipeline / "results" / "dnpu-edge" / "dream-7b" / "roofline.tsv"))
    assert (mini_pipeline / "results" / "dnpu-edge" / "dream-7b" / "roofline.png").stat().st_size > 0


def test_pipeline_runs_programs_on_the_rtl(mini_pipeline):
    """rule rtl_verify: the microbenchmarks on npu_top bit-exact, their cycles beside the cycle
    simulator's (the table figure 4 plots), and an activity dump."""
    import csv

    if rtl_sim.missing_tool("icarus"):
        pytest.skip(rtl_sim.missing_tool("icarus"))
    rtl = mini_pipeline / "results" / "rtl" / "dnpu-edge"
    with open(rtl / "verify.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert len(rows) == 16 and all(row["bit_exact"] == "True" for row in rows)
    assert all(int(row["rtl_cycles"]) > 0 and int(row["cycle_sim_cycles"]) > 0 for row in rows)
    assert "$var" in (rtl / "activity.vcd").read_text()


def test_pipeline_runs_the_kv_quantization_study(mini_pipeline):
    kv = mini_pipeline / "results" / "kv"
    table = (kv / "accuracy.tsv").read_text().splitlines()
    header = table[0].split("\t")
    labels = {line.split("\t")[header.index("model")] for line in table[1:]}
    assert labels == {"tiny-sort", "tiny-sort+outliers"}
    assert any("\tbaos-int\t" in line for line in table)
    assert "| baos-int |" in (kv / "accuracy.md").read_text()
    assert len((kv / "ablation.tsv").read_text().splitlines()) > 10
    assert (kv / "kv_stats.tsv").stat().st_size > 0 and (kv / "kv_drift.png").stat().st_size > 0
    assert (mini_pipeline / "results" / "models" / "tiny-sort" / "kv" / "static_smoothing.json").exists()
    exact = [line.split("\t") for line in (kv / "exact.tsv").read_text().splitlines()]
    assert [(row[0], row[4], row[5]) for row in exact[1:]] == [("tiny-sort", "bf16", "16"), ("tiny-sort", "baos-mxint", "4")]
    traffic = (kv / "traffic.tsv").read_text()
    assert "\ttiny-sort\t" in traffic and "\tdream-7b\t" in traffic and "\tbaos-int\t4\t" in traffic


def test_report_holds_every_figure_rendered_in_chromium(mini_pipeline, tmp_path):
    """`snakemake --report` of the finished run holds every figure and key table with captions
    naming the run; in headless Chromium every figure is shown by the report's app and decodes."""
    report = tmp_path / "report.html"
    result = snakemake(mini_pipeline, "--report", str(report))
    assert result.returncode == 0, result.stderr[-3000:]
    synth_on = yaml.safe_load((mini_pipeline / "config.yaml").read_text())["synth"]["enabled"]
    figures = {f"results/figures/{name}.png" for name in ("fig1_latency_breakdown", "fig2_throughput_energy",
                                                            "fig4_crossvalidation", "fig5_kv_accuracy",
                                                            "fig9_sampling_share") + ("fig7_area_power",) * synth_on}
    figures |= {f"results/dnpu-edge/{model}/roofline.png" for model in ("tiny-sort", "tiny-add", "dream-7b")}
    figures |= {"results/kv/kv_drift.png", "results/crossval/summary.png", "results/speedup.png"}
    tables = {"results/speedup.tsv", "results/crossval/summary.tsv", "results/kv/accuracy.tsv",
              "results/report/jobs.tsv"} | ({"results/synth/summary.tsv"} if synth_on else set())
    jobs = [line.split("\t") for line in (mini_pipeline / "results" / "report" / "jobs.tsv").read_text().splitlines()]
    by_job = {row[0]: dict(zip(jobs[0], row)) for row in jobs[1:]}
    assert float(by_job["train/tiny-sort"]["wall_s"]) > 0 and float(by_job["simulate_cycle/dnpu-edge__tiny-add"]["wall_s"]) > 0
    assert {f"plots/{Path(f).stem}" for f in figures if f.startswith("results/figures/")} <= set(by_job)
    if chromium_missing():
        pytest.skip(chromium_missing())
    found = probe_report(report, tmp_path)
    assert found["error"] is None and found["app_rendered"], found
    assert {"Figures", "Tables"} <= set(found["categories"])
    images = {path: entry for path, entry in found["results"].items() if entry["mime"] == "image/png"}
    assert set(images) == figures
    assert tables <= set(found["results"])
    commit = source_revision()
    for path, entry in images.items():
        assert entry["shown"] and entry["natural_width"] >= 700 and entry["natural_height"] >= 300, (path, entry)
        assert commit in entry["caption"] and "dnpu-edge" in entry["caption"] and "results/logs/" in entry["caption"], path


def test_finished_pipeline_has_nothing_to_do(mini_pipeline):
    result = snakemake(mini_pipeline, "-n")
    assert result.returncode == 0
    assert jobs_to_run(result.stdout) == set()


@contextmanager
def edited_yaml(path: Path, edit):
    """`path` with `edit(data)` applied, restored afterwards (the tests share one finished run)."""
    original = path.read_text()
    data = yaml.safe_load(original)
    edit(data)
    path.write_text(yaml.safe_dump(data))
    try:
        yield path
    finally:
        path.write_text(original)


def planned_rules(dry_run_output: str) -> set[str]:
    """Rules with a job in `snakemake -n` output (the `all` target aside)."""
    rules = {match.group(1) for line in dry_run_output.splitlines()
             if (match := re.match(r"^(?:local)?rule (\w+):", line.strip()))}
    return rules - {"all"}


def test_editing_one_preset_reruns_only_that_model(mini_pipeline):
    preset = mini_pipeline / "presets" / "models" / "tiny-add.yaml"
    with edited_yaml(preset, lambda data: data["training"].update(seed=1)):
        result = snakemake(mini_pipeline, "-n")
    assert result.returncode == 0, result.stderr[-2000:]
    # The analytical model reads the architecture and decoding recipe, not the weights: no rerun.
    assert jobs_to_run(result.stdout) == {(rule, "tiny-add") for rule in
                                          ("train", "evaluate", "export", "compile", "simulate_cycle", "crossvalidate",
                                           "roofline")}


def test_further_seeds_train_and_evaluate_each_task_model_from_each_seed(mini_pipeline, tmp_path):
    """models.seeds: the preset's own seed (0) is the model itself; seed 3 adds `<model>-seed3`.
    (A config file, not --config: Snakemake passes the numbers of a --config list as strings.)"""
    seeds = tmp_path / "seeds.yaml"
    seeds.write_text(yaml.safe_dump({"models": {"seeds": [0, 3]}}))
    result = snakemake(mini_pipeline, "-n", "--configfile", str(mini_pipeline / "config.yaml"), str(seeds))
    assert result.returncode == 0, result.stderr[-2000:]
    assert jobs_to_run(result.stdout) == {(rule, f"{model}-seed3") for rule in ("train", "evaluate")
                                          for model in ("tiny-sort", "tiny-add")}


def test_decoding_only_edit_reruns_evaluation_and_after_but_not_training(mini_pipeline):
    preset = mini_pipeline / "presets" / "models" / "tiny-add.yaml"
    with edited_yaml(preset, lambda data: data["decoding"].update(steps=3)):  # two tokens per step
        result = snakemake(mini_pipeline, "-n")
    assert result.returncode == 0, result.stderr[-2000:]
    planned = jobs_to_run(result.stdout)
    assert ("train", "tiny-add") not in planned
    assert {("evaluate", "tiny-add"), ("export", "tiny-add"), ("simulate_analytical", "tiny-add"),
            ("simulate_cycle", "tiny-add")} <= planned
    assert {model for _, model in planned} == {"tiny-add"}


def copy_of_the_code(tmp_path: Path) -> Path:
    """The Snakefile, rules and package in a temporary folder, to edit without touching the checkout."""
    copy = tmp_path / "code"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "npu", copy / "npu", ignore=ignore)
    shutil.copytree(REPO / "workflow", copy / "workflow", symlinks=True)
    shutil.copy(REPO / "Snakefile", copy / "Snakefile")
    return copy


@pytest.mark.parametrize("module, rules", [
    # imported only by the exact-mode stage, through npu.stages.quantize.exact_accuracy_stage
    ("npu/check/exact.py", {"accuracy_exact"}),
    # imported by the cycle and cross-validation stages; the summary and the figures read their
    # tables, the report's jobs table their logs and benchmarks
    ("npu/sim/cycle/compiled.py", {"simulate_cycle", "crossvalidate", "crossvalidation_summary", "roofline",
                                   "plot_breakdown", "plot_crossval", "plot_sampling", "report_jobs"}),
    # training code: train, then everything downstream of the checkpoints
    ("npu/models/train.py", {"train", "evaluate", "export", "compile", "simulate_cycle", "crossvalidate",
                             "crossvalidation_summary", "roofline", "calibrate", "accuracy", "baos_ablation",
                             "accuracy_exact", "kv_analysis", "plot_breakdown", "plot_crossval", "plot_sampling",
                             "plot_kv_accuracy", "report_jobs"}),
    # a figure's code reruns that figure (and the jobs table that lists its log) only
    ("npu/plots/kv.py", {"plot_kv_accuracy", "kv_analysis", "report_jobs"}),
])
def test_code_change_reruns_the_stages_that_import_it_and_only_those(mini_pipeline, tmp_path, module, rules):
    copy = copy_of_the_code(tmp_path)
    source = copy / module
    source.write_text(source.read_text() + "\n# an edit\n")
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(copy)}
    result = subprocess.run([str(SNAKEMAKE), "-n", "-s", str(copy / "Snakefile"), "--directory", str(mini_pipeline),
                             "--configfile", str(mini_pipeline / "config.yaml")],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert planned_rules(result.stdout) == rules


def test_bad_config_fails_before_any_job_naming_file_and_key(tmp_path):
    shutil.copytree(REPO / "config", tmp_path / "presets")
    bad = yaml.safe_load((tmp_path / "presets" / "models" / "tiny-sort.yaml").read_text())
    bad["architecture"]["n_layers"] = "four"
    (tmp_path / "presets" / "models" / "tiny-sort.yaml").write_text(yaml.safe_dump(bad))
    config = {"config_dir": str(tmp_path / "presets"), "models": {"trained": ["tiny-sort"]}, "npus": []}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "-n")
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert "tiny-sort.yaml" in message and "architecture.n_layers" in message and "Traceback" not in message
    assert not (tmp_path / "results").exists()


def test_default_config_dag_and_lint():
    dry = subprocess.run([str(SNAKEMAKE), "-n", "-s", str(REPO / "Snakefile"), "--directory", str(REPO)],
                         capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr[-2000:]
    lint = subprocess.run([str(SNAKEMAKE), "--lint", "-s", str(REPO / "Snakefile"), "--directory", str(REPO)],
                          capture_output=True, text=True, timeout=300)
    assert lint.returncode == 0 and "Congratulations" in lint.stdout + lint.stderr, lint.stdout + lint.stderr


def test_an_edited_npu_preset_in_the_config_dir_changes_the_outputs_that_use_it(mini_pipeline):
    """Runs last: it reruns the stages of the edited machine (the other tests expect a finished run)."""
    targets = {name: mini_pipeline / "results" / path for name, path in (
        ("analytical", "dnpu-edge/tiny-sort/analytical.tsv"), ("cycle", "dnpu-edge/tiny-sort/cycle.tsv"),
        ("kv_traffic", "kv/traffic.tsv"))}
    before = {name: path.read_text() for name, path in targets.items()}
    preset = mini_pipeline / "presets" / "npu" / "dnpu-edge.yaml"
    with edited_yaml(preset, lambda data: data["formats"].update(weights="mxint8")):
        result = snakemake(mini_pipeline, "--cores", "2", *(str(path.relative_to(mini_pipeline)) for path in targets.values()))
        assert result.returncode == 0, result.stderr[-3000:]
        after = {name: path.read_text() for name, path in targets.items()}
    assert all(after[name] != before[name] for name in targets), [n for n in targets if after[n] == before[n]]
