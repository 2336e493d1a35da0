"""Area and leakage of a design point from the synthesized per-unit tables (docs/dse.md).

The synthesis stage (npu.synth, docs/synthesis.md) measures each RTL unit on ASAP7 at 7 nm:
`results/synth/<npu>/units.tsv` (cell area, leakage per unit and corner) and `sram.tsv` (each
SRAM tiled from the ASAP7 SRAM bank macros). A design point has the same units in other
numbers, so its area is

    area = MLEN^2 x PE + VLEN x lane + accumulator flops + DMA codec + SRAM bits x density

- a matrix PE is the synthesized `matrix_pe` when that unit is in the table, else an fp32
  multiplier plus an fp32 adder (the PE multiplies bf16 operands into an fp32 accumulation,
  so this is an upper bound);
- a vector lane is `vector_lane` when synthesized, else fp32 add + multiply + exp + reciprocal
  + rsqrt (the special-function units the presets give every lane, config/npu/dnpu-cloud.yaml);
- the accumulators are `accumulators x BLEN x MLEN` fp32 registers of the Liberty file's
  DFFHQNx1 flop (0.29 um^2 in ASAP7 RVT);
- the DMA codec once, when synthesized: `dma_codec` flat, else the `dma_codec_composed` row;
- each SRAM: its bits x ports at the density (um^2 per bit and port) of the same memory of the
  base preset in sram.tsv (the banks alone: no wiring or periphery, a lower bound).

Not counted anywhere: the front end, register files, scalar units, DMA engine control, the
interconnect and the DRAM PHY; the area is the datapath's and the SRAM's, not a die size.
Leakage: the units' (TT) times their counts; the SRAM Liberty gives no leakage.
The compound units' areas are upper bounds (hierarchical synthesis, docs/synthesis.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from npu.hw.config import NPUConfig
from npu.io import read_tsv

PE_RECIPES = (("matrix_pe",), ("fp32_mul", "fp32_add"))
LANE_RECIPES = (("vector_lane",), ("fp32_add", "fp32_mul", "fp32_exp", "fp32_recip", "fp32_rsqrt"))
DMA_RECIPES = (("dma_codec",), ("dma_codec_composed",))  # flat (opt-in), else composed (npu.synth.compose)
FLOP_CELL = "DFFHQNx1_ASAP7_75t_R"
MEMORIES = ("vector_sram", "matrix_sram", "fp_sram", "int_sram")
ACCUMULATOR_BITS = 32


@dataclass(frozen=True)
class UnitFigures:
    """One synthesized unit: cell area and leakage (TT corner when there)."""

    area_um2: float
    leakage_uw: float


@dataclass(frozen=True)
class UnitLibrary:
    """What the synthesis tables give the area model (empty when synthesis did not run)."""

    units: dict[str, UnitFigures] = field(default_factory=dict)
    sram_um2_per_bit: dict[str, float] = field(default_factory=dict)   # memory -> um^2 per bit and port
    flop_um2: float | None = None
    source: str = "no synthesis tables"

    @classmethod
    def from_tables(cls, units_tsv: str | Path | None, sram_tsv: str | Path | None,
                    liberty: str | Path | None = None) -> "UnitLibrary":
        """Read units.tsv (TT rows preferred), sram.tsv and the flop's area from a Liberty file."""
        units: dict[str, UnitFigures] = {}
        if units_tsv is not None:
            for row in sorted(read_tsv(units_tsv), key=lambda r: r.get("corner") != "TT"):
                units.setdefault(row["unit"], UnitFigures(float(row["cell_area_um2"]), float(row["leakage_uw"])))
        density = {}
        if sram_tsv is not None:
            for row in read_tsv(sram_tsv):
                bits = int(row["size_bytes"]) * 8 * int(row["ports"])
                density[row["memory"]] = float(row["area_um2"]) / bits
        flop = None
        if liberty is not None:
            from npu.synth.netlist import library

            cell = library(liberty).get(FLOP_CELL)
            flop = None if cell is None else cell.area_um2
        sources = [str(path) for path in (units_tsv, sram_tsv, liberty) if path is not None]
        return cls(units, density, flop, ", ".join(sources) or "no synthesis tables")

    def recipe(self, recipes: tuple[tuple[str, ...], ...]) -> tuple[str, ...] | None:
        """The first recipe whose units were all synthesized."""
        return next((recipe for recipe in recipes if all(name in self.units for name in recipe)), None)


def area_report(config: NPUConfig, library: UnitLibrary) -> dict:
    """Area columns of points.tsv (mm^2 per part and total) and `area_status`: "ok", or what is
    missing from the synthesis tables (then the total is NaN, the known parts are given)."""
    parts: dict[str, float] = {}
    leakage = 0.0
    missing = []
    for part, count, recipes in (("matrix", config.mlen ** 2, PE_RECIPES), ("vector", config.vlen, LANE_RECIPES)):
        recipe = library.recipe(recipes)
        if recipe is None:
            parts[part] = math.nan
            missing.append(f"{part}: none of {' / '.join('+'.join(r) for r in recipes)} synthesized")
            continue
        parts[part] = count * sum(library.units[name].area_um2 for name in recipe) * 1e-6
        leakage += count * sum(library.units[name].leakage_uw for name in recipe)
    dma = library.recipe(DMA_RECIPES)
    parts["dma_codec"] = 0.0 if dma is None else library.units[dma[0]].area_um2 * 1e-6
    flops = config.accumulators * config.blen * config.mlen * ACCUMULATOR_BITS
    if library.flop_um2 is None:
        parts["accumulators"] = math.nan
        missing.append(f"accumulators: no {FLOP_CELL} area (Liberty file)")
    else:
        parts["accumulators"] = flops * library.flop_um2 * 1e-6
    for memory in MEMORIES:
        density = library.sram_um2_per_bit.get(memory)
        spec = getattr(config, memory)
        if density is None:
            parts[memory] = math.nan
            missing.append(f"{memory}: not in sram.tsv")
        else:
            parts[memory] = spec.size_bytes * 8 * spec.ports * density * 1e-6
    total = sum(parts.values())
    row = {f"area_{part}_mm2": value for part, value in parts.items()}
    if not library.units and not library.sram_um2_per_bit and library.flop_um2 is None:
        missing = ["no synthesis tables (synth.enabled false, or the base preset not synthesized)"]
    logic_known = not math.isnan(parts["matrix"]) and not math.isnan(parts["vector"])
    row.update(area_mm2=total, logic_leakage_mw=leakage * 1e-3 if logic_known else math.nan,
               area_status="ok" if not missing else "; ".join(missing),
               area_dma_codec="synthesized" if dma else "not synthesized (0)")
    return row
