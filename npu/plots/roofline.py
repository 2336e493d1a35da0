"""Figure 3: every step program of one (NPU, model) against the machine's roofline, per operator
group, from `results/{npu}/{model}/roofline.tsv` (the roofline stage, npu.check.roofline)."""

from __future__ import annotations

from pathlib import Path

from npu.plots.common import note, number, pyplot, read_table, save_figure, shorten

ROOFLINE_COLUMNS = ("npu", "model", "step", "status")
ROOFLINE_RESULTS = ("attained", "kind", "operator", "count", "attained_cycles", "compute_bound_cycles",
                    "dram_bound_cycles", "bound_cycles", "binds", "roofline_fraction", "limiting_resource")


def roofline_figure(roofline_tsv: str | Path, out_png: str | Path) -> Path:
    """Per step, one panel: attained, compute-bound and DRAM-bound cycles of each operator group
    (the same operator over all layers; log scale; the label names its limiting resource), titled
    with the step's fraction of its roofline; steps without figures (not compiled, too long) are
    listed under the panels."""
    rows = read_table(roofline_tsv, ROOFLINE_COLUMNS, ROOFLINE_RESULTS)
    ok = [r for r in rows if r["status"] == "ok"]
    skipped = list({r["step"]: r for r in rows if r["status"] != "ok"}.values())
    steps = list(dict.fromkeys(r["step"] for r in ok))
    groups = {step: [r for r in ok if r["step"] == step and r["kind"] == "group"] for step in steps}
    widest = max((len(g) for g in groups.values()), default=1)
    plt = pyplot()
    fig, axes = plt.subplots(max(1, len(steps)), 1, figsize=(max(8.0, 0.34 * widest + 2.5), 4.2 * max(1, len(steps))),
                             squeeze=False)
    width = 0.28
    for ax, step in zip(axes[:, 0], steps):
        mine = groups[step]
        x = range(len(mine))
        attained = mine[0]["attained"] if mine else ""
        for offset, key, name in ((-width, "attained_cycles", f"attained ({attained} model)"),
                                  (0.0, "compute_bound_cycles", "compute bound (MACs / MLEN^2 per cycle)"),
                                  (width, "dram_bound_cycles", "DRAM bound (bytes / peak bytes per cycle)")):
            ax.bar([i + offset for i in x], [max(number(r[key]), 0.0) for r in mine], width, label=name)
        ax.set_yscale("log")
        labels = [(f"{r['operator']} (x{r['count']})" if r["count"] not in ("", "1") else r["operator"])
                  + (f" [{r['limiting_resource']}]" if r["limiting_resource"] else "") for r in mine]
        ax.set_xticks(list(x), labels, fontsize=7, rotation=90)
        ax.set_ylabel("cycles per step (log)")
        total = next((r for r in ok if r["step"] == step and r["kind"] == "step"), None)
        first = mine[0] if mine else (total or {"npu": "", "model": ""})
        title = f"{first['npu']} {first['model']}, step program '{step}'"
        if total is not None:
            title += (f": {number(total['attained_cycles']):,.0f} cycles, {number(total['roofline_fraction']):.1%}"
                      f" of the roofline ({total['binds']}-bound)")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
        ax.grid(axis="y", alpha=0.3)
    if not steps:
        note(axes[0, 0], "no step program against the roofline:\n" + "\n".join(
            f"{r['model']} {r['step']}: {shorten(r['status'], 90)}" for r in skipped))
    elif skipped:
        fig.text(0.01, 0.002, "not shown: " + "; ".join(f"{r['step']} ({shorten(r['status'], 60)})" for r in skipped),
                 fontsize=7)
    fig.tight_layout()
    return save_figure(fig, out_png)
