"""The report's table of the jobs behind its figures: per job, its log (size, last line) and its
Snakemake benchmark (wall seconds, peak memory), so a reader of a figure can find the job that
made it and what it cost. Snakemake's report shows a job's rule, wildcards and parameters but
neither its log nor its benchmark; this table carries them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from npu.io import write_tsv
from npu.plots.common import PlotInputError, number, read_table

BENCHMARK_COLUMNS = ("s", "max_rss")


def _last_line(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    return (lines[-1][:200] if lines else "(empty log)").replace("\t", " ")


def job_rows(jobs: Sequence[tuple[str | Path, str | Path | None]], logs_root: str | Path) -> list[dict]:
    """One row per (log, benchmark or None): the job's name (its log's path under `logs_root`,
    without .log), the log's path, size and last line, and the benchmark's wall time and peak
    resident memory (empty without a benchmark)."""
    rows = []
    for log, benchmark in jobs:
        log = Path(log)
        if not log.is_file():
            raise PlotInputError(f"{log}: log not found")
        try:
            name = str(log.relative_to(logs_root).with_suffix(""))
        except ValueError:
            name = log.stem
        row = {"job": name, "log": str(log), "log_bytes": log.stat().st_size, "log_last_line": _last_line(log),
               "benchmark": "", "wall_s": "", "max_rss_mb": ""}
        if benchmark is not None:
            measured = read_table(benchmark, BENCHMARK_COLUMNS)
            if not measured:
                raise PlotInputError(f"{benchmark}: benchmark has no rows")
            row.update(benchmark=str(benchmark), wall_s=f"{number(measured[-1]['s']):.2f}",
                       max_rss_mb=f"{number(measured[-1]['max_rss']):.0f}")
        rows.append(row)
    return rows


def write_job_table(jobs: Sequence[tuple[str | Path, str | Path | None]], logs_root: str | Path,
                    out_tsv: str | Path) -> Path:
    return write_tsv(out_tsv, job_rows(jobs, logs_root))
