"""The matrix unit's RTL (matrix_unit.v over systolic_array.v and matrix_pe.v): its parameters
from an NPU preset, and a driver that runs a program of weight loads, tile ops and write-backs
through it in a cocotb simulation (npu/rtl/cocotb_matrix.py) and returns what came out, with the
cycle of every handshake so tests and benchmarks can time the unit. docs/rtl.md describes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from npu.hw.config import MATRIX_SRAM_ELEMENT_BITS, NPUConfig
from npu.hw.numerics import FORMATS
from npu.rtl import RTL_DIR

MATRIX_TOP = "matrix_unit"
# The arithmetic units the array instantiates, then the matrix unit's own modules (bottom up).
MATRIX_MODULES = ("leading_zero_count", "bf16_to_fp32", "fp32_to_bf16", "fp32_add", "fp32_mul",
                  "matrix_pe", "systolic_array", "matrix_accumulator", "matrix_unit")
# Verilog defines that build a deliberately wrong variant (the mutation check of the tests).
MUTANTS = {
    "DNPU_MUTANT_PE_ROUND": "PE (1, 0) flips the last mantissa bit of its partial sum",
    "DNPU_MUTANT_PE_ZERO_START": "PE (0, 0) starts its column's sum from +0 (0 + p0, not p0)",
    "DNPU_MUTANT_BF16_ROUND": "fp32_to_bf16 (mwb rounding, fp32 activations) loses ties-to-even",
}
VECTOR_FORMAT_BITS = {"bf16": 16, "fp32": 32}


def matrix_sources() -> list[Path]:
    """The Verilog files of matrix_unit (the generated ROMs are not needed)."""
    return [RTL_DIR / f"{name}.v" for name in MATRIX_MODULES]


def matrix_parameters(config: NPUConfig) -> dict[str, int]:
    """matrix_unit's Verilog parameters for NPU preset `config`.

    MLEN, BLEN, ACCUMULATORS from the preset; VEC_BITS, the vector SRAM element (activations in,
    mwb out); WROWS, the weight-tile rows one matrix SRAM access delivers (a tile loads in
    MLEN / WROWS beats, the cycle model's weight_load_cycles).
    """
    vector = config.formats.vector
    if vector not in VECTOR_FORMAT_BITS:
        raise ValueError(f"{config.name}: formats.vector = {vector!r}; the matrix unit RTL reads and writes "
                         f"{' or '.join(VECTOR_FORMAT_BITS)} vector SRAM elements")
    if config.formats.accumulator != "fp32":
        raise ValueError(f"{config.name}: formats.accumulator = {config.formats.accumulator!r}; the matrix "
                         f"unit RTL accumulates in fp32")
    assert FORMATS[vector].bits == VECTOR_FORMAT_BITS[vector]
    tile_row_bits = config.mlen * MATRIX_SRAM_ELEMENT_BITS
    width = config.matrix_sram.width_bits
    if width % tile_row_bits or config.mlen % (width // tile_row_bits):
        raise ValueError(f"{config.name}: matrix_sram.width_bits = {width} must be a whole number of weight-tile "
                         f"rows ({tile_row_bits} bits) dividing mlen = {config.mlen}")
    if config.blen & (config.blen - 1):
        raise ValueError(f"{config.name}: blen = {config.blen} must be a power of two (accumulator rows are "
                         f"addressed {{acc, row}})")
    return {"MLEN": config.mlen, "BLEN": config.blen, "ACCUMULATORS": config.accumulators,
            "VEC_BITS": VECTOR_FORMAT_BITS[vector], "WROWS": width // tile_row_bits}


# ---- programs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadTile:
    """Load an MLEN x MLEN tile of bf16 codes (as matrix SRAM stores it) into the weight buffer;
    `transpose` for mmt / mmta."""

    tile: np.ndarray
    transpose: bool = False
    gap: int = 0        # idle cycles before the first beat
    beat_gap: int = 0   # idle cycles after every beat


@dataclass(frozen=True)
class TileOp:
    """mm / mmt (accumulate False) or mma / mmta (True) of BLEN rows of vector-format codes."""

    rows: np.ndarray
    acc: int
    accumulate: bool
    gap: int = 0
    beat_gap: int = 0


@dataclass(frozen=True)
class WriteBack:
    """mwb of accumulator `acc`."""

    acc: int
    gap: int = 0
    beat_gap: int = 0


Command = LoadTile | TileOp | WriteBack


@dataclass(frozen=True)
class MatrixRun:
    """What a program did.

    writebacks        [mwb, BLEN, MLEN] vector-format codes, in program order
    beats             [command, 2] the cycles of each command's first and last accepted beat
    writeback_cycles  [mwb, BLEN] the cycle each output row was valid
    write_cycles      the cycles in which some accumulator column was written ...
    column_writes     [those cycles, MLEN] ... and which (col_write)
    cycles            how many cycles the simulation ran after reset

    Cycle c runs from the c-th rising clock edge after reset to the next; a beat "accepted in
    cycle c" moves at the edge that ends it."""

    writebacks: np.ndarray
    beats: np.ndarray
    writeback_cycles: np.ndarray
    write_cycles: np.ndarray
    column_writes: np.ndarray
    cycles: np.ndarray


def encode_program(commands: list[Command], params: dict[str, int]) -> dict[str, np.ndarray]:
    """The arrays cocotb_matrix.py reads: commands [n, 6] = (kind, flag, acc, index, gap, beat_gap),
    tiles [T, MLEN, MLEN], rows [O, BLEN, MLEN], params."""
    mlen, blen = params["MLEN"], params["BLEN"]
    table, tiles, rows = [], [], []
    for command in commands:
        if isinstance(command, LoadTile):
            tile = np.asarray(command.tile, dtype=np.uint64)
            if tile.shape != (mlen, mlen):
                raise ValueError(f"LoadTile: tile shape {tile.shape}, the array takes ({mlen}, {mlen})")
            table.append((0, int(command.transpose), 0, len(tiles), command.gap, command.beat_gap))
            tiles.append(tile)
        elif isinstance(command, TileOp):
            block = np.asarray(command.rows, dtype=np.uint64)
            if block.shape != (blen, mlen):
                raise ValueError(f"TileOp: rows shape {block.shape}, a tile op takes ({blen}, {mlen})")
            if not 0 <= command.acc < params["ACCUMULATORS"]:
                raise ValueError(f"TileOp: accumulator {command.acc} outside 0..{params['ACCUMULATORS'] - 1}")
            table.append((1, int(command.accumulate), command.acc, len(rows), command.gap, command.beat_gap))
            rows.append(block)
        elif isinstance(command, WriteBack):
            if not 0 <= command.acc < params["ACCUMULATORS"]:
                raise ValueError(f"WriteBack: accumulator {command.acc} outside 0..{params['ACCUMULATORS'] - 1}")
            table.append((2, 0, command.acc, 0, command.gap, command.beat_gap))
        else:
            raise TypeError(f"not a matrix unit command: {command!r}")
    return {
        "commands": np.array(table, dtype=np.int64).reshape(-1, 6),
        "tiles": np.array(tiles, dtype=np.uint64).reshape(-1, mlen, mlen),
        "rows": np.array(rows, dtype=np.uint64).reshape(-1, blen, mlen),
        "params": np.array([params[key] for key in ("MLEN", "BLEN", "ACCUMULATORS", "VEC_BITS", "WROWS")],
                           dtype=np.int64),
    }


def run_matrix_program(commands: list[Command], params: dict[str, int], simulator: str | None = None,
                       defines: dict[str, object] | None = None) -> MatrixRun:
    """Build matrix_unit with `params` (and `defines`) and run `commands` in order through it."""
    from npu.rtl import sim as rtl_sim

    build_dir = rtl_sim.build_design(MATRIX_TOP, matrix_sources(), simulator, parameters=params, defines=defines)
    out = rtl_sim.run_cocotb(MATRIX_TOP, build_dir, "npu.rtl.cocotb_matrix", simulator,
                             files=encode_program(commands, params),
                             outputs=("writebacks", "beats", "writeback_cycles", "write_cycles", "column_writes",
                                      "cycles"))
    return MatrixRun(**out)


__all__ = ["MATRIX_TOP", "MUTANTS", "Command", "LoadTile", "MatrixRun", "TileOp", "WriteBack",
           "matrix_parameters", "matrix_sources", "run_matrix_program"]
