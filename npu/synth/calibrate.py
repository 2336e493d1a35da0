"""The technology table calibrated from synthesis: per-operation energies from the synthesized
units' power and the ASAP7 SRAM banks, in the schema of config/tech/*.yaml (npu.hw.technology).

Energy of one operation = the unit's power at its clock x one period (one operation per cycle),
from the activity-based power where the gate-level simulation measured it, else the
default-activity power (each entry says which). What each action of the cost model
(npu.sim.cost.energy) is priced with:

    mac              matrix_pe (bf16 x bf16 -> fp32 + fp32), one PE for one cycle, plus 1 / MLEN of
                     a matrix_accumulator column's cycle (a row of the array, MLEN x MLEN MACs, adds
                     MLEN column sums into the accumulators) where it was synthesized
    dma_codec_element  dma_codec_control (the codec's conversion logic at CODEC_PART_BLOCK
                     elements, its kv fp32_recip / fp32_mul black boxes) per cycle / CODEC_PART_BLOCK;
                     the kv scaling is priced as vector_mul / vector_special (the same units)
    vector_add       fp32_add             vector_compare   fp32_add (a compare is a subtract)
    vector_mul       fp32_mul             vector_move      fp32_to_bf16 (a mux/convert-class op)
    vector_special   mean of fp32_exp, fp32_recip, fp32_rsqrt
    scalar_fp        fp32_add             scalar_int, vector_rank: not synthesized on their own:
                                          the base table's figure is kept
    instruction      npu_core_control (decoder, register files, scalar ALU, the FPU's compare /
                     convert logic, loop stack; memories and the FPU's arithmetic units, which
                     scalar_fp prices, excluded), one cycle; the base table's figure when it has
                     no power (or was not synthesized)
    sram_64bit_8kib  the ASAP7 bank srambank_256x4x64 (8 KiB, 64-bit word) read energy; the cost
                     model's sqrt(size) growth to 1 MiB banks stands for the wiring and muxes
                     (Horowitz, ISSCC 2014), the overhead this calibration keeps
    leakage          logic: every synthesized unit of the preset (composed arrays included);
                     SRAM: npu.synth.sram.sram_leakage_mw_per_mib (an estimate, stated there)
    dram             unchanged (the base table's cited figures)

The table is written with `scale_from_45nm: 1.0`: its `pj_at_45nm` keys (the schema's names)
then hold the 7 nm energies themselves.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

from npu.synth.die import logic_rows

LANE_SOURCES = {
    "vector_add": ("fp32_add",),
    "vector_mul": ("fp32_mul",),
    "vector_compare": ("fp32_add",),
    "vector_move": ("fp32_to_bf16",),
    "vector_special": ("fp32_exp", "fp32_recip", "fp32_rsqrt"),
    "scalar_fp": ("fp32_add",),
}
# The synthesized units whose leakage is the preset's logic leakage (each once; the arrays composed).
# (npu.synth.die.LOGIC_UNITS: the die's logic, each unit once)


def calibration_units() -> tuple[str, ...]:
    """The synthesized units the calibrated table is priced from (synth.units must hold them)."""
    return tuple(sorted({"matrix_pe", *(unit for units in LANE_SOURCES.values() for unit in units)}))


class CalibrationError(ValueError):
    """A unit the calibration needs has no row in the preset's synthesis table."""


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def operation_energy_pj(row: Mapping[str, Any]) -> tuple[float, str] | None:
    """(pJ per operation, which power it came from) of one synthesized unit at one cycle per op;
    None when the table has no power for it (e.g. OpenSTA could not compute it)."""
    period_ps = float(row["clock_period_ps"])
    measured = _number(row.get("power_activity_uw"))
    if measured is not None:
        return measured * period_ps * 1e-6, f"{row['unit']}: activity-based power ({row.get('activity_workload', '-')})"
    default = _number(row.get("power_default_activity_uw"))
    if default is None:
        return None
    return default * period_ps * 1e-6, f"{row['unit']}: default activity (every net 0.1/cycle; not measured)"


def calibrated_technology(base: Mapping[str, Any], rows: list[Mapping[str, Any]], sram_rows: list[Mapping[str, Any]],
                          sram_leakage_mw_per_mib: float, name: str, corner: str = "TT", mlen: int | None = None
                          ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(technology data, one provenance row per energy) from a preset's units.tsv rows at `corner`,
    its sram.tsv rows and the base technology data (the file the preset names); `mlen` (the
    preset's) shares an accumulator column's energy among the MACs of an array row."""
    units = {row["unit"]: row for row in rows if row["corner"] == corner}
    energy = base["energy"]
    scale = float(energy["scale_from_45nm"])
    before = {"mac": energy["pj_at_45nm"]["mac"] * scale, "instruction": energy["pj_at_45nm"]["instruction"] * scale,
              "sram_64bit_8kib": energy["pj_at_45nm"]["sram_64bit_8kib"] * scale,
              "dma_codec_element": energy["pj_at_45nm"]["dma_codec_element"] * scale,
              **{f"lane_ops.{key}": value * scale for key, value in energy["pj_at_45nm"]["lane_ops"].items()},
              "leakage_mw_logic": float(energy["leakage_mw_logic"]),
              "leakage_mw_per_mib_sram": float(energy["leakage_mw_per_mib_sram"])}
    after: dict[str, tuple[float, str]] = {}

    def need(unit: str) -> Mapping[str, Any]:
        if unit not in units:
            raise CalibrationError(f"calibration: no {corner} row for unit {unit!r} (synth.units must include it)")
        return units[unit]

    kept: dict[str, str] = {}
    for key, unit in (("mac", "matrix_pe"), ("instruction", "npu_core_control")):
        if unit == "npu_core_control" and unit not in units:
            kept[key] = "kept from the base table: npu_core_control not synthesized for this preset"
            continue
        energy_pj = operation_energy_pj(need(unit))
        if energy_pj is None:
            kept[key] = f"kept from the base table: {unit} has no power ({need(unit)['power_default_activity_uw']})"
        else:
            after[key] = energy_pj
    if "mac" in after and mlen and "matrix_accumulator" in units:
        accumulator = operation_energy_pj(units["matrix_accumulator"])
        pe_pj, pe_source = after["mac"]
        after["mac"] = ((pe_pj, f"{pe_source} (matrix_accumulator: no power)") if accumulator is None
                        else (pe_pj + accumulator[0] / mlen, f"{pe_source} + 1/{mlen} of {accumulator[1]}"))
    if "dma_codec_control" in units:
        from npu.synth.units import CODEC_PART_BLOCK

        codec = operation_energy_pj(units["dma_codec_control"])
        if codec is None:
            kept["dma_codec_element"] = "kept from the base table: dma_codec_control has no power"
        else:
            after["dma_codec_element"] = (codec[0] / CODEC_PART_BLOCK,
                                          f"1/{CODEC_PART_BLOCK} of {codec[1]} (the codec's conversion logic, "
                                          f"{CODEC_PART_BLOCK} elements per cycle)")
    else:
        kept["dma_codec_element"] = "kept from the base table: dma_codec_control not synthesized"
    for lane_op, sources in LANE_SOURCES.items():
        values = [operation_energy_pj(need(unit)) for unit in sources]
        if any(value is None for value in values):
            kept[f"lane_ops.{lane_op}"] = f"kept from the base table: no power for one of {', '.join(sources)}"
            continue
        after[f"lane_ops.{lane_op}"] = (sum(value for value, _ in values) / len(values),
                                        "mean of " + "; ".join(text for _, text in values) if len(values) > 1
                                        else values[0][1])
    if not sram_rows:
        raise CalibrationError("calibration: no SRAM rows (sram.tsv)")
    read_per_byte = float(sram_rows[0]["read_pj_per_byte"])
    after["sram_64bit_8kib"] = (read_per_byte * 8, f"ASAP7 {sram_rows[0]['bank']} read, 64 bit; "
                                                   "sqrt(size) growth to 1 MiB banks kept for wiring")
    logic = logic_rows(list(rows), corner)
    after["leakage_mw_logic"] = (sum(float(row["leakage_uw"]) for row in logic.values()) / 1000,
                                 f"sum of {', '.join(row['unit'] for row in logic.values())} leakage at {corner}")
    after["leakage_mw_per_mib_sram"] = (sram_leakage_mw_per_mib, "npu.synth.sram.sram_leakage_mw_per_mib (estimate)")

    data = copy.deepcopy(dict(base))
    data["name"] = name
    data["description"] = (f"{base.get('name', '')} latencies; energies calibrated from the ASAP7 synthesis of the "
                           f"RTL (npu.synth.calibrate, {corner})")
    table = data["energy"]
    table["scale_from_45nm"] = 1.0
    pj = table["pj_at_45nm"]
    # Every energy at 7 nm first (the kept ones too: the table's scale becomes 1.0).
    pj.update({key: value * scale for key, value in pj.items() if key != "lane_ops"})
    pj["lane_ops"] = {key: value * scale for key, value in pj["lane_ops"].items()}
    for key, (value, _) in after.items():
        if key.startswith("lane_ops."):
            pj["lane_ops"][key.split(".", 1)[1]] = value
        elif key.startswith("leakage"):
            table[key] = value
        else:
            pj[key] = value
    provenance = [{"energy": key, "unit": "mW" if key.startswith("leakage") else "pJ", "before": before[key],
                   "after": after[key][0] if key in after else before[key],
                   "ratio": (after[key][0] / before[key]) if key in after and before[key] else 1.0,
                   "source": after[key][1] if key in after else kept.get(key, "kept from the base table (not synthesized alone)")}
                  for key in before]
    return data, provenance
