"""Energy = action counts x per-action energies.

The energies are an `EnergyTable` (npu.hw.technology), read from the machine's technology file
(config/tech/<name>.yaml), which gives every number with its source: logic and SRAM from
Horowitz (ISSCC 2014, 45 nm) scaled to 7 nm (Stillmaker & Baas, Integration 2017), DRAM per bit
from O'Connor et al. (MICRO 2017), leakage an assumption. `table=None` means the technology of
`config`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from npu.hw.config import NPUConfig
from npu.hw.technology import EnergyTable
from npu.sim.cost.latency import DMA_CODEC_ACTIONS


@dataclass(frozen=True)
class EnergyReport:
    """Per-action counts, energy per category, total (pJ)."""

    actions: dict[str, float]
    picojoules: dict[str, float]

    @property
    def total_pj(self) -> float:
        return sum(self.picojoules.values())


def energy_report(actions: Mapping[str, float], config: NPUConfig, cycles: int,
                  table: EnergyTable | None = None) -> EnergyReport:
    """Turn action counts into energy.

    Action names: "mac", "instruction", a lane-op class of `table.lane_ops`, the DMA codec's
    (npu.sim.cost.latency.DMA_CODEC_ACTIONS, category "dma codec"),
    "<memory>_read_bytes" / "<memory>_write_bytes" for each SRAM and for "dram".
    """
    table = table or config.technology.energy
    picojoules: dict[str, float] = {}
    for action, count in actions.items():
        if not count:
            continue
        if action == "mac":
            picojoules["matrix"] = picojoules.get("matrix", 0.0) + count * table.mac
        elif action == "instruction":
            picojoules["front end"] = count * table.instruction
        elif action in DMA_CODEC_ACTIONS:
            picojoules["dma codec"] = picojoules.get("dma codec", 0.0) + count * table.dma_codec_pj(action)
        elif action in table.lane_ops:
            group = "scalar" if action.startswith("scalar") else "vector"
            picojoules[group] = picojoules.get(group, 0.0) + count * table.lane_ops[action]
        elif action.startswith("dram_"):
            energy = count * 8 * table.dram_pj_per_bit[config.dram.kind]
            picojoules["dram"] = picojoules.get("dram", 0.0) + energy
        elif action.endswith(("_read_bytes", "_write_bytes")):
            memory = action.rsplit("_", 2)[0]
            energy = count * table.sram_pj_per_byte(getattr(config, memory).size_bytes)
            picojoules[memory] = picojoules.get(memory, 0.0) + energy
        else:
            raise ValueError(f"no energy for action {action!r}")
    picojoules["leakage"] = cycles * table.leakage_pj_per_cycle(config.total_sram_bytes, config.clock_ghz)
    return EnergyReport(dict(actions), picojoules)
