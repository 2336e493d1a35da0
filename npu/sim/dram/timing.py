"""DRAM organisation and JEDEC timing parameters; presets for HBM2, HBM3, LPDDR5 and DDR5 are
data files, config/dram/<name>.yaml.

All timing values are integers in DRAM command-clock cycles (tCK). Each preset names the public
simulator configuration its numbers come from (Ramulator 2 / DRAMsim3, themselves derived from
the JEDEC standards JESD235 (HBM2), JESD238 (HBM3), JESD209-5 (LPDDR5) and JESD79-5 (DDR5)).
Where a preset deviates from its source the comment next to the value says why.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from npu.config import DEFAULT_CONFIG_DIR, ConfigError, load_validated_yaml, preset_path


def _is_power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


@dataclass(frozen=True)
class DramOrganization:
    """How one memory system is built: channels -> ranks -> bank groups -> banks -> rows.

    A *channel* is an independent command + data bus (for HBM: a pseudo-channel). A row of one
    bank holds `row_bytes` bytes across the whole channel width; one column access moves one
    burst of `bus_bits * burst_length / 8` bytes.
    """

    channels: int
    ranks: int
    bankgroups: int
    banks_per_group: int
    rows: int
    row_bytes: int
    bus_bits: int
    burst_length: int

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or not _is_power_of_two(value):
                raise ValueError(
                    f"DramOrganization.{field.name} must be a positive power of two, got {value!r}"
                )
        if self.row_bytes < self.burst_bytes:
            raise ValueError(
                f"row_bytes ({self.row_bytes}) is smaller than one burst ({self.burst_bytes} B)"
            )

    @property
    def burst_bytes(self) -> int:
        """Bytes moved by one RD or WR command."""
        return self.bus_bits * self.burst_length // 8

    @property
    def columns(self) -> int:
        """Bursts per row (the column address counts bursts, not bytes)."""
        return self.row_bytes // self.burst_bytes

    @property
    def banks_per_rank(self) -> int:
        return self.bankgroups * self.banks_per_group

    @property
    def banks_per_channel(self) -> int:
        return self.ranks * self.banks_per_rank

    @property
    def capacity_bytes(self) -> int:
        return self.channels * self.banks_per_channel * self.rows * self.row_bytes


@dataclass(frozen=True)
class DramTiming:
    """One DRAM device standard at one speed: organisation plus timing constraints in cycles.

    Names follow JEDEC. Rules that involve the data bus use burst positions: a RD issued at
    cycle t drives data on [t + tCL, t + tCL + tBL), a WR receives data on
    [t + tCWL, t + tCWL + tBL).
    """

    name: str
    source: str  # where the numbers come from
    org: DramOrganization
    tCK_ns: float  # command clock period
    tBL: int  # data-bus cycles of one burst
    tCL: int  # RD -> first read data (CAS latency)
    tCWL: int  # WR -> first write data
    tRCD: int  # ACT -> RD/WR, same bank
    tRP: int  # PRE -> ACT, same bank
    tRAS: int  # ACT -> PRE, same bank
    tRC: int  # ACT -> ACT, same bank
    tWR: int  # end of write data -> PRE, same bank (write recovery)
    tRTP: int  # RD -> PRE, same bank
    tCCD_S: int  # RD->RD or WR->WR, different bank group
    tCCD_L: int  # RD->RD, same bank group
    tCCD_L_WR: int  # WR->WR, same bank group
    tRRD_S: int  # ACT -> ACT, different bank group
    tRRD_L: int  # ACT -> ACT, same bank group
    tFAW: int  # window that may hold at most four ACTs per rank
    tWTR_S: int  # end of write data -> RD, different bank group
    tWTR_L: int  # end of write data -> RD, same bank group
    tRTW: int  # idle data-bus cycles between a read burst and a following write burst
    tRTRS: int  # idle data-bus cycles when consecutive bursts come from different ranks
    tRFC: int  # REF -> ACT or REF, same rank (all-bank refresh time)
    tREFI: int  # average interval between REF commands to a rank

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if field.type == "int":
                value = getattr(self, field.name)
                if not isinstance(value, int) or value < 0:
                    raise ValueError(f"{self.name}: {field.name} must be an int >= 0, got {value!r}")
        if not self.tCK_ns > 0:
            raise ValueError(f"{self.name}: tCK_ns must be > 0, got {self.tCK_ns!r}")
        if self.tBL < 1:
            raise ValueError(f"{self.name}: tBL must be >= 1, got {self.tBL}")
        if self.tCL < self.tCWL:
            raise ValueError(f"{self.name}: tCL ({self.tCL}) < tCWL ({self.tCWL}) is not supported")
        if self.tRFC >= self.tREFI:
            raise ValueError(f"{self.name}: tRFC ({self.tRFC}) must be < tREFI ({self.tREFI})")

    @property
    def peak_bandwidth_gbps(self) -> float:
        """Pin bandwidth: every channel's data bus busy every cycle, in GB/s (= bytes/ns)."""
        per_channel = self.org.burst_bytes / (self.tBL * self.tCK_ns)
        return self.org.channels * per_channel

    @property
    def refresh_limited_peak_gbps(self) -> float:
        """Peak bandwidth once all-bank refresh is paid: each rank is blocked tRFC per tREFI."""
        return self.peak_bandwidth_gbps * (1.0 - self.tRFC / self.tREFI)

    def with_channels(self, channels: int) -> DramTiming:
        """The same device with a different number of channels (e.g. 1 for a fast test)."""
        org = dataclasses.replace(self.org, channels=channels)
        return dataclasses.replace(self, org=org)

    def with_ranks(self, ranks: int) -> DramTiming:
        org = dataclasses.replace(self.org, ranks=ranks)
        return dataclasses.replace(self, org=org)


def dram_timing_from_dict(data: dict) -> DramTiming:
    """A DramTiming from a validated preset mapping (schema npu/schemas/dram.schema.yaml)."""
    values = dict(data)
    values["org"] = DramOrganization(**values["org"])
    values["tCK_ns"] = float(values["tCK_ns"])
    return DramTiming(**values)


def preset_names(config_dir: str | Path | None = None) -> list[str]:
    """The presets in <config_dir>/dram/ (default the repository's config/), e.g. HBM2, HBM3."""
    base = Path(config_dir) if config_dir is not None else DEFAULT_CONFIG_DIR
    return sorted(path.stem.upper() for path in (base / "dram").glob("*.yaml"))


def get_preset(name: str, config_dir: str | Path | None = None) -> DramTiming:
    """The preset called `name` (case-insensitive: HBM2, HBM3, LPDDR5, DDR5), read from
    <config_dir>/dram/<name>.yaml and validated by its schema."""
    known = preset_names(config_dir)
    if name.upper() not in known:
        raise ValueError(f"unknown DRAM preset {name!r}; choose one of {known}")
    path = preset_path("dram", name.lower(), config_dir)
    data = load_validated_yaml(path, "dram")
    if data["name"] != name.upper():
        raise ConfigError(f"{path}: key 'name': {data['name']!r} differs from the file name {path.stem!r}")
    try:
        return dram_timing_from_dict(data)
    except ValueError as err:
        raise ConfigError(f"{path}: {err}") from None


def dram_presets(config_dir: str | Path | None = None) -> dict[str, DramTiming]:
    """Every preset by name."""
    return {name: get_preset(name, config_dir) for name in preset_names(config_dir)}
