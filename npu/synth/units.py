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
    name: str                                   # the unit's name in tables (and its top module unless `top`)
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
    # A fixed target instead of the preset's clock (the anchor's 200 ps) and the corner whose
    # library Yosys maps to (None: synth.map_corner).
    period_ps: float | None = None
    map_corner: str | None = None
    # Modules left as black boxes (the core's memories, word_memory): their instances stay in the
    # netlist as empty modules, so their area, timing and power are not the unit's.
    black_boxes: tuple[str, ...] = ()
    top: str = ""                               # the top module when it differs from `name`

    @property
    def module(self) -> str:
        """The Verilog module synthesized (one module may be several entries: matrix_pe, ROW 0 / 1)."""
        return self.top or self.name


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


# ---- the datapath units, the core and the anchor (issue 17) --------------------------------------
# Each is one entry; its parameters come from the preset (or are fixed where the entry is a part
# or a check of a composition, npu.synth.compose). Imports are local: npu.rtl.matrix etc. pull in
# numpy and the ISA tables, which the pipeline's Snakefile should not pay for at parse time.

ANCHOR_DIR = Path(__file__).resolve().parents[1] / "rtl" / "anchor"
ANCHOR_PERIOD_PS = 200.0   # the ORFS ASAP7 anchor's target (docs/synthesis.md, "Anchor")
ANCHOR_CORNER = "FF"


def _matrix_sources() -> list[Path]:
    from npu.rtl.matrix import matrix_sources

    return matrix_sources()


def _vector_sources() -> list[Path]:
    from npu.rtl.vector import vector_unit_sources

    return vector_unit_sources()


def _dma_sources() -> list[Path]:
    from npu.rtl import dma_codec_sources

    return dma_codec_sources()


def _core_sources() -> list[Path]:
    from npu.rtl.core_sim import core_sources

    return core_sources()


def _anchor_sources() -> list[Path]:
    return [ANCHOR_DIR / "anchor_int8_pe.v", ANCHOR_DIR / "anchor_int8_array.v"]


# The scalar FPU's arithmetic units (npu/rtl/scalar_fpu.v): one instance each in the core, black
# boxes in npu_core_control and composed back from their own jobs.
CORE_DATAPATH_UNITS = ("fp32_add", "fp32_mul", "fp32_exp", "fp32_recip", "fp32_rsqrt")


def _fixed(parameters: dict[str, int]) -> Callable[[Any], dict[str, int]]:
    return lambda config: dict(parameters)


def _dma_parameters(config: Any) -> dict[str, int]:
    return {"BLOCK": int(config.mx_block)}


def _core_parameters(config: Any) -> dict[str, int]:
    from npu.rtl.core import core_parameters

    return core_parameters(config)


SYNTH_UNITS.update({
    # The matrix PE (bf16 x bf16 + fp32), flattened whole (so the multiplier sees the widened
    # operands' zero bits), and row 0's PE, which has no adder: the parts of systolic_array.
    "matrix_pe": SynthUnit("matrix_pe", _matrix_sources, parameters=_fixed({"ROW": 1}), clock="clk",
                           description="matrix PE, rows 1..MLEN-1: bf16 x bf16 -> fp32 + fp32"),
    "matrix_pe_row0": SynthUnit("matrix_pe_row0", _matrix_sources, parameters=_fixed({"ROW": 0}), clock="clk",
                                top="matrix_pe", description="matrix PE of row 0: bf16 x bf16 -> fp32"),
    # Flat systolic arrays: the checks of the PE composition (npu.synth.compose).
    "systolic_array_4x4": SynthUnit("systolic_array_4x4", _matrix_sources, parameters=_fixed({"MLEN": 4, "WROWS": 1}),
                                    clock="clk", top="systolic_array", description="4x4 array, flat (composition check)"),
    "systolic_array_8x8": SynthUnit("systolic_array_8x8", _matrix_sources, parameters=_fixed({"MLEN": 8, "WROWS": 1}),
                                    clock="clk", top="systolic_array", description="8x8 array, flat (composition check)"),
    # One vector lane (every lane is the same logic; LANE only names a mutation variant), with
    # fp32_add / fp32_mul kept as submodules like the compound units.
    "vector_lane": SynthUnit("vector_lane", _vector_sources, keep_hierarchy=("fp32_add", "fp32_mul"),
                             description="one vector lane: every VECTOR instruction's per-element arithmetic"),
    "dma_codec": SynthUnit("dma_codec", _dma_sources, parameters=_dma_parameters, clock="clk",
                           keep_hierarchy=("fp32_add", "fp32_mul", "fp32_recip"),
                           description="DMA codec: MX block encode/decode, mx_block elements per cycle"),
    # The core, hierarchically: its control and scalar logic (decoder, register files, scalar
    # ALU, the FPU's compare / convert / move logic, loop stack, issue queues) synthesized for
    # real per preset, with the scalar FPU's arithmetic units - the arithmetic units synthesized
    # on their own (SYNTH_UNITS above) - and the program, INT and FP memories (SRAM macros:
    # npu.synth.sram) as black boxes. The core's row is composed from it and those units
    # (npu.synth.compose "npu_core"); the flat core below checks the composition.
    "npu_core_control": SynthUnit("npu_core_control", _core_sources, parameters=_core_parameters, clock="clk",
                                  top="npu_core", black_boxes=("word_memory", "scalar_sram", *CORE_DATAPATH_UNITS),
                                  description="core control and scalar logic (memories and the FPU's "
                                              "arithmetic units black boxes)"),
    # The whole core flat, memories black boxes (157 k cells: 15 minutes of Yosys): the check of
    # the hierarchical core, opt-in (OPT_IN_UNITS).
    "npu_core_flat": SynthUnit("npu_core_flat", _core_sources, parameters=_core_parameters, clock="clk",
                               top="npu_core", black_boxes=("word_memory", "scalar_sram"),
                               keep_hierarchy=("fp32_add", "fp32_mul"),
                               description="core without its memories, flat (composition check)"),
    # The anchor: INT8 x INT8 -> INT32 weight-stationary PE and 8x8 array, 200 ps at FF.
    "anchor_int8_pe": SynthUnit("anchor_int8_pe", _anchor_sources, include_dirs=(), clock="clk",
                                period_ps=ANCHOR_PERIOD_PS, map_corner=ANCHOR_CORNER,
                                description="anchor: INT8 x INT8 -> INT32 weight-stationary PE"),
    "anchor_int8_array": SynthUnit("anchor_int8_array", _anchor_sources, include_dirs=(), clock="clk",
                                   parameters=_fixed({"SIZE": 8}), period_ps=ANCHOR_PERIOD_PS,
                                   map_corner=ANCHOR_CORNER, description="anchor: 8x8 INT8 array, flat"),
    # Our bf16 x bf16 + fp32 PE at the anchor's target and corner, for the side-by-side row.
    "anchor_fp_pe": SynthUnit("anchor_fp_pe", _matrix_sources, parameters=_fixed({"ROW": 1}), clock="clk",
                              top="matrix_pe", period_ps=ANCHOR_PERIOD_PS, map_corner=ANCHOR_CORNER,
                              description="our matrix PE at the anchor's 200 ps, FF"),
})
def _accumulator_parameters(config: Any) -> dict[str, int]:
    """matrix_accumulator's parameters for a preset: one column of matrix_unit's bank,
    ACCUMULATORS x BLEN rows addressed {acc, b}, rounded to the vector SRAM element on read."""
    from npu.rtl.matrix import matrix_parameters

    unit = matrix_parameters(config)
    acc_bits = max(1, (unit["ACCUMULATORS"] - 1).bit_length())
    row_bits = max(1, (unit["BLEN"] - 1).bit_length())
    return {"ENTRIES": unit["ACCUMULATORS"] << row_bits, "ADDR_BITS": acc_bits + row_bits,
            "VEC_BITS": unit["VEC_BITS"]}


# The matrix unit's accumulators and the vector unit's reduction trees (issue 17): parts composed
# per preset (npu.synth.compose "matrix_accumulators", "vector_sum_tree", "vector_max_tree",
# "vector_argmax_tree") and the small flat syntheses that check those compositions.
SYNTH_UNITS.update({
    # One column of the accumulator bank (ACCUMULATORS x BLEN fp32 rows, its fp32_add, the mwb
    # rounding), flat: matrix_unit has MLEN of them.
    "matrix_accumulator": SynthUnit("matrix_accumulator", _matrix_sources, parameters=_accumulator_parameters,
                                    clock="clk", description="one accumulator column of the matrix unit: "
                                    "ACCUMULATORS x BLEN fp32 rows, their fp32_add, the mwb rounding"),
    # The check of the matrix unit's composition: the whole unit flat at MLEN 2 (BLEN 2, two
    # accumulators, bf16 vector SRAM) against 2 x 2 PEs + 2 accumulator columns of that size.
    "matrix_accumulator_4": SynthUnit("matrix_accumulator_4", _matrix_sources,
                                      parameters=_fixed({"ENTRIES": 4, "ADDR_BITS": 2, "VEC_BITS": 16}), clock="clk",
                                      top="matrix_accumulator",
                                      description="accumulator column of 4 rows (the 2x2 matrix unit's check)"),
    "matrix_unit_2x2": SynthUnit("matrix_unit_2x2", _matrix_sources,
                                 parameters=_fixed({"MLEN": 2, "BLEN": 2, "ACCUMULATORS": 2, "VEC_BITS": 16,
                                                    "WROWS": 1}),
                                 clock="clk", top="matrix_unit", description="2x2 matrix unit, flat (composition check)"),
    # One node of each reduction tree (the tree at N = 2): a VLEN tree has VLEN - 1 of them, log2(VLEN)
    # in series. The sum tree's node is fp32_add itself (its own job).
    "vector_max_tree_2": SynthUnit("vector_max_tree_2", _vector_sources, parameters=_fixed({"N": 2}),
                                   top="vector_max_tree", description="one vmaxr tree node (the tree at N = 2)"),
    "vector_argmax_tree_2": SynthUnit("vector_argmax_tree_2", _vector_sources,
                                      parameters=_fixed({"N": 2, "INDEX_BITS": 1}), top="vector_argmax_tree",
                                      description="one vargmax tree node (the tree at N = 2)"),
    # The trees flat at N = 4 (three nodes, two levels): the checks of the node compositions.
    "vector_sum_tree_4": SynthUnit("vector_sum_tree_4", _vector_sources, parameters=_fixed({"N": 4}),
                                   top="vector_sum_tree", description="vsum tree of 4, flat (composition check)"),
    "vector_max_tree_4": SynthUnit("vector_max_tree_4", _vector_sources, parameters=_fixed({"N": 4}),
                                   top="vector_max_tree", description="vmaxr tree of 4, flat (composition check)"),
    "vector_argmax_tree_4": SynthUnit("vector_argmax_tree_4", _vector_sources,
                                      parameters=_fixed({"N": 4, "INDEX_BITS": 2}), top="vector_argmax_tree",
                                      description="vargmax tree of 4, flat (composition check)"),
})

# The DMA codec hierarchically (issue 17): at mx_block 32 the flat codec is about a million cells
# (32 fp32_recip + 32 fp32_mul, the kv smoothing's), beyond OpenSTA here. Its conversion logic -
# MX block decoders and encoders of every format, the block maximum and shared exponent, bf16
# rounding, the format mux, the pipeline registers - is synthesized at a block of CODEC_PART_BLOCK
# elements with the per-lane fp32_recip / fp32_mul as black boxes; the codec at mx_block is composed
# from mx_block / CODEC_PART_BLOCK of it and mx_block of each arithmetic unit (npu.synth.compose
# "dma_codec_composed"). The energy per element the DMA charges (npu.synth.calibrate) is the
# conversion logic's per cycle / CODEC_PART_BLOCK.
CODEC_PART_BLOCK = 4
CODEC_DATAPATH_UNITS = ("fp32_recip", "fp32_mul")
SYNTH_UNITS.update({
    "dma_codec_control": SynthUnit("dma_codec_control", _dma_sources, parameters=_fixed({"BLOCK": CODEC_PART_BLOCK}),
                                   clock="clk", top="dma_codec", black_boxes=CODEC_DATAPATH_UNITS,
                                   description=f"DMA codec conversion logic, {CODEC_PART_BLOCK} elements per cycle "
                                               "(the kv smoothing's fp32_recip / fp32_mul black boxes)"),
    # The check of the block scaling: the conversion logic at twice the block, flat.
    "dma_codec_control_8": SynthUnit("dma_codec_control_8", _dma_sources, parameters=_fixed({"BLOCK": 2 * CODEC_PART_BLOCK}),
                                     clock="clk", top="dma_codec", black_boxes=CODEC_DATAPATH_UNITS,
                                     description=f"DMA codec conversion logic at {2 * CODEC_PART_BLOCK} elements "
                                                 "(composition check)"),
})

# Synthesized only when synth.units names them: dma_codec at mx_block 32 is about a million cells
# (32 fp32_recip + 32 fp32_mul), hours of OpenSTA on a 2-core machine; the flat core (a check,
# 15 minutes of Yosys per preset) and the flat 8x8 array (135 k cells, the 4x4 one is the default
# check).
# dma_codec_control_8 (the codec's block-scaling check) took 15 minutes of Yosys on the loaded
# machine, the dearest new check: opt-in too (docs/synthesis.md has its measured error).
OPT_IN_UNITS = ("dma_codec", "npu_core_flat", "systolic_array_8x8", "dma_codec_control_8")
# Preset-independent units with their own table (results/synth/anchor.tsv), not in units.tsv.
ANCHOR_UNITS = ("anchor_int8_pe", "anchor_int8_array", "anchor_fp_pe")
