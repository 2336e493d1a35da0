"""Modelled die area per preset from the synthesis tables, set beside NVIDIA's GA102.

    logic   the composed systolic array and its accumulator columns, the vector lanes (VLEN x one
            lane) and reduction trees, the core (without its memories) and the DMA codec (flat
            where synthesized so, else composed), as synthesized (cell area, no placement
            utilisation)
    SRAM    the preset's four memories tiled from the ASAP7 banks (npu.synth.sram, banks only)
    uncore  an allowance for what is not synthesized - HBM PHY, interconnect, clocking, pads,
            placement utilisation: UNCORE_FRACTION of logic + SRAM, an assumption (no synthesized
            or published figure of this design is used), stated in every row

GA102 (RTX A6000 / RTX 3090): 628.4 mm^2 in Samsung 8 nm, 28.3 billion transistors (NVIDIA,
"NVIDIA Ampere GA102 GPU Architecture" whitepaper, 2020). The comparison is of areas in two
different nodes (ASAP7 is a predictive 7 nm PDK): a modelled figure, not a die measurement.
"""

from __future__ import annotations

from typing import Any

GA102_AREA_MM2 = 628.4
GA102_SOURCE = "NVIDIA Ampere GA102 GPU Architecture whitepaper (2020): 628.4 mm^2, Samsung 8 nm"
UNCORE_FRACTION = 0.3
LOGIC_UNITS = ("systolic_array", "matrix_accumulators", "vector_lanes", "vector_sum_tree", "vector_max_tree",
               "vector_argmax_tree", "npu_core", "dma_codec")
# A unit with two rows: the flat synthesis where it exists (the opt-in dma_codec), else the composed one.
ALTERNATIVES = {"dma_codec": "dma_codec_composed"}


def logic_rows(unit_rows: list[dict[str, Any]], corner: str = "TT") -> dict[str, dict[str, Any]]:
    """LOGIC_UNITS name -> its row at `corner` (each unit once, ALTERNATIVES filling in)."""
    units = {row["unit"]: row for row in unit_rows if row["corner"] == corner}
    chosen = {}
    for unit in LOGIC_UNITS:
        row = units.get(unit) or units.get(ALTERNATIVES.get(unit, ""))
        if row is not None:
            chosen[unit] = row
    return chosen


def die_area_row(npu: str, unit_rows: list[dict[str, Any]], sram_rows: list[dict[str, Any]], corner: str = "TT",
                 uncore_fraction: float = UNCORE_FRACTION) -> dict[str, Any]:
    """One preset's modelled area (mm^2): logic by unit, SRAM, the uncore allowance, the total
    and its ratio to GA102; units missing from the table are named in `missing`."""
    units = logic_rows(unit_rows, corner)
    if not sram_rows:
        raise ValueError(f"die area of {npu}: no SRAM rows")
    logic = {unit: float(units[unit]["cell_area_um2"]) * 1e-6 for unit in LOGIC_UNITS if unit in units}
    sram = sum(float(row["area_mm2"]) for row in sram_rows)
    logic_total = sum(logic.values())
    uncore = uncore_fraction * (logic_total + sram)
    total = logic_total + sram + uncore
    return {"npu": npu, **{f"{unit}_mm2": area for unit, area in logic.items()}, "logic_mm2": logic_total,
            "sram_mm2": sram, "uncore_mm2": uncore, "total_mm2": total,
            "ga102_mm2": GA102_AREA_MM2, "area_ratio_ga102_over_npu": GA102_AREA_MM2 / total,
            "missing": ", ".join(unit for unit in LOGIC_UNITS if unit not in units) or "-",
            "uncore": f"allowance {uncore_fraction:.0%} of logic + SRAM (assumption: PHY, interconnect, clocking, "
                      f"pads, utilisation)", "ga102_source": GA102_SOURCE}
