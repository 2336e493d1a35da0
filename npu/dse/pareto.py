"""Pareto fronts of the sweep, the best point per area budget, and where the presets sit.

Rows are points.tsv rows (one per point, model, cache mode and commit rule). Fronts are taken
per (model, cache, rule) over the rows with figures (`status` ok and, for the area front, an
area): a row is on the front when no other row is at least as fast at no more cost and better
in one of the two (tokens/s up, mm^2 or mJ/token down).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

FRONTS = {"front_area": "area_mm2", "front_energy": "energy_per_token_mj"}


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def pareto_front(rows: Iterable[dict], cost: str, gain: str = "tokens_per_s") -> list[dict]:
    """The rows no other row dominates (more `gain` at no more `cost`, or less cost at no less
    gain), sorted by cost; rows without finite figures are left out."""
    usable = sorted((row for row in rows if row.get("status") == "ok" and _finite(row.get(cost))
                     and _finite(row.get(gain))), key=lambda row: (float(row[cost]), -float(row[gain])))
    front, best = [], -math.inf
    for row in usable:
        if float(row[gain]) > best:
            front.append(row)
            best = float(row[gain])
    return front


def groups(rows: Iterable[dict]) -> dict[tuple[str, str, str], list[dict]]:
    """Rows with a generation by (model, cache, rule), in first-seen order."""
    grouped: dict[tuple[str, str, str], list[dict]] = {}
    for row in rows:
        if not row.get("cache"):  # an infeasible point: no generation to compare
            continue
        grouped.setdefault((row["model"], row["cache"], row["rule"]), []).append(row)
    return grouped


def pareto_rows(rows: list[dict], budgets_mm2: list[float]) -> list[dict]:
    """pareto.tsv: per (model, cache, rule) the two fronts (`kind` front_area / front_energy),
    the fastest point within each area budget (`budget`), and each preset (`preset`) with the
    fastest front point at no more area (`front_tokens_per_s_at_area`) and whether it is on a front."""
    table = []
    for (model, cache, rule), members in groups(rows).items():
        key = {"model": model, "cache": cache, "rule": rule}
        fronts = {kind: pareto_front(members, cost) for kind, cost in FRONTS.items()}
        for kind, front in fronts.items():
            table += [key | {"kind": kind} | _figures(row) for row in front]
        for budget in budgets_mm2:
            inside = [row for row in fronts["front_area"] if float(row["area_mm2"]) <= budget]
            best = max(inside, key=lambda row: float(row["tokens_per_s"]), default=None)
            table.append(key | {"kind": "budget", "budget_mm2": budget}
                         | (_figures(best) if best else {"point": "", "note": "no point within the budget"}))
        grid_front = pareto_front([row for row in members if row.get("point_kind") == "grid"], "area_mm2")
        for row in members:
            if row.get("point_kind") != "preset":
                continue
            note = []
            for kind, front in fronts.items():
                if any(other["point"] == row["point"] for other in front):
                    note.append(f"on {kind}")
            reference = float("nan")
            if _finite(row.get("area_mm2")):
                cheaper = [other for other in grid_front if float(other["area_mm2"]) <= float(row["area_mm2"])]
                if cheaper:
                    reference = max(float(other["tokens_per_s"]) for other in cheaper)
            if row.get("status") != "ok":
                note.append(row.get("status", ""))
            table.append(key | {"kind": "preset"} | _figures(row)
                         | {"front_tokens_per_s_at_area": reference, "note": "; ".join(note) or "off the fronts"})
    return table


def _figures(row: dict) -> dict:
    return {"point": row["point"], "tokens_per_s": row.get("tokens_per_s"), "area_mm2": row.get("area_mm2"),
            "energy_per_token_mj": row.get("energy_per_token_mj"), "power_w": row.get("power_w")}
