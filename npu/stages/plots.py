"""Stages of workflow/rules/plots.smk: the paper's figures, each drawn from tables the pipeline
already wrote (npu.plots; docs/figures.md says what each shows). Each stage prints what it read
and wrote to its log."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path


def _done(figure: str, inputs: Sequence[str | Path], out: Path) -> Path:
    print(f"{figure}: {len(inputs)} table(s) -> {out} ({out.stat().st_size:,} bytes)", file=sys.stderr)
    return out


def plot_breakdown_stage(roofline: Sequence[str | Path], analytical: Sequence[str | Path],
                         gpu_generations: str | Path | None, gpu_sampling: str | Path | None,
                         out_png: str | Path) -> Path:
    """Figure 1: where a denoising step's time goes, on the NPU presets and the GPU models."""
    from npu.plots.breakdown import latency_breakdown_figure

    out = latency_breakdown_figure(roofline, analytical, gpu_generations, gpu_sampling, out_png)
    return _done("latency breakdown", [*roofline, *analytical, *(t for t in (gpu_generations, gpu_sampling) if t)], out)


def plot_throughput_stage(speedup: str | Path, out_png: str | Path) -> Path:
    """Figure 2: tokens/s and energy per token, NPU presets vs the modelled GPUs."""
    from npu.plots.speedup import throughput_energy_figure

    return _done("throughput and energy", [speedup], throughput_energy_figure(speedup, out_png))


def plot_crossval_stage(crossval: Sequence[str | Path], out_png: str | Path,
                        rtl: Sequence[str | Path] = ()) -> Path:
    """Figure 4: analytical model vs cycle simulator (vs RTL cycles when a table of them is given)."""
    from npu.plots.crossval import crossval_scatter_figure

    return _done("cross-validation", [*crossval, *rtl], crossval_scatter_figure(crossval, out_png, rtl))


def plot_kv_accuracy_stage(accuracy: str | Path, ablation: str | Path, out_png: str | Path) -> Path:
    """Figure 5: KV-cache accuracy vs bits per method, and the BAOS ablation."""
    from npu.plots.kv import kv_accuracy_figure

    return _done("KV accuracy", [accuracy, ablation], kv_accuracy_figure(accuracy, ablation, out_png))


def plot_area_power_stage(units: Sequence[str | Path], sram: Sequence[str | Path], out_png: str | Path) -> Path:
    """Figure 7: area and power per synthesized unit and SRAM macro of each preset."""
    from npu.plots.synth import area_power_figure

    return _done("area and power", [*units, *sram], area_power_figure(units, sram, out_png))


def plot_sampling_stage(analytical: Sequence[str | Path], roofline: Sequence[str | Path], out_png: str | Path,
                        baseline: str = "ar-npu") -> Path:
    """Figure 9: the sampling share with the dLLM instructions (dnpu presets) and without (baseline)."""
    from npu.plots.breakdown import sampling_share_figure

    return _done("sampling share", [*analytical, *roofline],
                 sampling_share_figure(analytical, roofline, out_png, baseline=baseline))


def report_jobs_stage(jobs: Sequence[str], logs_root: str | Path, out_tsv: str | Path) -> Path:
    """The report's jobs table; jobs: "LOG" or "LOG=BENCHMARK" (npu.plots.jobs)."""
    from npu.plots.jobs import write_job_table

    pairs = [(job.split("=", 1)[0], job.split("=", 1)[1] if "=" in job else None) for job in jobs]
    out = write_job_table(pairs, logs_root, out_tsv)
    print(f"report jobs: {len(pairs)} job(s), {sum(b is not None for _, b in pairs)} with a benchmark -> {out}",
          file=sys.stderr)
    return out
