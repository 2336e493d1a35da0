"""Synthesizable RTL of the dnpu datapaths (Verilog files shipped as package data).

`RTL_DIR` holds one module per file; `GENERATED_DIR` holds the constants and lookup tables that
`python -m npu.rtl.generate` writes from the ISA table and `npu.hw.numerics`. docs/rtl.md lists the
units, their ports and latencies.
"""

from __future__ import annotations

from pathlib import Path

RTL_DIR = Path(__file__).resolve().parent
GENERATED_DIR = RTL_DIR / "generated"

# The arithmetic units, each the top of its own file <name>.v, in dependency order.
UNITS = (
    "bf16_to_fp32",
    "fp32_to_bf16",
    "fp32_add",
    "fp32_mul",
    "fp32_exp",
    "fp32_recip",
    "fp32_rsqrt",
    "fp32_silu",
)


def rtl_sources() -> list[Path]:
    """Every Verilog source a unit may need: the generated ROMs first, then the units."""
    return sorted(GENERATED_DIR.glob("*.v")) + [RTL_DIR / f"{unit}.v" for unit in UNITS]
