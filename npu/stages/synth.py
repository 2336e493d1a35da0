"""Stages of workflow/rules/synth.smk: the 7 nm synthesis flow (npu.synth).

- `synth_liberty_stage` (rule synth_liberty): the merged, dont_use-marked ASAP7 library of a corner;
- `synth_netlist_stage` (rule synth_netlist): one job (unit, parameters, clock: npu.synth.jobs,
  shared by the presets that agree on them), synthesized by Yosys (netlist.v and synthesis.json);
- `synth_activity_stage` (rule synth_activity): per-net switching activity of that netlist on
  the unit's workload, by gate-level simulation (and the netlist's outputs checked against
  npu.hw.numerics);
- `synth_timing_stage` (rule synth_timing): that netlist timed and powered by OpenSTA at one
  corner, with default and (when measured) activity-based power (a one-row TSV and the
  critical-path report);
- `synth_sram_stage` (rule synth_sram): the preset's SRAMs from the ASAP7 SRAM bank macros
  (results/synth/{npu}/sram.tsv);
- `synth_table_stage` (rule synth_units): a preset's job rows and the units composed from them
  (npu.synth.compose) -> results/synth/{npu}/units.tsv;
- `synth_summary_stage` (rule synth_summary): every preset's rows -> results/synth/summary.tsv;
- `synth_composition_stage` (rule synth_composition): arrays composed from their PEs against flat
  synthesis at 4x4 / 8x8, the error per figure -> results/synth/composition.tsv;
- `synth_anchor_stage` (rule synth_anchor): the ORFS-style INT8 anchor rows -> results/synth/anchor.tsv;
- `synth_die_stage` (rule synth_die): each preset's modelled die area beside GA102 -> die_area.tsv;
- `synth_trace_stage` (rule synth_trace): a trained model's vector / matrix operands on the
  functional simulator -> results/synth/trace/{model}.npz (the activity workloads);
- `synth_tech_stage` (rule synth_tech): the technology table calibrated from the synthesis ->
  results/synth/{npu}/tech.yaml and energy_calibration.tsv;
- `synth_energy_stage` (rule synth_energy): energy per token with the preset's table and the
  calibrated one -> results/synth/{npu}/energy_per_token.tsv.

Each writes its outputs atomically and only after every check passed: a black-boxed cell, an
unconstrained design or zero power raises a named error (npu.synth.errors) and leaves no table.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from npu.io import atomic_write_text, write_tsv


def synth_liberty_stage(corner: str, out: str | Path, pdk: str | Path | None = None) -> Path:
    from npu.synth.liberty import prepare_liberty
    from npu.synth.pdk import find_pdk

    return prepare_liberty(find_pdk(pdk), corner, out)


def synth_netlist_stage(unit: str, liberty: str | Path, out_dir: str | Path, yosys: str = "yosys",
                        parameters: dict[str, int] | None = None, clock_period_ps: float | None = None,
                        npu: str | Path | None = None) -> dict:
    """Synthesize one job: `unit` with `parameters` at `clock_period_ps` (the pipeline passes both,
    npu.synth.jobs), or with the parameters and clock of the NPU preset `npu` (by hand)."""
    from npu.synth.flow import synthesize_unit
    from npu.synth.jobs import SynthJob, job_for
    from npu.synth.units import get_unit

    entry = get_unit(unit)
    if npu is not None:
        from npu.hw.config import load_npu_config

        job = job_for(entry, load_npu_config(npu), clock_period_ps)
    elif clock_period_ps is None:
        raise ValueError(f"synth-netlist {unit}: give --clock-period-ps (and --parameters) or --npu")
    else:
        job = SynthJob(entry.name, dict(parameters or {}), float(entry.period_ps or clock_period_ps))
    return synthesize_unit(entry, job.parameters, Path(liberty), job.period_ps, Path(out_dir), yosys=yosys,
                           job=job.key)


def synth_activity_stage(synthesis: str | Path, out: str | Path, vectors: int = 256,
                         pdk: str | Path | None = None, seed: int = 0, max_cells: int | None = None,
                         trace: str | Path | None = None) -> dict:
    """Per-net switching activity of the netlist beside `synthesis` on its unit's workload - the
    operands recorded from a model run in `trace` (synth_trace_stage) where it has the unit's, else
    its operand distribution - (gate-level simulation with the PDK's cell models), checked
    against npu.hw.numerics."""
    from npu.synth.flow import measure_unit_activity
    from npu.synth.pdk import find_pdk

    synthesis = Path(synthesis)
    record = json.loads(synthesis.read_text())
    return measure_unit_activity(record, synthesis.with_name("netlist.v"), find_pdk(pdk), Path(out), vectors, seed,
                                 max_cells, Path(trace) if trace else None)


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


def synth_sram_stage(npu: str | Path, out: str | Path, sram_pdk: str | Path | None = None,
                     liberty: str | Path | None = None) -> Path:
    """The preset's four SRAMs tiled from the ASAP7 SRAM banks (npu.synth.sram) -> sram.tsv; with
    the TT standard-cell `liberty`, their leakage estimated from its inverter (sram_leakage_mw_per_mib);
    their peak read power at the preset's clock (sram_power_columns)."""
    from npu.hw.config import load_npu_config
    from npu.synth.sram import (find_sram_pdk, preset_memories, read_banks, sram_leakage_mw_per_mib,
                                sram_power_columns, tile_memory)

    config = load_npu_config(npu)
    banks = read_banks(find_sram_pdk(sram_pdk))
    per_mib = sram_leakage_mw_per_mib(liberty) if liberty else None
    rows = []
    for memory in preset_memories(config):
        row = tile_memory(*memory, banks, per_mib)
        rows.append({"npu": config.name, **row, **sram_power_columns(row, config.clock_ghz)})
    return write_tsv(out, rows)


def _read_rows(tables: list[str | Path]) -> list[dict]:
    rows = []
    for table in tables:
        with open(table, newline="") as handle:
            rows += list(csv.DictReader(handle, delimiter="\t"))
    return rows


def synth_table_stage(tables: list[str | Path], out: str | Path, npu: str = "",
                      compositions: dict[str, dict[str, int]] | None = None) -> Path:
    """The one-row tables of a preset's jobs (units x corners) as one table, the preset's name in
    front, then the units composed from them (npu.synth.compose: e.g. the 128x128 array from
    its PEs) per corner."""
    from npu.synth.compose import compose_rows

    rows = _read_rows(tables)
    if not rows:
        raise ValueError("synth table: no rows to write")
    if npu:
        rows = [{"npu": npu, **{key: value for key, value in row.items() if key != "npu"}} for row in rows]
    rows += [{"npu": npu, **row} if npu else row for row in compose_rows(rows, compositions or {})]
    return write_tsv(out, rows, missing="-")


def synth_summary_stage(tables: list[str | Path], out: str | Path) -> Path:
    """Every preset's units.tsv as one table (the `npu` column tells them apart)."""
    rows = _read_rows(tables)
    if not rows:
        raise ValueError("synth summary: no rows to write")
    return write_tsv(out, rows, missing="-")


def synth_composition_stage(tables: list[str | Path], out: str | Path) -> Path:
    """Composed arrays (PE x count, npu.synth.compose) against their flat synthesis at small sizes:
    flat, composed and the error in % per figure -> composition.tsv."""
    from npu.synth.compose import composition_check

    checks = composition_check(_read_rows(tables))
    if not checks:
        raise ValueError("synth composition: no composition has both its parts and a flat synthesis among the "
                         "tables (e.g. synth.units with matrix_pe, matrix_pe_row0 and systolic_array_4x4)")
    return write_tsv(out, checks)


# The ORFS figure the anchor is set beside (docs/synthesis.md, "Anchor"): quoted, not measured here.
ORFS_ANCHOR = {
    "design": "OpenROAD-flow-scripts flow/designs/asap7/mock-array (8x8 Elements, 8-bit datapath; "
              "rules-base.json synth__design__instance__area__stdcell <= 34311.75 um^2)",
    "area_um2_per_pe_quoted": "90-95 (issue 17; not found in the ORFS files read)",
}


def synth_anchor_stage(tables: list[str | Path], out: str | Path) -> Path:
    """The anchor rows (INT8 PE, the flat 8x8 INT8 array, the array composed from its PE, our fp
    PE at the same 200 ps / FF), each with its area per PE -> anchor.tsv."""
    from npu.synth.compose import COMPOSITIONS, compose_rows

    rows = _read_rows(tables)
    if not rows:
        raise ValueError("synth anchor: no rows")
    composition = COMPOSITIONS["anchor_int8_array_8x8"]
    units = {row["unit"] for row in rows}
    composed = (compose_rows(rows, {composition.name: composition.parts(8)})
                if set(composition.parts(8)) <= units else [])
    pes = {"anchor_int8_array": 64, "anchor_int8_array_8x8": 64}
    table = []
    for row in rows + composed:
        count = pes.get(row["unit"], 1)
        table.append({"unit": row["unit"], "corner": row["corner"], "clock_period_ps": row["clock_period_ps"],
                      "pes": count, "cell_area_um2": row["cell_area_um2"],
                      "area_um2_per_pe": float(row["cell_area_um2"]) / count,
                      "cells": row["cells"], "fmax_ghz": row["fmax_ghz"], "worst_slack_ps": row["worst_slack_ps"],
                      "leakage_uw": row["leakage_uw"], "power_default_activity_uw": row["power_default_activity_uw"],
                      "power_activity_uw": row["power_activity_uw"], "path_start": row["path_start"],
                      "path_end": row["path_end"], "reference": ORFS_ANCHOR["design"],
                      "reference_area_um2_per_pe": ORFS_ANCHOR["area_um2_per_pe_quoted"]})
    return write_tsv(out, table)


def synth_tech_stage(npu: str | Path, units: str | Path, sram: str | Path, liberty: str | Path,
                     out: str | Path, table: str | Path) -> Path:
    """The preset's technology file with energies calibrated from its synthesis (npu.synth.calibrate)
    -> tech.yaml, and each energy before / after with its source -> energy_calibration.tsv."""
    import yaml

    from npu.hw.config import load_npu_config
    from npu.hw.technology import technology_from_dict
    from npu.synth.calibrate import calibrated_technology
    from npu.synth.sram import sram_leakage_mw_per_mib

    config = load_npu_config(npu)
    base = yaml.safe_load(Path(config.technology.source).read_text())
    data, provenance = calibrated_technology(base, _read_rows([units]), _read_rows([sram]),
                                             sram_leakage_mw_per_mib(liberty), f"{base['name']}-{config.name}-calibrated",
                                             mlen=config.mlen)
    technology_from_dict(data, str(out))  # the same checks as a technology file the presets name
    header = (f"# {data['name']}: written by `npu synth-tech` (npu.synth.calibrate) from {units} and {sram}.\n"
              f"# scale_from_45nm is 1.0: the pj_at_45nm entries (the schema's key names) hold 7 nm energies.\n")
    atomic_write_text(out, header + yaml.safe_dump(data, sort_keys=False))
    write_tsv(table, [{"npu": config.name, **row} for row in provenance])
    return Path(out)


def synth_energy_stage(npu: str | Path, technology: str | Path, models: list[str | Path], out: str | Path,
                       settings=None, by_unit: str | Path | None = None) -> Path:
    """Energy per generated token of each model's generations (npu.sim.analytical, as
    simulate_analytical) with the preset's own technology table and with the calibrated one
    -> energy_per_token.tsv (before, after, ratio); with `by_unit`, the same split by unit
    (npu.sim.analytical.unit_energy: MAC array, vector lanes, SRAMs, DMA / codec, DRAM, control, leakage)."""
    from npu.hw.config import load_npu_config, with_technology
    from npu.runtime.lowering import generation_row, step_program
    from npu.sim.analytical.scenarios import ScenarioSettings, model_scenarios
    from npu.sim.analytical.unit_energy import GroupedStepModel, breakdown_rows, shared_lowering, unit_breakdown

    config = load_npu_config(npu)
    calibrated_config = with_technology(config, technology)
    calibrated = calibrated_config.technology
    lower = shared_lowering(step_program)  # each step compiled once for both tables
    machines = {"before": GroupedStepModel(config, lower), "after": GroupedStepModel(calibrated_config, lower)}
    rows, unit_rows = [], []
    shared: dict[str, dict] = {when: {} for when in machines}  # step costs, reused across a model's generations
    for model_name in models:
        model, setups = model_scenarios(model_name, settings or ScenarioSettings())
        for setup in setups:
            result = {when: generation_row(machine, model, setup, shared[when]) for when, machine in machines.items()}
            before, after = (result[when] for when in ("before", "after"))
            rows.append({"npu": config.name, "model": before["model"], "cache": before["cache"], "rule": before["rule"],
                         "tokens_per_s": before["tokens_per_s"],
                         "energy_per_token_mj_before": before["energy_per_token_mj"],
                         "energy_per_token_mj_after": after["energy_per_token_mj"],
                         "ratio_after_over_before": after["energy_per_token_mj"] / before["energy_per_token_mj"]
                         if before["status"] == "ok" else float("nan"),
                         "technology_before": config.technology.name, "technology_after": calibrated.name,
                         "status": before["status"]})
            if by_unit is not None and before["status"] == "ok":
                split = {when: unit_breakdown(machine, model, setup) for when, machine in machines.items()}
                unit_rows += breakdown_rows(config.name, before["model"], before["cache"], before["rule"],
                                            split["before"], split["after"])
            print(f"energy {config.name} {before['model']} {before['cache']}/{before['rule']}: "
                  f"{before['energy_per_token_mj']:.4g} -> {after['energy_per_token_mj']:.4g} mJ/token", file=sys.stderr)
    if not rows:
        raise ValueError("synth energy: no models given")
    if by_unit is not None:
        write_tsv(by_unit, unit_rows or [{"npu": config.name, "note": "no generation compiled"}], missing="-")
    return write_tsv(out, rows)


def synth_trace_stage(checkpoint: str | Path, npu: str | Path, out: str | Path, limit: int = 4096,
                      cache: str = "dual", seed: int = 1234) -> dict:
    """The operands of one generation of a trained model (its first task prompt, its decoding
    recipe, greedy, `cache` mode) on the functional simulator of preset `npu`, recorded per unit
    (npu.sim.functional.recording) -> an npz of `<unit>.<port>` bit patterns, the workload
    npu.synth.activity replays at gate level."""
    from npu.check.prompts import task_prompts
    from npu.hw.config import load_npu_config
    from npu.ir import weights_from_model
    from npu.io import atomic_write_with
    from npu.models.checkpoint import load_checkpoint
    from npu.models.decoding import DecodeConfig
    from npu.models.tasks import get_task
    from npu.runtime.generate import SimulatorStepper, generate
    from npu.sim.functional.recording import record_operands

    import numpy as np

    model, meta = load_checkpoint(str(checkpoint))
    cfg = model.config
    preset = meta["extra"]["preset"]
    decoding = preset["decoding"]
    prompts, _ = task_prompts(get_task(preset["task"]), 1, seed)
    plan = DecodeConfig(decoding["gen_length"], decoding["block_length"], decoding["steps"], cache)
    config = load_npu_config(npu)
    with record_operands(limit) as record:
        stepper = SimulatorStepper(cfg, weights_from_model(model), config, prompts.shape[1] + decoding["gen_length"],
                                   plan.sampling)
        result = generate(stepper, prompts[0], plan, cfg.mask_token_id)
    arrays = record.arrays()
    if not arrays:
        raise ValueError(f"synth trace: the generation of {cfg.name} on {config.name} recorded no operands")
    description = (f"{cfg.name} generation ({cache} cache, {len(result.records)} steps) on {config.name}, "
                   f"functional simulator")
    def save(path: str) -> None:
        with open(path, "wb") as handle:  # a handle: np.savez would add .npz to a temporary name
            np.savez(handle, description=np.array(description), **arrays)

    atomic_write_with(out, save)
    print(f"trace: {description}: " + ", ".join(f"{unit} {count}" for unit, count in record.counts.items()),
          file=sys.stderr)
    return dict(record.counts)


def synth_die_stage(units: list[str | Path], srams: list[str | Path], out: str | Path) -> Path:
    """Each preset's modelled die area (npu.synth.die: logic, SRAM, uncore allowance) beside
    GA102's 628 mm^2 -> die_area.tsv. `units` and `srams` are the presets' tables, in the same order."""
    from npu.synth.die import die_area_row

    if len(units) != len(srams) or not units:
        raise ValueError(f"synth die: {len(units)} units tables for {len(srams)} SRAM tables")
    rows = []
    for unit_table, sram_table in zip(units, srams):
        unit_rows, sram_rows = _read_rows([unit_table]), _read_rows([sram_table])
        npu = sram_rows[0]["npu"] if sram_rows else Path(sram_table).parent.name
        rows.append(die_area_row(npu, unit_rows, sram_rows))
    return write_tsv(out, rows, missing="-")
