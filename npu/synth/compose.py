"""Units too large to synthesize flat here, composed from synthesized parts.

A 128 x 128 systolic array is 16,384 processing elements (about 40 million cells): Yosys and
OpenSTA cannot take it flat on this machine. Its PE is synthesized instead (and PE row 0, which
has no adder), and the array is composed:

    area, cells, leakage, power  = sum over parts of count x part
    fmax                         = the slowest part's (every PE registers its outputs, so the
                                   array's register-to-register paths are the PE's own, with
                                   the wrapper's flops standing in for the neighbours'); for a
                                   combinational tree (the vector unit's reductions) the part's
                                   path times the levels in series, log2(N) (`Composition.chain`)

What this leaves out is whatever lies between the parts (the systolic array's input-skew
registers and weight-load multiplexers, wires). `composition_check` measures it: the same
formula at 4 x 4 and 8 x 8 against a flat synthesis of systolic_array at that size, and reports
the error per figure; likewise the 2x2 matrix unit (PEs + accumulator columns), the reduction
trees at N = 4 (three nodes) and the DMA codec's conversion logic at twice its part's block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from npu.synth.units import CODEC_DATAPATH_UNITS, CODEC_PART_BLOCK, CORE_DATAPATH_UNITS

SUMMED = ("cell_area_um2", "sequential_area_um2", "cells", "sequential_cells", "leakage_uw",
          "power_default_activity_uw")


class CompositionError(ValueError):
    """A composition names a part that has no synthesized row (at some corner)."""


@dataclass(frozen=True)
class Composition:
    name: str
    description: str
    size: Callable[[Any], int]                 # NPU preset -> the size (MLEN, VLEN)
    parts: Callable[[int], dict[str, int]]     # size -> {synthesized unit: count}
    flat_checks: dict[int, str]                # size -> the flat synthesis unit it is checked against
    # Parts in series on the longest register-to-register path, from the parts' counts: 1 where
    # every part registers its outputs (the array), log2(N) for a combinational tree of N - 1 nodes.
    chain: Callable[[dict[str, int]], int] = lambda parts: 1
    preset: bool = True                        # a row of every preset's units.tsv (False: a check only)


def _tree_levels(parts: dict[str, int]) -> int:
    """Levels of a pairwise tree with `nodes` = N - 1 nodes (N a power of two): log2(N)."""
    nodes = max(parts.values())
    return max(1, (nodes + 1).bit_length() - 1)


COMPOSITIONS: dict[str, Composition] = {
    "systolic_array": Composition(
        "systolic_array", "MLEN x MLEN matrix PEs: MLEN of row 0 (no adder) + MLEN (MLEN - 1) with the adder",
        size=lambda config: config.mlen,
        parts=lambda mlen: {"matrix_pe_row0": mlen, "matrix_pe": mlen * (mlen - 1)},
        flat_checks={4: "systolic_array_4x4", 8: "systolic_array_8x8"}),
    "vector_lanes": Composition(
        "vector_lanes", "VLEN vector lanes (the unit's reduction trees, vrank network and decode not included)",
        size=lambda config: config.vlen,
        parts=lambda vlen: {"vector_lane": vlen},
        flat_checks={}),
    # The core: its control and scalar logic synthesized per preset, the scalar FPU's arithmetic
    # units (one instance each, black boxes in npu_core_control) from their own jobs. Its only
    # size is 1 (the memories, the part that scales, are SRAM macros); checked against the flat
    # core when synth.units names npu_core_flat.
    "npu_core": Composition(
        "npu_core", "npu_core_control + one each of the scalar FPU's fp32_add, fp32_mul, fp32_exp, fp32_recip, "
                    "fp32_rsqrt (memories: SRAM macros, not included)",
        size=lambda config: 1,
        parts=lambda size: {"npu_core_control": 1, **{unit: 1 for unit in CORE_DATAPATH_UNITS}},
        flat_checks={1: "npu_core_flat"}),
    # The matrix unit's accumulator bank: one column (ACCUMULATORS x BLEN fp32 rows, the fp32_add,
    # the mwb rounding) per array column.
    "matrix_accumulators": Composition(
        "matrix_accumulators", "MLEN accumulator columns (ACCUMULATORS x BLEN fp32 rows, fp32_add, mwb rounding)",
        size=lambda config: config.mlen,
        parts=lambda mlen: {"matrix_accumulator": mlen},
        flat_checks={}),
    # The check of both matrix compositions together: the 2x2 matrix unit flat against its PEs and
    # accumulator columns (what neither composes: the issue register, the control stages beside
    # the array, the hazard checks and the write-back sequencer).
    "matrix_unit": Composition(
        "matrix_unit", "MLEN x MLEN PEs + MLEN accumulator columns (the 2x2 check; control not included)",
        size=lambda config: 2,
        parts=lambda mlen: {"matrix_pe_row0": mlen, "matrix_pe": mlen * (mlen - 1), "matrix_accumulator_4": mlen},
        flat_checks={2: "matrix_unit_2x2"}, preset=False),
    # The vector unit's reduction trees: VLEN - 1 nodes each, log2(VLEN) in series (combinational).
    "vector_sum_tree": Composition(
        "vector_sum_tree", "vsum: VLEN - 1 fp32_add in a pairwise tree (log2(VLEN) in series)",
        size=lambda config: config.vlen,
        parts=lambda vlen: {"fp32_add": vlen - 1},
        flat_checks={4: "vector_sum_tree_4"}, chain=_tree_levels),
    "vector_max_tree": Composition(
        "vector_max_tree", "vmaxr: VLEN - 1 compare-and-select nodes (log2(VLEN) in series)",
        size=lambda config: config.vlen,
        parts=lambda vlen: {"vector_max_tree_2": vlen - 1},
        flat_checks={4: "vector_max_tree_4"}, chain=_tree_levels),
    "vector_argmax_tree": Composition(
        "vector_argmax_tree", "vargmax: VLEN - 1 compare-and-select nodes with the lane number (log2(VLEN) in "
                              "series; the node's lane mux is 1 bit wide, log2(VLEN) in the tree)",
        size=lambda config: config.vlen,
        parts=lambda vlen: {"vector_argmax_tree_2": vlen - 1},
        flat_checks={4: "vector_argmax_tree_4"}, chain=_tree_levels),
    # The DMA codec at mx_block: its conversion logic in parts of CODEC_PART_BLOCK elements and the
    # kv smoothing's reciprocal and multiplier per element (fmax: the slowest part's, fp32_recip's).
    "dma_codec_composed": Composition(
        "dma_codec_composed", f"mx_block / {CODEC_PART_BLOCK} x the codec's conversion logic at {CODEC_PART_BLOCK} "
                              "elements + mx_block x (fp32_recip + fp32_mul)",
        size=lambda config: config.mx_block,
        parts=lambda block: {"dma_codec_control": max(1, block // CODEC_PART_BLOCK),
                             **{unit: block for unit in CODEC_DATAPATH_UNITS}},
        flat_checks={}),
    # The block scaling of the conversion logic: 2 x the 4-element part against the 8-element one.
    "dma_codec_control_scaled": Composition(
        "dma_codec_control_scaled", f"2 x the codec's conversion logic at {CODEC_PART_BLOCK} elements vs "
                                    f"{2 * CODEC_PART_BLOCK} elements",
        size=lambda config: 2 * CODEC_PART_BLOCK,
        parts=lambda block: {"dma_codec_control": block // CODEC_PART_BLOCK},
        flat_checks={2 * CODEC_PART_BLOCK: "dma_codec_control_8"}, preset=False),
    "anchor_int8_array_8x8": Composition(
        "anchor_int8_array_8x8", "64 INT8 weight-stationary PEs (the anchor, composed)",
        size=lambda config: 8,
        parts=lambda size: {"anchor_int8_pe": size * size},
        flat_checks={8: "anchor_int8_array"}),
}


def preset_compositions(config: Any, units: list[str]) -> dict[str, dict[str, int]]:
    """Composition name -> {part: count} for a preset, for the compositions whose parts are all
    among the synthesized `units` (the anchor is preset-independent and left to its own table)."""
    result = {}
    for name, composition in COMPOSITIONS.items():
        if name.startswith("anchor") or not composition.preset:
            continue
        parts = composition.parts(composition.size(config))
        if all(part in units for part in parts):
            result[name] = parts
    return result


def checkable(units: list[str]) -> list[str]:
    """The compositions a run with these synthesized `units` can check against a flat synthesis
    (some size has its flat unit and every part): results/synth/composition.tsv is made for them."""
    return [name for name, composition in COMPOSITIONS.items()
            if any(flat in units and all(part in units for part in composition.parts(size))
                   for size, flat in composition.flat_checks.items())]


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def compose_row(name: str, parts: dict[str, int], rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One composed row from one row per part (same corner)."""
    missing = sorted(set(parts) - set(rows))
    if missing:
        raise CompositionError(f"composition {name}: no synthesized row for {', '.join(missing)}")
    if not parts or any(count < 0 for count in parts.values()):
        raise CompositionError(f"composition {name}: counts must be >= 0 and not all absent: {parts}")
    used = {part: rows[part] for part, count in parts.items() if count > 0}
    slowest = min(used, key=lambda part: float(used[part]["fmax_ghz"]))
    row: dict[str, Any] = {"unit": name, "corner": rows[slowest]["corner"], "job": "composed",
                           "parameters": " + ".join(f"{count} x {part}" for part, count in parts.items()),
                           "clock_period_ps": rows[slowest]["clock_period_ps"]}
    for key in SUMMED:
        values = {part: _number(rows[part][key]) for part in used}
        if any(value is None for value in values.values()):
            # A part without the figure (OpenSTA gave no power for it): the sum is not computed.
            row[key] = "not computed (no " + key + " for " + ", ".join(p for p, v in values.items() if v is None) + ")"
            continue
        total = sum(parts[part] * value for part, value in values.items())
        row[key] = int(round(total)) if key.endswith("cells") else total
    chain = COMPOSITIONS[name].chain(parts) if name in COMPOSITIONS else 1
    if chain == 1:
        for key in ("worst_slack_ps", "critical_path_ps", "fmax_ghz", "logic_levels"):
            row[key] = rows[slowest][key]
    else:  # `chain` parts in series: each part's register-to-register path, end to end
        path_ps = chain * float(rows[slowest]["critical_path_ps"])
        row["critical_path_ps"] = path_ps
        row["worst_slack_ps"] = float(rows[slowest]["clock_period_ps"]) - path_ps
        row["fmax_ghz"] = 1000.0 / path_ps
        row["logic_levels"] = chain * int(float(rows[slowest]["logic_levels"]))
    row["path_start"] = f"{slowest}: {rows[slowest]['path_start']}"
    row["path_end"] = f"{slowest}: {rows[slowest]['path_end']}"
    row["default_activity"] = rows[slowest].get("default_activity", "-")
    measured = [_number(used[part].get("power_activity_uw")) for part in used]
    if all(value is not None for value in measured):
        row["power_activity_uw"] = sum(parts[part] * value for part, value in zip(used, measured))
        row["activity_workload"] = "; ".join(f"{part}: {used[part].get('activity_workload', '-')}" for part in used)
    else:
        row["power_activity_uw"] = "not measured (a part has no measured activity)"
        row["activity_workload"] = "-"
    row["gate_level_check"] = "-"
    row["synth_seconds"] = sum(float(used[part]["synth_seconds"]) for part in used)
    row["sta_seconds"] = sum(float(used[part]["sta_seconds"]) for part in used)
    for key in ("yosys", "openroad"):
        row[key] = rows[slowest].get(key, "-")
    return row


def compose_rows(rows: list[dict[str, Any]], compositions: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """Composed rows, one per composition and corner, from the synthesized rows of its parts."""
    by_corner: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        by_corner.setdefault(row["corner"], {})[row["unit"]] = row
    return [compose_row(name, parts, units) for corner, units in by_corner.items()
            for name, parts in compositions.items()]


COMPARED = ("cell_area_um2", "cells", "sequential_area_um2", "leakage_uw", "power_default_activity_uw", "fmax_ghz")


def _error_percent(composed: float, flat: float) -> float:
    """(composed - flat) / flat in %; 0 where both are 0 (a combinational unit's sequential
    area), infinite where only the flat one is."""
    if flat == 0:
        return 0.0 if composed == 0 else float("inf")
    return 100.0 * (composed - flat) / flat


def composition_check(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every composition with a flat synthesis at some size: one row per (composition, size,
    corner, figure) with the flat value, the composed one and the relative error in %."""
    by_corner: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        by_corner.setdefault(row["corner"], {})[row["unit"]] = row
    checks = []
    for corner, units in by_corner.items():
        for name, composition in COMPOSITIONS.items():
            for size, flat_unit in composition.flat_checks.items():
                parts = composition.parts(size)
                if flat_unit not in units or not all(part in units for part in parts):
                    continue
                composed = compose_row(name, parts, units)
                flat = units[flat_unit]
                for key in COMPARED:
                    flat_value, composed_value = _number(flat[key]), _number(composed[key])
                    if flat_value is None or composed_value is None:
                        continue  # e.g. no power where OpenSTA crashed: the other figures are still checked
                    checks.append({"composition": name, "size": size, "corner": corner, "figure": key,
                                   "flat": flat_value, "composed": composed_value,
                                   "error_percent": _error_percent(composed_value, flat_value),
                                   "flat_unit": flat_unit, "parts": composed["parameters"]})
    return checks
