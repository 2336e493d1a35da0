"""Stages of workflow/rules/dse.smk: the design-space sweep (npu.dse, docs/dse.md).

- `dse_point_stage` (rule dse_point): one design point - its derived preset written as
  `npu.yaml`, its generations on the analytical model (`point.tsv`, one row per model, cache
  mode and commit rule; an infeasible point gets rows saying why), and on sampled points the
  cycle simulator's check (`cycle.tsv`);
- `dse_summary_stage` (rule dse_summary): every point's rows plus the presets' own analytical
  rows, with area (npu.dse.area, from the synthesis tables) and power -> `points.tsv`, the
  Pareto fronts and area budgets -> `pareto.tsv`, and figure 8 (npu.plots.dse) -> `pareto.png`.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import yaml

from npu.io import atomic_write_text, cell_number as _float, read_tsv as _read_rows, write_tsv

FIGURE_COLUMNS = ("tokens_per_s", "energy_per_token_mj", "latency_per_token_ms", "utilisation",
                  "dram_mb_per_token", "sampling_share")


def dse_point_stage(base: str | Path, parameters: dict, point: str, models: list[str | Path], out_dir: str | Path,
                    settings=None, caches: tuple[str, ...] = ("dual",), rules: tuple[str, ...] = ("topk", "threshold"),
                    cycle_max_instructions: int | None = None, cycle_dram: str = "bandwidth",
                    technology: str | Path | None = None) -> Path:
    """Evaluate one design point (module docstring); `cycle_max_instructions` None: no cycle check;
    `technology`: a technology table replacing the base's (the calibrated one of the base preset).
    `point` must be the id npu.dse.grid gives the parameters (a stale id is refused by name)."""
    from npu.config import preset_path, read_yaml
    from npu.dse.grid import GRID_KEYS, check_point, derive_preset, point_id, DesignPoint, DesignSpaceError
    from npu.hw.config import npu_config_from_dict, with_technology
    from npu.sim.analytical.scenarios import ScenarioSettings

    if sorted(parameters) != sorted(GRID_KEYS):
        raise DesignSpaceError(f"dse point {point}: parameters must be exactly {', '.join(GRID_KEYS)}; "
                               f"got {', '.join(sorted(parameters))}")
    base_path = preset_path("npu", base)
    base_preset = read_yaml(base_path)
    preset = derive_preset(base_preset, parameters, name="point")
    if point_id(parameters, preset) != point:
        raise DesignSpaceError(f"dse point {point}: its parameters {parameters} give the id "
                               f"{point_id(parameters, preset)} over {base_path}")
    preset["name"] = point
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "npu.yaml", yaml.safe_dump(preset, sort_keys=False))
    config_dir = base_path.resolve().parent.parent if base_path.resolve().parent.name == "npu" else None
    reason = check_point(DesignPoint(point, parameters, preset), config_dir)
    settings = settings or ScenarioSettings()
    head = {"point": point, "point_kind": "grid", **parameters}
    if reason is not None:
        print(f"dse {point}: infeasible: {reason}", file=sys.stderr)
        rows = [head | {"model": Path(model).stem, "status": f"infeasible: {reason}"} for model in models]
        write_tsv(out_dir / "cycle.tsv", [{"status": "not simulated: infeasible point"}])
        return write_tsv(out_dir / "point.tsv", rows, missing="")
    from npu.dse.point import cycle_check, evaluate_point

    config = with_technology(npu_config_from_dict(preset, source=point, config_dir=config_dir), technology)
    rows, machine, lowering, setups_of = evaluate_point(config, list(models), settings, tuple(caches), tuple(rules))
    rows = [head | row for row in rows]
    if cycle_max_instructions is not None:
        cycle_rows, summary = cycle_check(machine, lowering, setups_of, cycle_max_instructions, cycle_dram)
        rows = [row | summary.get(row["model"], {}) for row in rows]
        write_tsv(out_dir / "cycle.tsv", cycle_rows or [{"status": "no program compiled"}], missing="")
    else:
        write_tsv(out_dir / "cycle.tsv", [{"status": "not sampled for the cycle check"}])
    return write_tsv(out_dir / "point.tsv", rows, missing="")


def preset_rows(analytical: list[str | Path], presets: list[str | Path], caches: tuple[str, ...],
                rules: tuple[str, ...], models: list[str]) -> list[dict]:
    """The presets' rows of results/{npu}/{model}/analytical.tsv in the sweep's generations."""
    from npu.config import read_yaml
    from npu.dse.grid import base_parameters

    parameters = {}
    for path in presets:
        data = read_yaml(path)
        parameters[data["name"]] = base_parameters(data)
    rows = []
    for table in analytical:
        for row in _read_rows(table):
            family = row["rule"].rstrip("0123456789.")
            if row["cache"] in caches and family in rules and row["model"] in models:
                rows.append({"point": row["machine"], "point_kind": "preset", **parameters[row["machine"]], **row})
    return rows


def dse_summary_stage(point_tables: list[str | Path], out_points: str | Path, out_pareto: str | Path,
                      out_figure: str | Path, analytical: list[str | Path] = (), presets: list[str | Path] = (),
                      caches: tuple[str, ...] = ("dual",), rules: tuple[str, ...] = ("topk", "threshold"),
                      units_tsv: str | Path | None = None, sram_tsv: str | Path | None = None,
                      liberty: str | Path | None = None, budgets_mm2: tuple[float, ...] = (25, 50, 100, 200),
                      config_dir: str | Path | None = None) -> list[dict]:
    """points.tsv, pareto.tsv and pareto.png from the point tables and the presets' tables."""
    from npu.dse.area import UnitLibrary, area_report
    from npu.dse.pareto import pareto_rows
    from npu.hw.config import load_npu_config, npu_config_from_dict
    from npu.config import read_yaml
    from npu.plots.dse import pareto_figure

    from npu.config import preset_path

    presets = [preset_path("npu", preset, config_dir) for preset in presets]
    library = UnitLibrary.from_tables(units_tsv, sram_tsv, liberty)
    print(f"dse summary: area from {library.source}", file=sys.stderr)
    rows, areas = [], {}
    for table in map(Path, point_tables):
        point_rows = _read_rows(table)
        point = point_rows[0]["point"]
        if not point_rows[0]["status"].startswith("infeasible"):
            config = npu_config_from_dict(read_yaml(table.parent / "npu.yaml"), source=point, config_dir=config_dir)
            areas[point] = area_report(config, library)
        rows += point_rows
    models = sorted({row["model"] for row in rows})
    preset_table = preset_rows(list(analytical), list(presets), caches, rules, models)
    for path in presets:
        config = load_npu_config(path, config_dir)
        areas[config.name] = area_report(config, library)
    rows += preset_table
    out = []
    for row in rows:
        area = areas.get(row["point"], {})
        tokens, energy = _float(row.get("tokens_per_s")), _float(row.get("energy_per_token_mj"))
        record = {"point": row["point"], "point_kind": row["point_kind"],
                  **{key: row.get(key, "") for key in ("mlen", "blen", "vlen", "vector_sram_mib", "matrix_sram_mib",
                                                       "dram_channels", "weights", "kv_cache")},
                  "model": row["model"], "cache": row.get("cache", ""), "rule": row.get("rule", ""),
                  "status": row["status"],
                  **{key: _float(row.get(key)) for key in FIGURE_COLUMNS},
                  "power_w": tokens * energy * 1e-3,
                  **({"area_mm2": math.nan, "area_status": "infeasible point"} | area),
                  **{key: row.get(key, "") for key in ("cycle_error", "cycle_coverage", "cycle_programs")}}
        out.append(record)
    write_tsv(out_points, out, missing="")
    table = pareto_rows(out, list(budgets_mm2))
    write_tsv(out_pareto, table or [{"kind": "none", "note": "no point with figures"}], missing="")
    pareto_figure(out_points, out_pareto, out_figure)
    feasible = sum(1 for row in out if row["status"] == "ok")
    print(f"dse summary: {len(out)} rows ({feasible} with figures) from {len(point_tables)} points and "
          f"{len(presets)} presets", file=sys.stderr)
    return out
