"""The synthesis flow of one unit, step by step, as the pipeline runs it:

1. `prepare_liberty` (npu.synth.liberty): the merged library of a corner.
2. `synthesize_unit`: Yosys maps the unit (in its register wrapper) to the library of the
   mapping corner at the preset's clock; the netlist and a JSON record of area, cells and run
   time are written, or a named error and nothing.
3. `time_unit`: OpenSTA times and powers that netlist with the library of each corner; one
   table row per corner, or a named error and nothing.

Parameters of a unit come from the NPU preset through its table entry (npu.synth.units); the
clock period from the preset's `clock_ghz` unless the config sets `synth.clock_period_ps`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from npu.io import atomic_write_text, write_json
from npu.synth.errors import PdkNotFoundError
from npu.synth.openroad import openroad_status
from npu.synth.pdk import find_pdk
from npu.synth.sram import find_sram_pdk
from npu.synth.netlist import library, library_leakage_uw
from npu.synth.sta import DEFAULT_ACTIVITY, NetActivity, analyze
from npu.synth.units import SynthUnit
from npu.synth.yosys import synthesize


def clock_period_ps(clock_ghz: float, override_ps: float | None = None) -> float:
    """The synthesis target: `override_ps` when given, else one cycle of the preset's clock."""
    if override_ps is not None:
        if not override_ps > 0:
            raise ValueError(f"synth.clock_period_ps {override_ps} must be positive")
        return float(override_ps)
    return 1000.0 / clock_ghz


def parameter_text(parameters: dict[str, int]) -> str:
    return " ".join(f"{key}={value}" for key, value in sorted(parameters.items())) or "-"


def synthesize_unit(unit: SynthUnit, parameters: dict[str, int], liberty: Path, period_ps: float, out_dir: Path,
                    yosys: str = "yosys", job: str = "") -> dict[str, Any]:
    """Synthesize into `out_dir` (netlist.v, synthesis.json, and the tools' files in work/);
    returns the record. On an error nothing but work/ is left."""
    out_dir = Path(out_dir)
    work = out_dir / "work"
    if work.exists():
        shutil.rmtree(work)
    for stale in ("netlist.v", "synthesis.json"):
        (out_dir / stale).unlink(missing_ok=True)
    result = synthesize(unit, parameters, Path(liberty), period_ps, work, yosys)
    area, wrapper = result.area, result.wrapper_area
    record = {
        "job": job, "unit": unit.name, "module": unit.module, "top": result.top, "instance": "unit", "clock_port": "clk",
        "parameters": parameters, "clock_period_ps": period_ps, "mapping_liberty": str(liberty),
        "yosys": result.yosys, "yosys_binary": yosys, "synth_seconds": round(result.seconds, 3),
        "cell_area_um2": area.cell_area_um2, "sequential_area_um2": area.sequential_area_um2,
        "cells": area.cells, "sequential_cells": area.sequential_cells,
        "yosys_stat_area_um2": result.yosys_area_um2,
        "wrapper_register_area_um2": wrapper.cell_area_um2 - area.cell_area_um2,
        "ports": {name: list(port) for name, port in result.ports.items()},
        "cell_types": dict(sorted(area.cell_types.items())),
    }
    atomic_write_text(out_dir / "netlist.v", result.netlist.read_text())
    write_json(out_dir / "synthesis.json", record)
    return record


def measure_unit_activity(record: dict[str, Any], netlist: Path, pdk: Any, out: Path, vectors: int,
                          seed: int = 0, max_cells: int | None = None, trace: Path | None = None) -> dict[str, Any]:
    """Gate-level simulation of the unit's workload (npu.synth.activity) -> per-net activities
    at `out` (JSON), with the check that the netlist computed what npu.hw.numerics does. A unit
    of more than `max_cells` cells is not simulated (Icarus needs tens of minutes for the
    compound units' 25k-90k cells): the JSON then says so, and its tables say "not measured"."""
    from dataclasses import replace

    from npu.synth.activity import check_outputs, measure_activity, write_activity
    if max_cells is not None and record["cells"] > max_cells:
        reason = f"{record['cells']} cells > synth.activity_max_cells {max_cells}"
        write_json(Path(out), {"skipped": reason, "nets": []})
        return {"skipped": reason}

    ports = {name: (port[0], int(port[1])) for name, port in record["ports"].items()}
    work = Path(out).parent / "work" / "activity"
    result = measure_activity(Path(netlist), record["top"], ports, pdk, record["unit"], work, vectors, seed,
                              trace=trace)
    result = replace(result, checked=check_outputs(record["unit"], result))
    write_activity(result, Path(out))
    return {"workload": result.workload, "cycles": result.cycles, "nets": len(result.nets), "checked": result.checked}


def read_activities(path: str | Path | None) -> tuple[list[NetActivity], dict[str, Any]]:
    """Per-net activities (npu.synth.activity's JSON) and what they were measured on."""
    if path is None:
        return [], {}
    data = json.loads(Path(path).read_text())
    return [NetActivity(**item) for item in data["nets"]], {key: data.get(key) for key in ("workload", "cycles",
                                                                                            "checked_vectors", "skipped")}


def time_unit(record: dict[str, Any], netlist: Path, liberty: Path, corner: str, work: Path,
              activities: str | Path | None = None) -> tuple[dict[str, Any], str]:
    """One table row (and the critical-path report) of a synthesized unit at `corner`."""
    period = float(record["clock_period_ps"])
    nets, measured_on = read_activities(activities)
    timing = analyze(Path(liberty), Path(netlist), record["top"], period, Path(work), corner, activities=nets)
    row = {
        "unit": record["unit"], "corner": corner, "job": record.get("job", ""),
        "parameters": parameter_text(record["parameters"]), "clock_period_ps": period,
        "cell_area_um2": record["cell_area_um2"], "sequential_area_um2": record["sequential_area_um2"],
        "cells": record["cells"], "sequential_cells": record["sequential_cells"],
        "worst_slack_ps": timing.worst_slack_ps, "critical_path_ps": timing.critical_path_ps,
        "fmax_ghz": timing.fmax_ghz, "path_start": timing.path_start, "path_end": timing.path_end,
        "logic_levels": timing.logic_levels,
        "leakage_uw": (timing.unit_power.leakage_w * 1e6 if timing.unit_power else
                       library_leakage_uw(record["cell_types"], library(liberty))),
        "power_default_activity_uw": (timing.unit_power.total_w * 1e6 if timing.unit_power else
                                      f"not computed ({timing.power_error}; leakage from the library)"),
        "default_activity": f"every net {DEFAULT_ACTIVITY}/cycle",
        "power_activity_uw": (timing.measured_power.total_w * 1e6 if timing.measured_power else
                              f"not computed ({timing.power_error})" if timing.power_error else
                              f"not measured ({measured_on['skipped']})" if measured_on.get("skipped") else "not measured"),
        "activity_workload": f"{measured_on['workload']}, {measured_on['cycles']} cycles" if nets else "-",
        "gate_level_check": (f"netlist == npu.hw.numerics on {measured_on['checked_vectors']} vectors"
                             if nets and measured_on.get("checked_vectors") else "-"),
        "synth_seconds": record["synth_seconds"], "sta_seconds": round(timing.seconds, 3) if timing.seconds == timing.seconds else "-",
        "yosys": record["yosys"], "openroad": openroad_status(),
    }
    return row, timing.path_report


def synthesis_unavailable() -> str | None:
    """Why the synthesis flow cannot run here (a tool or the PDK missing), or None when it can:
    the tests skip with this reason, and the test pipeline leaves the stage out."""
    for tool in ("yosys", "sta"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (make eda-tools)"
    try:
        find_pdk()
        find_sram_pdk()
    except PdkNotFoundError as error:
        return str(error)
    return None
