"""Figure 4 (analytical model vs cycle simulator, and RTL cycles when a table of them exists) and
the cross-validation summary figure, from `results/{npu}/{model}/crossval.tsv` and
`results/crossval/summary.tsv` (the crossvalidate stages, npu.check.crossval)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from npu.plots.common import finite, note, number, pyplot, read_table, read_tables, save_figure

CROSSVAL_COLUMNS = ("npu", "model", "step", "status")
CROSSVAL_RESULTS = ("kind", "name", "analytical_cycles", "simulated_cycles", "relative_error")
SUMMARY_COLUMNS = ("npu", "model", "step", "status")
SUMMARY_RESULTS = ("step_abs_error", "class_mean_abs_error", "operator_mean_abs_error")
# An RTL cycle table (results/rtl/{npu}/verify.tsv of the rtl_verify stage, npu.stages.rtl, when
# the run has one): programs run on the Verilog, next to the cycle simulator's count of them.
RTL_COLUMNS = ("npu", "model", "program", "cycle_sim_cycles", "rtl_cycles")
STEP_GOAL, CLASS_GOAL = 0.02, 0.03  # the cross-validation goals of docs/analytical.md: 2 % per step, 3 % per class
MARKERS = {"total": ("o", 40), "class": ("s", 18), "operator": (".", 10)}


def crossval_scatter_figure(crossval_tsvs: Sequence[str | Path], out_png: str | Path,
                            rtl_tsvs: Sequence[str | Path] = ()) -> Path:
    """Top: analytical vs cycle-simulator cycles of every step total, unit class and operator
    (log-log, one colour per NPU and model) on the y = x line with the +-2 % band; bottom: the
    relative error of each against its cycle count. RTL rows, when given, are drawn against the
    cycle simulator as triangles."""
    rows = [r for r in read_tables(crossval_tsvs, CROSSVAL_COLUMNS, CROSSVAL_RESULTS) if r["status"] == "ok"]
    rtl = read_tables(rtl_tsvs, RTL_COLUMNS)
    plt = pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 9), gridspec_kw={"height_ratios": [3, 2]})
    pairs = list(dict.fromkeys((r["npu"], r["model"]) for r in rows))
    if not rows:
        note(top, "no cross-validated step program (every step skipped or not compiled)")
        bottom.axis("off")
    else:
        for colour, (npu, model) in enumerate(pairs):
            for kind, (marker, size) in MARKERS.items():
                mine = [r for r in rows if (r["npu"], r["model"]) == (npu, model) and r["kind"] == kind
                        and number(r["simulated_cycles"]) > 0]
                xs = [number(r["simulated_cycles"]) for r in mine]
                top.scatter(xs, [number(r["analytical_cycles"]) for r in mine], s=size, marker=marker,
                            color=f"C{colour}", label=f"{npu} {model}: {kind}", alpha=0.8)
                bottom.scatter(xs, [100 * number(r["relative_error"]) for r in mine], s=size, marker=marker,
                               color=f"C{colour}", alpha=0.8)
        for entry in rtl:
            x, y = number(entry["cycle_sim_cycles"]), number(entry["rtl_cycles"])
            if finite(x) and finite(y) and x > 0:
                top.scatter([x], [y], marker="^", color="k", s=30)
                bottom.scatter([x], [100 * (y - x) / x], marker="^", color="k", s=30)
        values = [number(r["simulated_cycles"]) for r in rows if number(r["simulated_cycles"]) > 0]
        low, high = min(values) / 1.5, max(values) * 1.5
        top.plot([low, high], [low, high], color="k", linewidth=0.8, label="analytical = cycle simulator")
        top.fill_between([low, high], [low * (1 - STEP_GOAL), high * (1 - STEP_GOAL)],
                         [low * (1 + STEP_GOAL), high * (1 + STEP_GOAL)], color="grey", alpha=0.3,
                         label=f"+-{STEP_GOAL:.0%} band")
        if rtl:
            top.scatter([], [], marker="^", color="k", label="RTL cycles (vs the cycle simulator)")
        top.set_xscale("log")
        top.set_yscale("log")
        top.set_xlabel("cycle simulator, cycles (bandwidth DRAM backend)")
        top.set_ylabel("analytical model, cycles")
        top.legend(fontsize=6, ncol=2, loc="upper left")
        top.grid(alpha=0.3)
        bottom.axhspan(-100 * STEP_GOAL, 100 * STEP_GOAL, color="grey", alpha=0.15, label=f"+-{STEP_GOAL:.0%} (step goal)")
        bottom.axhline(0.0, color="k", linewidth=0.8)
        bottom.set_xscale("log")
        bottom.set_xlabel("cycle simulator, cycles")
        bottom.set_ylabel("(analytical - cycle) / cycle, %")
        bottom.legend(fontsize=7)
        bottom.grid(alpha=0.3)
    top.set_title("Cross-validation: analytical model vs cycle-accurate simulator"
                  + (" vs RTL" if rtl else " (no RTL cycle table in this run)"), fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out_png)


def crossval_summary_figure(summary_tsv: str | Path, out_png: str | Path) -> Path:
    """Per (NPU, model, step): |error| of the step total and the mean |error| per unit class and
    per operator, with the goals as lines."""
    rows = [r for r in read_table(summary_tsv, SUMMARY_COLUMNS, SUMMARY_RESULTS) if r["status"] == "ok"]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(8.0, 0.5 * len(rows)), 4.5))
    x = range(len(rows))
    width = 0.28
    for offset, key, name in ((-width, "step_abs_error", "step total"),
                              (0.0, "class_mean_abs_error", "mean per unit class"),
                              (width, "operator_mean_abs_error", "mean per operator")):
        ax.bar([i + offset for i in x], [100 * number(r[key]) for r in rows], width, label=name)
    ax.axhline(100 * STEP_GOAL, color="k", linestyle="--", linewidth=0.8, label=f"goal: {STEP_GOAL:.0%} per step")
    ax.axhline(100 * CLASS_GOAL, color="grey", linestyle=":", linewidth=0.8, label=f"goal: {CLASS_GOAL:.0%} per class")
    ax.set_xticks(list(x), [f"{r['npu']}\n{r['model']}\n{r['step']}" for r in rows], fontsize=7)
    ax.set_ylabel("|analytical - cycle-accurate| / cycle-accurate, %")
    ax.set_title("Analytical model vs cycle simulator (bandwidth DRAM backend)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, out_png)
