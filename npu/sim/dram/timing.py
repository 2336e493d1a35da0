"""DRAM organisation and JEDEC timing parameters, with presets for HBM2, HBM3, LPDDR5 and DDR5.

All timing values are integers in DRAM command-clock cycles (tCK). Each preset names the public
simulator configuration its numbers come from (Ramulator 2 / DRAMsim3, themselves derived from
the JEDEC standards JESD235 (HBM2), JESD238 (HBM3), JESD209-5 (LPDDR5) and JESD79-5 (DDR5)).
Where a preset deviates from its source the comment next to the value says why.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass


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


def _cycles(ns: float, tCK_ns: float) -> int:
    """Round a time in ns up to whole clock cycles (JEDEC rounding, with a small tolerance)."""
    return math.ceil(ns / tCK_ns - 1e-6)


def _hbm2() -> DramTiming:
    # DRAMsim3 configs/HBM2_8Gb_x128.ini (umd-memsys/DRAMsim3): 8 legacy-mode channels of
    # 128 bits, BL4, 1 GHz command clock (2 Gb/s per pin), 4 bank groups x 4 banks,
    # 32768 rows x 64 columns of 16 B = 1 KiB rows. Peak 8 x 32 GB/s = 256 GB/s.
    return DramTiming(
        name="HBM2",
        source="DRAMsim3 configs/HBM2_8Gb_x128.ini (JESD235)",
        org=DramOrganization(
            channels=8, ranks=1, bankgroups=4, banks_per_group=4, rows=32768,
            row_bytes=1024, bus_bits=128, burst_length=4,
        ),
        tCK_ns=1.0,
        tBL=2,  # BL4 at double data rate
        tCL=14, tCWL=4, tRCD=14, tRP=14, tRAS=34,
        tRC=48,  # DRAMsim3 derives tRC = tRAS + tRP
        tWR=16,
        tRTP=4,  # tRTP_S
        tCCD_S=1,  # the data bus (tBL = 2) is the real limit
        tCCD_L=2, tCCD_L_WR=2,
        tRRD_S=4, tRRD_L=6, tFAW=30, tWTR_S=6, tWTR_L=8,
        tRTW=2,  # Ramulator 2's read-to-write rule: tCL + tBL + 2 - tCWL
        tRTRS=2,
        tRFC=260, tREFI=3900,
    )


def _hbm3() -> DramTiming:
    # Ramulator 2 src/dram/impl/HBM3.cpp, timing preset "HBM3_6.4Gbps", organisation
    # "HBM3_8Gb_1R" (JESD238A): 16 channels x 2 pseudo-channels of 32 bits, BL8, 6.4 Gb/s per
    # pin; Ramulator 2 counts a 1.6 GHz command clock (tCK = 0.625 ns) with a 2-cycle burst.
    # Each pseudo-channel is one channel here. Peak 32 x 25.6 GB/s = 819.2 GB/s.
    tCK = 0.625
    return DramTiming(
        name="HBM3",
        source="Ramulator 2 HBM3.cpp preset HBM3_6.4Gbps / HBM3_8Gb_1R (JESD238A)",
        org=DramOrganization(
            channels=32, ranks=1, bankgroups=4, banks_per_group=4, rows=32768,
            row_bytes=1024, bus_bits=32, burst_length=8,
        ),
        tCK_ns=tCK,
        tBL=2, tCL=23, tCWL=7, tRCD=23, tRP=23, tRAS=55, tRC=77, tWR=26,
        tRTP=7,  # nRTPS
        tCCD_S=2, tCCD_L=4, tCCD_L_WR=4,
        tRRD_S=2, tRRD_L=4, tFAW=48, tWTR_S=10, tWTR_L=13,
        tRTW=2, tRTRS=2,
        tRFC=_cycles(350, tCK),  # Ramulator 2 tRFC table, 8 Gb: 350 ns
        tREFI=6240,  # 3.9 us
    )


def _lpddr5() -> DramTiming:
    # Ramulator 2 src/dram/impl/LPDDR5.cpp, preset "LPDDR5_6400" with organisation
    # "LPDDR5_16Gb_x16" (JESD209-5): CK = 800 MHz (tCK 1.25 ns, WCK:CK = 4:1), x16 channels,
    # 4 bank groups x 4 banks, 2 KiB rows. Four x16 channels make one x64 package.
    # A burst here is BL32 (64 B), which takes the preset's 4-cycle nBL at 6400 MT/s.
    # Peak 4 x 12.8 GB/s = 51.2 GB/s.
    tCK = 1.25
    return DramTiming(
        name="LPDDR5",
        source="Ramulator 2 LPDDR5.cpp preset LPDDR5_6400 / LPDDR5_16Gb_x16 (JESD209-5)",
        org=DramOrganization(
            channels=4, ranks=1, bankgroups=4, banks_per_group=4, rows=65536,
            row_bytes=2048, bus_bits=16, burst_length=32,
        ),
        tCK_ns=tCK,
        tBL=4, tCL=20, tCWL=11, tRCD=15,
        tRP=15,  # nRPpb
        tRAS=34,
        tRC=49,  # the preset lists 30, far below tRAS + tRP; we use tRAS + tRPpb
        tWR=28, tRTP=4,
        tCCD_S=4, tCCD_L=4, tCCD_L_WR=4,  # the preset has one nCCD
        tRRD_S=4, tRRD_L=4,  # the preset has one nRRD
        tFAW=16, tWTR_S=5, tWTR_L=10,
        tRTW=2,
        tRTRS=2,  # nCS
        tRFC=_cycles(280, tCK),  # tRFCab for 16 Gb: 280 ns
        tREFI=_cycles(3906, tCK),  # tREFI base 3906 ns
    )


def _ddr5() -> DramTiming:
    # Ramulator 2 src/dram/impl/DDR5.cpp, preset "DDR5_3200AN" with organisation
    # "DDR5_16Gb_x8" (JESD79-5): tCK 0.625 ns, two 32-bit sub-channels per DIMM, BL16 (64 B),
    # 8 bank groups x 4 banks, 65536 rows, 4 KiB rank rows (4 x8 chips with 1 KiB pages).
    # Peak 2 x 12.8 GB/s = 25.6 GB/s.
    tCK = 0.625
    return DramTiming(
        name="DDR5",
        source="Ramulator 2 DDR5.cpp preset DDR5_3200AN / DDR5_16Gb_x8 (JESD79-5)",
        org=DramOrganization(
            channels=2, ranks=1, bankgroups=8, banks_per_group=4, rows=65536,
            row_bytes=4096, bus_bits=32, burst_length=16,
        ),
        tCK_ns=tCK,
        tBL=8, tCL=24, tCWL=22, tRCD=24, tRP=24, tRAS=52, tRC=75, tWR=48, tRTP=12,
        tCCD_S=8, tCCD_L=8, tCCD_L_WR=16,
        tRRD_S=8,
        tRRD_L=8,  # JESD79-5: max(8 nCK, 5 ns); the preset's table lists 5
        tFAW=32,
        tWTR_S=4, tWTR_L=16,  # from nCCDS_WTR = CWL + BL + 4 and nCCDL_WTR = CWL + BL + 16
        tRTW=2,
        tRTRS=2,  # nCS
        tRFC=_cycles(295, tCK),  # tRFC1 for 16 Gb: 295 ns
        tREFI=_cycles(3900, tCK),
    )


PRESETS: dict[str, DramTiming] = {
    timing.name: timing for timing in (_hbm2(), _hbm3(), _lpddr5(), _ddr5())
}


def get_preset(name: str) -> DramTiming:
    """The preset called `name` (case-insensitive): HBM2, HBM3, LPDDR5 or DDR5."""
    key = name.upper()
    if key not in PRESETS:
        raise ValueError(f"unknown DRAM preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[key]
