"""Energy per generated token split by hardware unit, before and after the calibration.

The analytical model prices each operator region's action counts with a technology table
(npu.sim.cost.energy.energy_report) in categories - matrix, vector, scalar, front end, the four
SRAMs, DRAM, leakage - and sums them into one energy per step. `GroupedStepModel` is that model
keeping each step's categories too, and `unit_breakdown` adds them up over a generation's
steps (the same schedule as npu.sim.analytical.generation.generation_report) and maps them to
the units of the die:

    MAC array      matrix (MACs)
    vector lanes   vector (lane operations)
    SRAMs          vector_sram, matrix_sram, fp_sram, int_sram (bytes read and written)
    DMA / codec    dma codec (every element a DMA converts, KV scaling; npu.sim.cost.latency
                   .dma_codec_actions), the transfers' bytes are the DRAM and SRAM rows
    DRAM           dram (bytes moved)
    control        front end (instructions) + scalar (scalar INT / FP operations)
    leakage        every unit's and SRAM's leakage over the generation's cycles

The units' energies add up to the generation's energy per token (tests/test_synth_ppa.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from npu.models.transformer import ModelConfig
from npu.sim.analytical.costs import OperatorCost, StepCost
from npu.sim.analytical.generation import GenerationSetup, step_schedule
from npu.sim.analytical.npu_ops import NpuStepModel
from npu.sim.analytical.operators import StepShape
from npu.sim.cost.energy import energy_report

UNITS: dict[str, tuple[str, ...]] = {
    "MAC array": ("matrix",),
    "vector lanes": ("vector",),
    "SRAMs": ("vector_sram", "matrix_sram", "fp_sram", "int_sram"),
    "DMA / codec": ("dma codec",),
    "DRAM": ("dram",),
    "control": ("front end", "scalar"),
    "leakage": ("leakage",),
}


@dataclass(frozen=True)
class GroupedStepModel(NpuStepModel):
    """NpuStepModel that also keeps each step's energy per cost-model category (pJ)."""

    categories: dict = field(default_factory=dict, compare=False, repr=False)  # (model, shape) -> {category: pJ}

    def _region_cost(self, totals, name: str, kind: str) -> OperatorCost:
        cost = super()._region_cost(totals, name, kind)
        actions = {key: value for key, value in totals.by_label_actions[name].items() if value}
        report = energy_report(actions, self.config, round(totals.by_label[name]), self.energy)
        pending = self.categories.setdefault(None, {})
        for category, picojoules in report.picojoules.items():
            pending[category] = pending.get(category, 0.0) + picojoules
        return cost

    def step(self, model: ModelConfig, shape: StepShape) -> StepCost:
        self.categories[None] = {}
        cost = super().step(model, shape)
        self.categories[(model.name, shape)] = self.categories.pop(None)
        return cost


def shared_lowering(lower):
    """`lower` (npu.runtime.lowering.step_program) compiling each step once for machines that
    differ only in their energies (the preset's table and the calibrated one): the program
    depends on the machine's name, latencies and the step, not on what an action costs."""
    programs: dict = {}

    def lowered(config, model: ModelConfig, shape: StepShape):
        key = (config.name, config.technology.latency, model.name, shape)
        if key not in programs:
            programs[key] = lower(config, model, shape)
        return programs[key]

    return lowered


def unit_breakdown(machine: GroupedStepModel, model: ModelConfig, setup: GenerationSetup) -> dict[str, float]:
    """mJ per generated token of each unit (UNITS) over the generation `setup`; the machine must
    have costed its steps (npu.runtime.lowering.generation_row with it, status ok)."""
    categories: dict[str, float] = {}
    for shape, count in step_schedule(setup):
        key = (model.name, shape)
        if key not in machine.categories:
            raise KeyError(f"energy breakdown: step {shape} of {model.name} was not costed on {machine.name}")
        for category, picojoules in machine.categories[key].items():
            categories[category] = categories.get(category, 0.0) + count * picojoules
    known = {category for names in UNITS.values() for category in names}
    unknown = sorted(set(categories) - known)
    if unknown:
        raise ValueError(f"energy breakdown: cost-model categories {', '.join(unknown)} belong to no unit")
    per_token = 1e-9 / setup.decode.gen_length  # pJ -> mJ per generated token
    return {unit: sum(categories.get(name, 0.0) for name in names) * per_token for unit, names in UNITS.items()}


def breakdown_rows(npu: str, model: str, cache: str, rule: str, before: dict[str, float],
                   after: dict[str, float]) -> list[dict[str, Any]]:
    """One row per unit: mJ per token before and after, the ratio and the unit's share after."""
    total_after = sum(after.values())
    rows = []
    for unit in UNITS:
        rows.append({"npu": npu, "model": model, "cache": cache, "rule": rule, "unit": unit,
                     "mj_per_token_before": before[unit], "mj_per_token_after": after[unit],
                     "ratio_after_over_before": after[unit] / before[unit] if before[unit] else float("nan"),
                     "share_after": after[unit] / total_after if total_after else float("nan"),
                     "note": "-"})
    return rows
