"""Technology numbers of a machine: the cycle count of every operation class and the energy of
every action, read from `config/tech/<name>.yaml` (schema: npu/schemas/technology.schema.yaml).

An NPU preset names its technology (`technology:`, default `DEFAULT_TECHNOLOGY`); loading the
preset loads the file once and the `NPUConfig` carries the result, so the cost model
(npu.sim.cost) takes its numbers from the machine it times. Every number and its source is in
the YAML file; docs/timing.md tabulates them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from npu.config import ConfigError, load_validated_yaml, preset_path

DEFAULT_TECHNOLOGY = "asap7-7nm"
SRAM_BANK_CAP_BYTES = 1 << 20  # big SRAMs are banked; an access costs at most a 1 MiB bank's energy


@dataclass(frozen=True)
class LatencyParameters:
    """Cycle counts the timing model (npu.sim.cost.latency) is built from; the technology file
    says where each comes from."""

    dispatch: int                # front end: instructions decoded and dispatched per cycle
    taken_branch_penalty: int    # fetch bubble after a taken branch
    scalar_alu: int
    scalar_load: int
    scalar_store: int
    fp_add: int
    fp_mul: int
    fp_compare: int
    fp_move: int
    fp_exp: int
    fp_recip: int
    vector_add: int
    vector_mul: int
    vector_compare: int
    vector_move: int
    vector_exp: int
    vector_recip: int
    vector_max_reduce: int
    vector_sum_extra: int        # a sum reduction takes log2(VLEN) tree levels + this
    vector_rank: int
    vector_transfer: int
    matrix_issue: int            # tile-op pipeline stages before / after its BLEN streaming cycles
    matrix_tail: int
    matrix_writeback_extra: int
    dma_setup: int


@dataclass(frozen=True)
class EnergyTable:
    """Energies in pJ at the technology's node, per action (see npu.sim.cost.energy)."""

    mac: float                           # one multiply-accumulate of the matrix unit
    lane_ops: Mapping[str, float]        # per lane operation, by energy class
    instruction: float                   # fetch + decode + dispatch per instruction
    sram_64bit_8kib: float               # 64-bit access of an 8 KiB SRAM; grows with sqrt(size)
    dram_pj_per_bit: Mapping[str, float]  # by DRAM kind
    leakage_mw_per_mib_sram: float
    leakage_mw_logic: float
    dma_codec_element: float = 0.0       # one element through the DMA's format codec (conversion logic)

    def dma_codec_pj(self, action: str) -> float:
        """Energy of one DMA codec action (npu.sim.cost.latency.dma_codec_actions): an element
        converted; a KV element's multiply and reciprocal, the same fp32 units as a vector lane's
        (npu/rtl/dma_codec.v instantiates fp32_mul and fp32_recip)."""
        if action == "dma_codec_element":
            return self.dma_codec_element
        if action == "dma_kv_multiply":
            return self.lane_ops["vector_mul"]
        if action == "dma_kv_reciprocal":
            return self.lane_ops["vector_special"]
        raise ValueError(f"no energy for DMA codec action {action!r}")

    def sram_pj_per_byte(self, size_bytes: int) -> float:
        """Access energy per byte of an SRAM of `size_bytes` (Horowitz: 10/20/100 pJ per 64 bit
        at 8 KB/32 KB/1 MB, i.e. about sqrt(size); banks capped at 1 MiB)."""
        bank = min(size_bytes, SRAM_BANK_CAP_BYTES)
        return self.sram_64bit_8kib * math.sqrt(bank / 8192) / 8

    def leakage_pj_per_cycle(self, sram_bytes: int, clock_ghz: float) -> float:
        """Static power x clock period (1 mW at 1 GHz is 1 pJ per cycle) of a machine with
        `sram_bytes` of SRAM (NPUConfig.total_sram_bytes) clocked at `clock_ghz`."""
        milliwatts = self.leakage_mw_logic + self.leakage_mw_per_mib_sram * sram_bytes / 2**20
        return milliwatts / clock_ghz


@dataclass(frozen=True)
class Technology:
    """One technology file: its name, cycle counts and energies."""

    name: str
    latency: LatencyParameters
    energy: EnergyTable
    description: str = ""
    source: str = field(default="", compare=False, repr=False)


def technology_from_dict(data: Mapping, source: str = "<dict>") -> Technology:
    """A Technology from a validated technology mapping: 45 nm energies x `scale_from_45nm`."""
    energy = data["energy"]
    scale, at_45nm = energy["scale_from_45nm"], energy["pj_at_45nm"]
    table = EnergyTable(
        mac=at_45nm["mac"] * scale,
        lane_ops={name: pj * scale for name, pj in at_45nm["lane_ops"].items()},
        instruction=at_45nm["instruction"] * scale,
        sram_64bit_8kib=at_45nm["sram_64bit_8kib"] * scale,
        dma_codec_element=at_45nm["dma_codec_element"] * scale,
        dram_pj_per_bit={kind: float(pj) for kind, pj in energy["dram_pj_per_bit"].items()},
        leakage_mw_per_mib_sram=float(energy["leakage_mw_per_mib_sram"]),
        leakage_mw_logic=float(energy["leakage_mw_logic"]))
    return Technology(data["name"], LatencyParameters(**data["latency"]), table,
                      data.get("description", ""), source)


def load_technology(name_or_path: str | Path = DEFAULT_TECHNOLOGY,
                    config_dir: str | Path | None = None) -> Technology:
    """Load `<config_dir>/tech/<name>.yaml` (or a YAML file by path), validated by its schema."""
    path = preset_path("tech", name_or_path, config_dir)
    data = load_validated_yaml(path, "technology")
    if path.stem != data["name"]:
        raise ConfigError(f"{path}: key 'name': {data['name']!r} differs from the file name {path.stem!r}")
    return technology_from_dict(data, str(path))


def read_technology_table(path: str | Path) -> Technology:
    """A technology table a stage wrote (results/synth/<npu>/tech.yaml: the preset's latencies,
    energies calibrated from its synthesis, npu.synth.calibrate), checked by the same schema as
    config/tech/*.yaml. Unlike a preset's file its `name` is its own, not the file's stem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such technology table")
    return technology_from_dict(load_validated_yaml(path, "technology"), str(path))
