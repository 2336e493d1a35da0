"""Figure 7: area and power per unit of each NPU preset, from the synthesis tables
(`results/synth/{npu}/units.tsv`: Yosys + OpenSTA on ASAP7 per unit and corner, and
`results/synth/{npu}/sram.tsv`: the SRAM macros built from ASAP7 SRAM banks)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from npu.plots.common import compact, finite, note, number, pyplot, read_table, save_figure

UNIT_COLUMNS = ("npu", "unit", "corner", "cell_area_um2", "leakage_uw", "power_default_activity_uw",
                "power_activity_uw", "fmax_ghz")
SRAM_COLUMNS = ("npu", "memory", "area_um2", "read_pj_per_access", "write_pj_per_access", "read_power_mw",
                "leakage_mw")
PREFERRED_CORNER = "TT"


def _zero_if_absent(value: str) -> float:
    """An SRAM leakage cell: "-" where the table has no estimate (no standard-cell library given)."""
    number_ = number(value)
    return number_ if finite(number_) else 0.0


def _one_corner(rows: list[dict]) -> tuple[str, list[dict]]:
    corners = list(dict.fromkeys(r["corner"] for r in rows))
    corner = PREFERRED_CORNER if PREFERRED_CORNER in corners else (corners[0] if corners else "")
    return corner, [r for r in rows if r["corner"] == corner]


def area_power_figure(units_tsvs: Sequence[str | Path], sram_tsvs: Sequence[str | Path], out_png: str | Path) -> Path:
    """One row per preset: (left) area of every synthesized unit and SRAM macro (log scale);
    (right) the power of the same rows: the units at their measured workload activity (the
    default activity where no workload exists), fmax written beside them; the SRAM macros at
    their peak read rate (sram.tsv: every port reads a word each cycle) plus their leakage
    estimate; leakage drawn over each bar. Composed units (the arrays, the lanes, the core) are
    rows of their own beside their parts."""
    units = [row for path in units_tsvs for row in read_table(path, UNIT_COLUMNS)]
    srams = [row for path in sram_tsvs for row in read_table(path, SRAM_COLUMNS)]
    npus = list(dict.fromkeys([r["npu"] for r in units] + [r["npu"] for r in srams]))
    plt = pyplot()
    height = max(3.5, 0.35 * max((len({r['unit'] for r in units if r['npu'] == n}) + len(
        [r for r in srams if r["npu"] == n]) for n in npus), default=4) + 1.8)
    fig, axes = plt.subplots(max(1, len(npus)), 2, figsize=(12, height * max(1, len(npus))), squeeze=False)
    for (area_ax, power_ax), npu in zip(axes, npus):
        corner, mine = _one_corner([r for r in units if r["npu"] == npu])
        memories = [r for r in srams if r["npu"] == npu]
        names = [f"{r['unit']} (logic)" for r in mine] + [f"{r['memory']} (SRAM)" for r in memories]
        areas = [number(r["cell_area_um2"]) for r in mine] + [number(r["area_um2"]) for r in memories]
        colours = ["C0"] * len(mine) + ["C2"] * len(memories)
        area_ax.barh(range(len(names)), [a if finite(a) else 0 for a in areas], color=colours)
        area_ax.set_yticks(range(len(names)), names, fontsize=7)
        area_ax.invert_yaxis()
        area_ax.set_xscale("log")
        for y, value in enumerate(areas):
            if finite(value):
                area_ax.text(value, y, f" {compact(value)} um^2", va="center", fontsize=7)
        total = sum(a for a in areas if finite(a))
        area_ax.set_xlabel("area, um^2 (log; cell area for logic, bank area for SRAM)")
        area_ax.set_title(f"{npu}: area ({corner} corner), total shown {total / 1e6:.3g} mm^2", fontsize=9)
        area_ax.grid(axis="x", alpha=0.3)
        # Power beside area, same rows: logic units at their workload activity (the default
        # activity where none), SRAM macros at their peak read rate (every port, every cycle);
        # leakage of each drawn over it.
        dynamic = ([number(r["power_activity_uw"]) if finite(number(r["power_activity_uw"]))
                    else number(r["power_default_activity_uw"]) for r in mine]
                   + [1000 * (number(r["read_power_mw"]) + _zero_if_absent(r["leakage_mw"])) for r in memories])
        leakage = [number(r["leakage_uw"]) for r in mine] + [1000 * _zero_if_absent(r["leakage_mw"]) for r in memories]
        if names:
            power_ax.barh(range(len(names)), [d if finite(d) else 0 for d in dynamic],
                          color=["C1"] * len(mine) + ["C2"] * len(memories),
                          label="total: logic at workload activity (default where none), SRAM at peak reads")
            power_ax.barh(range(len(names)), [l if finite(l) else 0 for l in leakage], color="C3",
                          label="of which leakage (SRAM: estimate)")
            power_ax.set_yticks(range(len(names)), names, fontsize=7)
            power_ax.invert_yaxis()
            power_ax.set_xscale("log")
            for y, value in enumerate(dynamic):
                fmax = f", fmax {number(mine[y]['fmax_ghz']):.3g} GHz" if y < len(mine) else ""
                power_ax.text(value if finite(value) and value > 0 else 1, y, f" {value:.3g} uW{fmax}",
                              va="center", fontsize=6)
            power_ax.set_xlabel("power, uW (log; at the preset's clock)")
            power_ax.legend(fontsize=6, loc="best")
            power_ax.grid(axis="x", alpha=0.3)
        else:
            note(power_ax, "no synthesized unit or SRAM for this preset")
        power_ax.set_title(f"{npu}: power per unit ({corner}) and SRAM macro", fontsize=9)
    if not npus:
        note(axes[0, 0], "no synthesis rows")
        axes[0, 1].axis("off")
    fig.suptitle("7 nm (ASAP7) area and power per unit (a part alone, a composed unit whole) and per SRAM macro",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.98))  # room for the title
    return save_figure(fig, out_png)
