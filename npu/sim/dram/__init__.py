"""A DRAM timing model with an independent JEDEC-rule checker.

- `DramTiming` / `get_preset`: organisation and timing of HBM2, HBM3, LPDDR5 and DDR5
  (config/dram/*.yaml).
- `AddressMapping`: physical address -> channel/rank/bank group/bank/row/column.
- `DramModel`: per-channel FR-FCFS controllers with open/close page policy and refresh;
  `access()` for in-the-loop use, `stream()` for batches, `stats`, `trace`.
- `check_trace(trace, timing)`: replays a command trace and lists every rule it breaks.
"""

from npu.sim.dram.checker import Violation, check_trace
from npu.sim.dram.commands import Command
from npu.sim.dram.mapping import (
    BANK_INTERLEAVED,
    BANKGROUP_INTERLEAVED,
    ROW_MAJOR,
    AddressMapping,
    DecodedAddress,
)
from npu.sim.dram.model import DramModel, DramStats, Request
from npu.sim.dram.timing import DramOrganization, DramTiming, dram_presets, get_preset, preset_names

__all__ = [
    "BANK_INTERLEAVED",
    "BANKGROUP_INTERLEAVED",
    "ROW_MAJOR",
    "AddressMapping",
    "Command",
    "DecodedAddress",
    "DramModel",
    "DramOrganization",
    "DramStats",
    "DramTiming",
    "Request",
    "Violation",
    "check_trace",
    "dram_presets",
    "get_preset",
    "preset_names",
]
