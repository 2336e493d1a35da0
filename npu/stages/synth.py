"""Stages of workflow/rules/synth.smk: the 7 nm synthesis flow (npu.synth).

- `synth_liberty_stage` (rule synth_liberty): the merged, dont_use-marked ASAP7 library of a corner;
- `synth_netlist_stage` (rule synth_netlist): one unit of one NPU preset, synthesized by Yosys
  (netlist.v and synthesis.json);
- `synth_activity_stage` (rule synth_activity): per-net switching activity of that netlist on
  the unit's workload, by gate-level simulation (and the netlist's outputs checked against
  npu.hw.numerics);
- `synth_timing_stage` (rule synth_timing): that netlist timed and powered by OpenSTA at one
  corner, with default and (when measured) activity-based power (a one-row TSV and the
  critical-path report);
- `synth_sram_stage` (rule synth_sram): the preset's SRAMs from the ASAP7 SRAM bank macros
  (results/synth/{npu}/sram.tsv);
- `synth_table_stage` (rule synth_units): a preset's rows -> results/synth/{npu}/units.tsv;
- `synth_summary_stage` (rule synth_summary): every preset's rows -> results/synth/summary.tsv.

Each writes its outputs atomically and only after every check passed: a black-boxed cell, an
unconstrained design or zero power raises a named error (npu.synth.errors) and leaves no table.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from npu.io import atomic_write_text, write_tsv


def synth_liberty_stage(corner: str, out: str | Path, pdk: str | Path | None = None) -> Path:
    from npu.synth.liberty import prepare_liberty
    from npu.synth.pdk import find_pdk

    return prepare_liberty(find_pdk(pdk), corner, out)


def synth_netlist_stage(npu: str | Path, unit: str, liberty: str | Path, out_dir: str | Path,
                        yosys: str = "yosys", clock_period_ps: float | None = None) -> dict:
    """Synthesize `unit` with the parameters and clock of the NPU preset `npu`."""
    from npu.hw.config import load_npu_config
    from npu.synth.flow import clock_period_ps as period_of, synthesize_unit
    from npu.synth.units import get_unit

    config = load_npu_config(npu)
    entry = get_unit(unit)
    return synthesize_unit(entry, entry.parameters(config), Path(liberty), period_of(config.clock_ghz, clock_period_ps),
                           Path(out_dir), yosys=yosys, npu=config.name)


def synth_activity_stage(synthesis: str | Path, out: str | Path, vectors: int = 256,
                         pdk: str | Path | None = None, seed: int = 0, max_cells: int | None = None) -> dict:
    """Per-net switching activity of the netlist beside `synthesis` on its unit's workload
    (gate-level simulation with the PDK's cell models), checked against npu.hw.numerics."""
    from npu.synth.flow import measure_unit_activity
    from npu.synth.pdk import find_pdk

    synthesis = Path(synthesis)
    record = json.loads(synthesis.read_text())
    return measure_unit_activity(record, synthesis.with_name("netlist.v"), find_pdk(pdk), Path(out), vectors, seed,
                                 max_cells)


def synth_timing_stage(synthesis: str | Path, liberty: str | Path, corner: str, out: str | Path,
                       path_report: str | Path, activities: str | Path | None = None) -> dict:
    """Time and power the netlist beside `synthesis` (its synthesis.json) at `corner`."""
    from npu.synth.flow import time_unit

    synthesis = Path(synthesis)
    record = json.loads(synthesis.read_text())
    row, report = time_unit(record, synthesis.with_name("netlist.v"), Path(liberty), corner,
                            synthesis.parent / "work", activities)
    atomic_write_text(path_report, report)
    write_tsv(out, [row])
    return row


def synth_sram_stage(npu: str | Path, out: str | Path, sram_pdk: str | Path | None = None) -> Path:
    """The preset's four SRAMs tiled from the ASAP7 SRAM banks (npu.synth.sram) -> sram.tsv."""
    from npu.hw.config import load_npu_config
    from npu.synth.sram import find_sram_pdk, preset_memories, read_banks, tile_memory

    config = load_npu_config(npu)
    banks = read_banks(find_sram_pdk(sram_pdk))
    rows = [{"npu": config.name, **tile_memory(*memory, banks)} for memory in preset_memories(config)]
    return write_tsv(out, rows)


def _read_rows(tables: list[str | Path]) -> list[dict]:
    rows = []
    for table in tables:
        with open(table, newline="") as handle:
            rows += list(csv.DictReader(handle, delimiter="\t"))
    return rows


def synth_table_stage(tables: list[str | Path], out: str | Path) -> Path:
    """The one-row tables of a preset's units and corners as one table."""
    rows = _read_rows(tables)
    if not rows:
        raise ValueError("synth table: no rows to write")
    return write_tsv(out, rows, missing="-")


def synth_summary_stage(tables: list[str | Path], out: str | Path) -> Path:
    """Every preset's units.tsv as one table (the `npu` column tells them apart)."""
    return synth_table_stage(tables, out)
