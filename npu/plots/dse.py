"""Figure 8: the design-space Pareto fronts (results/dse/pareto.png), from points.tsv and pareto.tsv.

One row of panels per model: tokens/s against area (mm^2) and against energy per token (mJ),
every design point with figures as a dot (colour: commit rule; one cache mode per marker), the
fronts as steps, today's presets as labelled stars. Points without an area (no synthesis
tables) appear only in the energy panel; infeasible points are counted in the title.
"""

from __future__ import annotations

import math
from pathlib import Path

from npu.io import atomic_write_with, cell_number as _number, read_tsv as _rows

MARKERS = {"none": "s", "prefix": "^", "dual": "o"}


def pareto_figure(points_tsv: str | Path, pareto_tsv: str | Path, out_png: str | Path) -> Path:
    """Draw figure 8 (module docstring) to out_png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    points, fronts = _rows(points_tsv), _rows(pareto_tsv)
    models = list(dict.fromkeys(row["model"] for row in points)) or ["(no model)"]
    combos = list(dict.fromkeys((row["cache"], row["rule"]) for row in points if row["status"] == "ok"))
    colours = {combo: f"C{i}" for i, combo in enumerate(combos)}
    fig, axes = plt.subplots(len(models), 2, figsize=(10, 3.6 * len(models)), squeeze=False)
    for axis_row, model in zip(axes, models):
        mine = [row for row in points if row["model"] == model]
        infeasible = sum(1 for row in mine if row["status"] != "ok")
        for ax, cost, label, kind in ((axis_row[0], "area_mm2", "area (mm$^2$, datapath + SRAM banks)", "front_area"),
                                      (axis_row[1], "energy_per_token_mj", "energy per token (mJ)", "front_energy")):
            drawn, xs, ys = 0, [], []
            for combo in combos:
                cache, rule = combo
                rows = [row for row in mine if (row["cache"], row["rule"]) == combo and row["status"] == "ok"
                        and math.isfinite(_number(row[cost]))]
                grid = [row for row in rows if row["point_kind"] == "grid"]
                drawn += len(rows)
                xs += [_number(row[cost]) for row in rows]
                ys += [_number(row["tokens_per_s"]) for row in rows]
                ax.scatter([_number(r[cost]) for r in grid], [_number(r["tokens_per_s"]) for r in grid], s=14,
                           color=colours[combo], marker=MARKERS.get(cache, "o"), alpha=0.6,
                           label=f"points, {cache} cache, {rule}")
                front = sorted(((_number(r["area_mm2" if kind == "front_area" else "energy_per_token_mj"]),
                                 _number(r["tokens_per_s"])) for r in fronts
                                if r["kind"] == kind and r["model"] == model and (r["cache"], r["rule"]) == combo),
                               key=lambda pair: pair[0])
                if front:
                    ax.step([x for x, _ in front], [y for _, y in front], where="post", color=colours[combo],
                            linewidth=1.2, label=f"Pareto front, {cache}/{rule}")
                for row in rows:
                    if row["point_kind"] == "preset":
                        ax.scatter([_number(row[cost])], [_number(row["tokens_per_s"])], marker="*", s=140,
                                   color=colours[combo], edgecolor="k", linewidth=0.6, zorder=5)
                        ax.annotate(row["point"], (_number(row[cost]), _number(row["tokens_per_s"])), fontsize=7,
                                    xytext=(4, 4), textcoords="offset points")
            if drawn:  # a log axis where the values span more than a decade (log axes need data)
                plain = FuncFormatter(lambda value, _: f"{value:g}")
                sparse = FuncFormatter(lambda value, _: f"{value:g}" if f"{value:e}"[0] in "25" else "")
                for axis, values in ((ax.xaxis, xs), (ax.yaxis, ys)):
                    if max(values) > 10 * min(values) > 0:
                        (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
                        axis.set_major_formatter(plain)
                        axis.set_minor_formatter(sparse)
            ax.set_xlabel(label)
            ax.set_ylabel("tokens/s (batch 1)")
            ax.grid(True, which="both", linewidth=0.3, alpha=0.5)
            ax.set_title(f"{model}: tokens/s vs {'area' if kind == 'front_area' else 'energy/token'}"
                         + (f" ({infeasible} infeasible rows)" if infeasible else ""), fontsize=9)
            if not drawn:
                why = ("no area: synthesis tables missing (points.tsv area_status)" if cost == "area_mm2"
                       else "no point with figures")
                ax.text(0.5, 0.5, why, transform=ax.transAxes, ha="center", va="center", fontsize=8)
                ax.set_xticks([])
                ax.set_yticks([])
        handles, labels = axis_row[1].get_legend_handles_labels()
        if handles:
            axis_row[1].legend(handles, labels, fontsize=6, loc="best")
    fig.suptitle("Design-space sweep (analytical model; stars: presets)", fontsize=10)
    fig.tight_layout()
    path = Path(out_png)
    atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=130, format="png"))
    plt.close(fig)
    return path
