"""The table of units the flow synthesizes: one `SynthUnit` entry per RTL top.

A new unit is one entry: its top module, the Verilog it needs, its include folders, the clock
port if it is sequential (None: combinational), and a function from the NPU preset to its
Verilog parameters (e.g. a vector unit's `vector_parameters(config)` giving VLEN). Every unit is
synthesized inside a generated wrapper that registers its inputs and outputs (npu.synth.yosys),
so each has a register-to-register path for the clock; the wrapper's flops are not counted in
the unit's area or power.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from npu.rtl import GENERATED_DIR, UNITS, rtl_sources


def no_parameters(config: Any) -> dict[str, int]:
    """The arithmetic units have no parameters: the same netlist for every preset."""
    return {}


@dataclass(frozen=True)
class SynthUnit:
    name: str                                   # the top module, as in the RTL
    sources: Callable[[], list[Path]]           # every Verilog file it may need
    include_dirs: tuple[Path, ...] = (GENERATED_DIR,)
    parameters: Callable[[Any], dict[str, int]] = no_parameters  # NPU preset -> Verilog parameters
    clock: str | None = None                    # clock port of a sequential unit
    # Submodules synthesized once and instantiated (hierarchical synthesis), not flattened into
    # the unit: flat synthesis of the compound units (exp = 7 multiplies + 6 adds, ...) takes
    # Yosys 0.23 minutes and gigabytes. The price: no constant propagation into a kept module
    # (a multiply by a constant stays a full multiplier), so the area is an upper bound.
    keep_hierarchy: tuple[str, ...] = ()
    description: str = ""
    defines: dict[str, str] = field(default_factory=dict)


# The units built from fp32_add / fp32_mul instances keep those as submodules.
COMPOUND_UNITS = ("fp32_exp", "fp32_recip", "fp32_rsqrt", "fp32_sigmoid", "fp32_silu")
SYNTH_UNITS: dict[str, SynthUnit] = {
    name: SynthUnit(name, rtl_sources, description="combinational arithmetic unit (docs/rtl.md)",
                    keep_hierarchy=("fp32_add", "fp32_mul") if name in COMPOUND_UNITS else ())
    for name in UNITS
}


def source_fingerprint(unit: SynthUnit) -> str:
    """SHA-256 (16 hex digits) of the unit's Verilog and include files, by name and content: the
    pipeline reruns a unit's synthesis when it changes, wherever the checkout lies."""
    import hashlib

    digest = hashlib.sha256()
    files = list(unit.sources()) + [path for folder in unit.include_dirs for path in sorted(Path(folder).glob("*.vh"))]
    for path in files:
        digest.update(Path(path).name.encode())
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]


def get_unit(name: str) -> SynthUnit:
    if name not in SYNTH_UNITS:
        raise ValueError(f"unknown synthesis unit {name!r}; known: {', '.join(SYNTH_UNITS)}")
    return SYNTH_UNITS[name]
