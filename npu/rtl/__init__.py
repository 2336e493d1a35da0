"""Synthesizable RTL of the dnpu datapaths (Verilog files shipped as package data).

`RTL_DIR` holds one module per file; `GENERATED_DIR` holds the constants and lookup tables that
`python -m npu.rtl.generate` writes from the ISA table and `npu.hw.numerics`. docs/rtl.md lists the
units, their ports and latencies.
"""

from __future__ import annotations

from pathlib import Path

RTL_DIR = Path(__file__).resolve().parent
GENERATED_DIR = RTL_DIR / "generated"

# The arithmetic units, each the top of its own file <name>.v, in dependency order, with the
# widths of their input ports (named a and, for two-input units, b) and of their output y.
# All are combinational (latency 0 cycles); docs/rtl.md explains each.
UNIT_PORTS: dict[str, tuple[tuple[int, ...], int]] = {
    "bf16_to_fp32": ((16,), 32),
    "fp32_to_bf16": ((32,), 16),
    "fp32_add": ((32, 32), 32),
    "fp32_mul": ((32, 32), 32),
    "fp32_exp": ((32,), 32),
    "fp32_recip": ((32,), 32),
    "fp32_rsqrt": ((32,), 32),
    "fp32_sigmoid": ((32,), 32),
    "fp32_silu": ((32,), 32),
}
UNITS = tuple(UNIT_PORTS)
# Building blocks the units instantiate that are not compared on their own.
HELPERS = ("leading_zero_count", "fp32_scale_pow2")
INPUT_NAMES = ("a", "b")


def rtl_sources() -> list[Path]:
    """Every Verilog source a unit may need: the generated ROMs first, then the units."""
    return sorted(GENERATED_DIR.glob("*.v")) + [RTL_DIR / f"{name}.v" for name in HELPERS + UNITS]


# The DMA codec (docs/rtl.md, "DMA codec"): a clocked unit, top `dma_codec`, and the modules it
# instantiates beyond the arithmetic units (bf16_to_fp32, fp32_to_bf16, fp32_mul, fp32_recip).
DMA_CODEC_TOP = "dma_codec"
DMA_CODEC_MODULES = ("rne_shift_right", "mx_block_max", "mx_shared_exponent", "mx_element_encode",
                     "mx_element_decode", "mx_block_encoder", "mx_block_decoder", DMA_CODEC_TOP)


def dma_codec_sources() -> list[Path]:
    """Every Verilog source of the DMA codec: the arithmetic units' sources, then its own modules."""
    return rtl_sources() + [RTL_DIR / f"{name}.v" for name in DMA_CODEC_MODULES]
