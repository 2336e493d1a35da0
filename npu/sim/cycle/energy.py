"""Energy = action counts x per-action energies, with every energy in this one table.

Sources (all to be replaced by numbers from our own ASAP7 synthesis and an SRAM model):
- Logic and SRAM: M. Horowitz, "Computing's energy problem (and what we can do about it)",
  ISSCC 2014, 45 nm at 0.9 V: fp32 add 0.9 pJ, fp32 mult 3.7 pJ, fp16 mult 1.1 pJ, 32-bit int
  add 0.1 pJ, 64-bit SRAM read 10 pJ (8 KB), 20 pJ (32 KB), 100 pJ (1 MB), about 70 pJ of
  fetch/decode/register-file overhead per instruction of a simple core.
- 45 nm -> 7 nm: one factor, TECH_SCALE = 0.2, a rounded reading of the energy-per-operation
  fits of A. Stillmaker and B. Baas, "Scaling equations for the accurate prediction of CMOS
  device performance from 180 nm to 7 nm", Integration 58 (2017). An estimate, not a table value.
- DRAM (not scaled with logic): HBM2 3.9 pJ/bit (M. O'Connor et al., "Fine-grained DRAM",
  MICRO 2017), used for HBM3 as well; LPDDR5 5 pJ/bit and DDR5 10 pJ/bit are assumptions.
- Leakage: 0.5 mW per MiB of SRAM plus 20 mW of logic at 7 nm - assumptions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from npu.hw.config import NPUConfig

TECH_SCALE = 0.2  # 45 nm -> 7 nm energy per operation (Stillmaker & Baas 2017, rounded)
SRAM_BANK_CAP_BYTES = 1 << 20  # big SRAMs are banked; an access costs at most a 1 MiB bank's energy


@dataclass(frozen=True)
class EnergyTable:
    """Energies in pJ at 7 nm (see the module docstring for where each comes from)."""

    mac: float = (1.1 + 0.9) * TECH_SCALE          # bf16 multiply (fp16 mult) + fp32 accumulate
    lane_ops: Mapping[str, float] = field(default_factory=lambda: {
        "vector_add": 0.9 * TECH_SCALE,             # fp32 add per lane
        "vector_mul": 3.7 * TECH_SCALE,             # fp32 multiply per lane
        "vector_compare": 0.9 * TECH_SCALE,         # compare = subtract
        "vector_move": 0.1 * TECH_SCALE,            # mux / sign flip: like a 32-bit int add
        "vector_special": 4 * 3.7 * TECH_SCALE,     # exp / reciprocal / rsqrt: ~4 multiplies
        "vector_rank": 0.9 * TECH_SCALE,            # one comparator of the VLEN x VLEN ranking
        "scalar_int": 0.1 * TECH_SCALE,             # 32-bit int add
        "scalar_fp": 0.9 * TECH_SCALE,              # fp32 add
    })
    instruction: float = 70.0 * TECH_SCALE          # fetch + decode + dispatch per instruction
    sram_64bit_8kib: float = 10.0 * TECH_SCALE      # 64-bit access of an 8 KiB SRAM; grows with sqrt(size)
    dram_pj_per_bit: Mapping[str, float] = field(default_factory=lambda: {
        "hbm2": 3.9, "hbm3": 3.9, "lpddr5": 5.0, "ddr5": 10.0})
    leakage_mw_per_mib_sram: float = 0.5
    leakage_mw_logic: float = 20.0

    def sram_pj_per_byte(self, size_bytes: int) -> float:
        """Access energy per byte of an SRAM of `size_bytes` (Horowitz: 10/20/100 pJ per 64 bit
        at 8 KB/32 KB/1 MB, i.e. about sqrt(size); banks capped at 1 MiB)."""
        bank = min(size_bytes, SRAM_BANK_CAP_BYTES)
        return self.sram_64bit_8kib * math.sqrt(bank / 8192) / 8

    def leakage_pj_per_cycle(self, config: NPUConfig) -> float:
        """Static power x clock period (1 mW at 1 GHz is 1 pJ per cycle)."""
        milliwatts = self.leakage_mw_logic + self.leakage_mw_per_mib_sram * config.total_sram_bytes / 2**20
        return milliwatts / config.clock_ghz


DEFAULT_ENERGY = EnergyTable()


@dataclass(frozen=True)
class EnergyReport:
    """Per-action counts, energy per category, total (pJ)."""

    actions: dict[str, float]
    picojoules: dict[str, float]

    @property
    def total_pj(self) -> float:
        return sum(self.picojoules.values())


def energy_report(actions: Mapping[str, float], config: NPUConfig, cycles: int,
                  table: EnergyTable = DEFAULT_ENERGY) -> EnergyReport:
    """Turn action counts into energy.

    Action names: "mac", "instruction", a lane-op class of `table.lane_ops`,
    "<memory>_read_bytes" / "<memory>_write_bytes" for each SRAM and for "dram".
    """
    picojoules: dict[str, float] = {}
    for action, count in actions.items():
        if not count:
            continue
        if action == "mac":
            picojoules["matrix"] = picojoules.get("matrix", 0.0) + count * table.mac
        elif action == "instruction":
            picojoules["front end"] = count * table.instruction
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
    picojoules["leakage"] = cycles * table.leakage_pj_per_cycle(config)
    return EnergyReport(dict(actions), picojoules)
