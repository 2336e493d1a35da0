"""The vector unit's RTL (npu/rtl/vector_unit.v) seen from Python: its source files, its Verilog
parameters for an NPU preset, which port carries each operand of every vector instruction, and
its latency in cycles. docs/rtl.md describes the unit; tests/test_rtl_vector.py checks it against
the functional simulator.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from npu.hw.config import NPUConfig
from npu.hw.numerics import FORMATS
from npu.isa.table import INSTRUCTIONS, Unit
from npu.rtl import RTL_DIR, rtl_sources
from npu.rtl import sim as rtl_sim

TOP = "vector_unit"
# Hand-written modules of the vector unit (the arithmetic units come from npu.rtl.rtl_sources()).
MODULES = ("fp32_compare", "int32_to_fp32", "fp32_to_int32", "smoothing_factor", "vector_lane",
           "vector_sum_tree", "vector_max_tree", "vector_argmax_tree", "vector_rank", "vector_unit")
VECTOR_MNEMONICS = tuple(spec.mnemonic for spec in INSTRUCTIONS if spec.unit is Unit.VECTOR)

# Cycles from the cycle an instruction enters (in_valid && in_ready) to the cycle its result is
# on the outputs (out_valid): input register, combinational datapath, output register.
PIPELINE_LATENCY = 2


def vector_unit_sources() -> list[Path]:
    """Every Verilog file vector_unit needs, leaf modules first."""
    return rtl_sources() + [RTL_DIR / f"{name}.v" for name in MODULES]


def rank_step_lanes(vlen: int, rank_latency: int) -> int:
    """Lanes of the other row the vrank network compares per cycle: the fewest (a power of two
    dividing VLEN) whose VLEN / lanes steps plus the output register fit in `rank_latency`
    cycles (the technology file's vector_rank)."""
    lanes = 1
    while lanes < vlen and vlen // lanes + 1 > rank_latency:
        lanes *= 2
    return lanes


def vector_parameters(config: NPUConfig) -> dict[str, int]:
    """Verilog parameters of vector_unit for a preset: VLEN, the vector SRAM element width
    (formats.vector: bf16 -> 16, fp32 -> 32) and the vrank network's width."""
    vlen = config.vlen
    if vlen < 2 or vlen & (vlen - 1):
        raise ValueError(f"vector_unit needs VLEN a power of two >= 2; preset {config.name} has vlen={vlen}")
    fmt = config.formats.vector
    if fmt not in ("bf16", "fp32"):
        raise ValueError(f"vector_unit holds bf16 or fp32 rows; preset {config.name} has formats.vector={fmt!r}")
    return {"VLEN": vlen, "VECTOR_BITS": FORMATS[fmt].bits,
            "RANK_STEP_LANES": rank_step_lanes(vlen, config.technology.latency.vector_rank)}


def latency(mnemonic: str, parameters: dict[str, int]) -> int:
    """Cycles from entering the unit to the result, for an instruction and vector_parameters()."""
    if mnemonic not in VECTOR_MNEMONICS:
        raise ValueError(f"{mnemonic!r} is not a vector instruction; known: {', '.join(VECTOR_MNEMONICS)}")
    if mnemonic == "vrank":
        return parameters["VLEN"] // parameters["RANK_STEP_LANES"] + 1
    return PIPELINE_LATENCY


def occupancy(mnemonic: str, parameters: dict[str, int]) -> int:
    """Cycles before the next instruction can enter (in_ready low while vrank steps)."""
    return latency(mnemonic, parameters) - 1 if mnemonic == "vrank" else 1


# Which port carries each operand (ISA table field names). Ports: row_a / row_b / row_c (vector
# SRAM rows read), words_a / words_b (FP or INT SRAM rows read), scalar_f (fp register read),
# scalar_i (int register read), glog2 / mode (instruction fields), and the results out_row
# (vector SRAM row), out_words (FP or INT SRAM row), out_f (fp register), out_i (int register).
# A vector-row operand register holds the row's address; vrank also takes the addresses of vcand
# and vother on addr_a / addr_b (its tie-break compares them).
_BINARY = {"vd": ("out_row",), "vs1": ("row_a",), "vs2": ("row_b",)}
_UNARY = {"vd": ("out_row",), "vs": ("row_a",)}
_SCALAR = {"vd": ("out_row",), "vs": ("row_a",), "fs": ("scalar_f",)}
OPERAND_PORTS: dict[str, dict[str, tuple[str, ...]]] = {
    **{name: _BINARY for name in ("vadd", "vsub", "vmul", "vmax", "vmin", "vgt", "vge", "veq", "vamax")},
    **{name: _UNARY for name in ("vmov", "vneg", "vabs", "vexp", "vrecip", "vrsqrt", "vsilu")},
    **{name: _SCALAR for name in ("vadds", "vsubs", "vmuls", "vmaxs", "vmins", "vges", "vgts")},
    "vbcast": {"vd": ("out_row",), "fs": ("scalar_f",)},
    "vrothalf": {"vd": ("out_row",), "vs": ("row_a",), "glog2": ("glog2",)},
    "vsum": {"fd": ("scalar_f", "out_f"), "vs": ("row_a",)},
    "vmaxr": {"fd": ("scalar_f", "out_f"), "vs": ("row_a",)},
    "vldf": {"vd": ("out_row",), "fsrc": ("words_a",)},
    "vstf": {"fdst": ("out_words",), "vs": ("row_a",)},
    "vldi": {"vd": ("out_row",), "isrc": ("words_a",)},
    "vsti": {"idst": ("out_words",), "vs": ("row_a",)},
    "vieq": {"vd": ("out_row",), "isrc": ("words_a",), "rs": ("scalar_i",)},
    "vargmax": {"fmax": ("scalar_f", "out_f"), "ridx": ("out_i",), "vs": ("row_a",), "base": ("scalar_i",)},
    "vrank": {"vd": ("words_a", "out_words"), "vcand": ("row_a", "addr_a"), "vother": ("row_b", "addr_b")},
    "vtopk": {"vd": ("out_row",), "vrank": ("words_a",), "velig": ("row_a",), "k": ("scalar_i",)},
    "vthresh": {"vd": ("out_row",), "vconf": ("row_a",), "velig": ("row_b",), "tau": ("scalar_f",)},
    "vsel": {"vd": ("out_row",), "vs1": ("row_a",), "vs2": ("row_b",), "vmask": ("row_c",)},
    "vseli": {"idst": ("out_words",), "isrc1": ("words_a",), "isrc2": ("words_b",), "vmask": ("row_c",)},
    "vsmscale": {"vd": ("out_row",), "vs": ("row_a",), "mode": ("mode",)},
}
# FP SRAM (rather than INT SRAM) rows on words_a / out_words.
FP_WORD_OPERANDS = frozenset({"fsrc", "fdst"})


def simulate(batch: dict, parameters: dict[str, int], simulator: str | None = None,
             defines: dict[str, object] | None = None) -> dict:
    """Stream a batch of instructions through vector_unit (npu/rtl/cocotb_vector.py documents the
    arrays: control, rows as fp32 patterns, words, scalars) and return what it wrote, in order,
    plus `cycles`. Builds (cached) for `parameters` (as vector_parameters returns them)."""
    vlen, bits = parameters["VLEN"], parameters["VECTOR_BITS"]
    build_dir = rtl_sim.build_design(TOP, vector_unit_sources(), simulator, parameters=parameters, defines=defines)
    rows = np.asarray(batch["rows"], dtype=np.uint64)
    files = {"control": np.asarray(batch["control"], dtype=np.int64), "rows": rows >> 16 if bits == 16 else rows,
             "words": np.asarray(batch["words"], dtype=np.uint64),
             "scalars": np.asarray(batch["scalars"], dtype=np.uint64), "shape": np.array([vlen, bits])}
    return rtl_sim.run_cocotb(TOP, build_dir, "npu.rtl.cocotb_vector", simulator, files=files,
                              outputs=("out_rows", "out_words", "out_scalars", "out_flags", "cycles"))
