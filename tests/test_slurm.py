"""The pipeline on a Slurm cluster, for real: the DSE sweep through profiles/slurm/ on a
single-node Slurm on this machine (scripts/local_slurm.sh, Debian slurm-wlm + munge + slurmdbd).

The same sweep runs locally and through Slurm; every job must have gone through sbatch (listed by
sacct, completed) and the tables must be equal byte for byte. Slow: minutes, and it installs and
starts daemons (root on Debian only; elsewhere it is skipped with the reason).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from test_dse import REPO, SNAKEMAKE, mini_dse_config

pytestmark = pytest.mark.slow

# A larger grid than the default suite's: two tiny models, 3 array sizes x 2 BLEN x 2 matrix-SRAM
# sizes x 2 weight formats = 24 points (MLEN 16 is infeasible: VLEN 16 < the MX block of 32).
SLURM_GRID = {"mlen": [16, 32, 64], "blen": [8, 16], "matrix_sram_mib": [1, 4], "weights": ["mxint4", "mxfp8_e4m3"]}


def slurm_unavailable() -> str | None:
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm is not installed (pip install -e '.[cluster]')"
    if shutil.which("sbatch") and subprocess.run(["scontrol", "ping"], capture_output=True).returncode == 0:
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "no Slurm running, and scripts/local_slurm.sh needs root on Debian/Ubuntu to start one"
    started = subprocess.run([str(REPO / "scripts" / "local_slurm.sh"), "start"], capture_output=True, text=True)
    if started.returncode != 0:
        return f"scripts/local_slurm.sh start failed: {started.stderr[-500:]}"
    return None


def run(workdir: Path, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    began = time.monotonic()
    result = subprocess.run([str(SNAKEMAKE), "results/dse/points.tsv", "-s", str(REPO / "Snakefile"),
                             "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"), *args],
                            capture_output=True, text=True, env=env, timeout=3600)
    return result, time.monotonic() - began


def make_workdir(root: Path, name: str) -> Path:
    workdir = root / name
    presets = workdir / "presets"
    for folder in ("npu", "tech", "dram", "models"):
        (presets / folder).mkdir(parents=True)
        for path in (REPO / "config" / folder).glob("*.yaml"):
            if folder != "models" or path.stem in ("tiny-sort", "tiny-add"):
                (presets / folder / path.name).write_text(path.read_text())
    config = mini_dse_config(presets, SLURM_GRID)
    config["models"]["trained"] = ["tiny-sort", "tiny-add"]
    config["dse"] |= {"models": ["tiny-sort", "tiny-add"], "cycle_sample": {"every": 4, "max_instructions": 2_000_000}}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return workdir


def test_the_dse_sweep_through_slurm_equals_a_local_run(tmp_path):
    reason = slurm_unavailable()
    if reason:
        pytest.skip(reason)
    local, cluster = make_workdir(tmp_path, "local"), make_workdir(tmp_path, "slurm")
    result, local_seconds = run(local, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    submitted_after = time.strftime("%Y-%m-%dT%H:%M:%S")
    result, slurm_seconds = run(cluster, "--profile", str(REPO / "profiles" / "slurm"), "--jobs", "4",
                                "--default-resources", "slurm_account=dnpu")
    assert result.returncode == 0, result.stderr[-3000:]
    points = len(list((cluster / "results" / "dse" / "points").iterdir()))
    accounting = subprocess.run(["sacct", "-X", "-n", "-P", "-S", submitted_after, "-o", "JobID,JobName,State,Comment"],
                                capture_output=True, text=True, check=True).stdout.splitlines()
    jobs = [line.split("|") for line in accounting if line]
    dse_jobs = [job for job in jobs if job[3].startswith(("rule_dse_point", "rule_dse_summary"))]
    # every point and the summary were sbatch jobs of this run, and all completed
    assert len([job for job in dse_jobs if job[3].startswith("rule_dse_point")]) == points == 24
    assert len([job for job in dse_jobs if job[3].startswith("rule_dse_summary")]) == 1
    assert all(job[2] == "COMPLETED" for job in dse_jobs), dse_jobs
    for table in ("points.tsv", "pareto.tsv"):
        assert (cluster / "results" / "dse" / table).read_bytes() == (local / "results" / "dse" / table).read_bytes()
    print(f"slurm: {len(jobs)} sbatch jobs ({points} points), {slurm_seconds:.0f} s; local: {local_seconds:.0f} s")
