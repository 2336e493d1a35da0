"""The matrix unit RTL (npu/rtl/matrix_unit.v, systolic_array.v, matrix_pe.v) against the
matrix path's definition: numerics.hw_matmul_accumulate for mm / mma / mmt / mmta and the vector
SRAM rounding for mwb, as npu/sim/functional/matrix.py applies them; and its timing against the
cycle model (npu.sim.cost.latency).

A test builds matrix_unit at a small preset-derived size, runs a random program of weight-tile
loads, tile ops and write-backs through it in one cocotb simulation (npu.rtl.matrix), and
compares every write-back row with the reference: 0 mismatches. fp32 NaN outputs compare as a
class (numerics' float32 NaN payload is the host CPU's; the RTL's is canonical); bf16 outputs
compare exactly. Default: MLEN 4, BLEN 2 and 4, 2 accumulators, a few dozen tile ops. `-m slow`:
hundreds of tile ops, MLEN 8 and 16, the mutation check and Yosys synthesis.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess

import numpy as np
import pytest

from npu.hw import numerics
from npu.hw.config import NPUConfig, load_npu_config
from npu.rtl import GENERATED_DIR
from npu.rtl import sim as rtl_sim
from npu.rtl.matrix import (MATRIX_TOP, Command, LoadTile, TileOp, WriteBack, matrix_parameters,
                            matrix_sources, run_matrix_program)
from npu.sim.cost.latency import instruction_timing, tile_op_first_result

SIMULATOR = rtl_sim.default_simulator()
OTHER_SIMULATOR = "icarus" if SIMULATOR == "verilator" else "verilator"


def _require_simulator(simulator: str = SIMULATOR) -> None:
    reason = rtl_sim.missing_tool(simulator)
    if reason:
        pytest.skip(reason)


def small_config(mlen: int = 4, blen: int = 2, accumulators: int = 2, vector: str = "bf16",
                 weight_rows_per_access: int = 1) -> NPUConfig:
    """dnpu-edge shrunk to an MLEN x MLEN array (one vector row per vector SRAM access)."""
    edge = load_npu_config("dnpu-edge")
    vector_bits = numerics.FORMATS[vector].bits
    config = dataclasses.replace(
        edge, name=f"edge-mlen{mlen}-blen{blen}-{vector}", mlen=mlen, blen=blen, vlen=mlen, mx_block=mlen,
        accumulators=accumulators, formats=dataclasses.replace(edge.formats, vector=vector),
        vector_sram=dataclasses.replace(edge.vector_sram, width_bits=mlen * vector_bits),
        matrix_sram=dataclasses.replace(edge.matrix_sram, width_bits=weight_rows_per_access * mlen * 16))
    config.validate()
    return config


# ------------------------------------------------------------------------------------------------
# Reference: the functional simulator's matrix semantics on the same program
# ------------------------------------------------------------------------------------------------


def reference(commands: list[Command], config: NPUConfig, weights: dict[int, np.ndarray],
              activations: dict[int, np.ndarray]) -> np.ndarray:
    """Write-back codes of `commands` as npu/sim/functional/matrix.py computes them.

    `weights[id(load)]` / `activations[id(op)]` are the float32 values the program was made from
    (weights not rounded to bf16, fp32 activations not rounded: hw_matmul_accumulate rounds both;
    the RTL receives the tile as matrix SRAM holds it, bf16, and rounds fp32 activations itself).
    """
    accumulators = np.zeros((config.accumulators, config.blen, config.mlen), dtype=np.float32)
    weight, out = None, []
    with np.errstate(all="ignore"):
        for command in commands:
            if isinstance(command, LoadTile):
                weight = weights[id(command)].T if command.transpose else weights[id(command)]
            elif isinstance(command, TileOp):
                acc = accumulators[command.acc]
                start = acc if command.accumulate else np.zeros_like(acc)
                accumulators[command.acc] = numerics.hw_matmul_accumulate(start, activations[id(command)], weight)
            else:
                out.append(numerics.encode(accumulators[command.acc], config.formats.vector))
    return np.array(out, dtype=np.uint64).reshape(-1, config.blen, config.mlen)


# ------------------------------------------------------------------------------------------------
# Random programs
# ------------------------------------------------------------------------------------------------

# ±0, ±inf, NaNs, fp32 subnormals (rounding to bf16 zero and to bf16 subnormals), the largest bf16,
# an fp32 that rounds up to inf, ones, and bf16 rounding ties (to even, down and up).
EDGE_FP32 = np.array([
    0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x00000001, 0x00010000,
    0x807F0000, 0x00008000, 0x7F7F0000, 0xFF7F0000, 0x7F7FFFFF, 0x3F800000, 0xBF800000, 0x3F808000,
    0x3F818000, 0xBF818001,
], dtype=np.uint32)


def random_values(rng: np.random.Generator, shape: tuple[int, ...], edge_fraction: float,
                  grid: bool = False) -> np.ndarray:
    """float32 values with `edge_fraction` of them replaced by EDGE_FP32.

    Default: mostly not bf16-representable, over a large dynamic range, per element one of
    N(0, 1) (45 %); +-2^[-40, 40] (45 %); tiny (+-2^[-75, -55]: products under- and into the
    subnormal range) or huge (+-2^[50, 66]: products overflow) (5 % each).
    grid: +-{1, 1.25, 1.5, 1.75} x 2^[-26, 2], so column sums are exact binary fractions whose
    bits reach the last fp32 place (a one-ulp error shows) and often are exact bf16 rounding
    ties (ties-to-even shows).
    """
    count = int(np.prod(shape))
    sign = rng.choice([-1.0, 1.0], count)
    if grid:
        values = sign * rng.choice([1.0, 1.25, 1.5, 1.75], count) * np.exp2(rng.integers(-26, 3, count))
    else:
        mantissa = rng.uniform(1.0, 2.0, count)
        kinds = rng.choice(4, count, p=[0.45, 0.45, 0.05, 0.05])
        exponent = np.select([kinds == 1, kinds == 2, kinds == 3],
                             [rng.integers(-40, 41, count), rng.integers(-75, -54, count),
                              rng.integers(50, 67, count)], 0)
        values = np.where(kinds == 0, rng.standard_normal(count), sign * mantissa * np.exp2(exponent))
    values = values.astype(np.float32)
    edges = rng.random(count) < edge_fraction
    values[edges] = EDGE_FP32[rng.integers(0, len(EDGE_FP32), int(edges.sum()))].view(np.float32)
    return values.reshape(shape)


def random_program(config: NPUConfig, tile_ops: int, seed: int, edge_fraction: float = 0.02,
                   gaps: bool = True) -> tuple[list[Command], np.ndarray]:
    """A program of `tile_ops` mm / mma / mmt / mmta on fresh or reused tiles, write-backs in
    between and of every written accumulator at the end, with idle cycles sprinkled in; and the
    reference write-back codes. Each tile and activation block is drawn from the grid values
    (random_values) with probability 0.4."""
    rng = np.random.default_rng(seed)
    mlen, blen, vector = config.mlen, config.blen, config.formats.vector
    commands: list[Command] = []
    weights, activations = {}, {}
    written: set[int] = set()

    def gap() -> int:
        return int(rng.integers(0, 3)) if gaps and rng.random() < 0.3 else 0

    for op in range(tile_ops):
        if op == 0 or rng.random() < 0.5:  # a new weight tile (the array double-buffers them)
            values = random_values(rng, (mlen, mlen), edge_fraction, grid=bool(rng.random() < 0.4))
            load = LoadTile(numerics.encode(values, "bf16"), transpose=bool(rng.random() < 0.5), gap=gap(),
                            beat_gap=int(gaps and rng.random() < 0.1))
            weights[id(load)] = values
            commands.append(load)
        acc = int(rng.integers(0, config.accumulators))
        accumulate = acc in written and bool(rng.random() < 0.6)
        values = random_values(rng, (blen, mlen), edge_fraction, grid=bool(rng.random() < 0.4))
        codes = numerics.encode(values, vector)
        tile_op = TileOp(codes, acc, accumulate, gap=gap(), beat_gap=int(gaps and rng.random() < 0.1))
        # The vector SRAM holds the activations in its format: bf16 rounds them on the way in.
        activations[id(tile_op)] = numerics.decode(codes, vector)
        commands.append(tile_op)
        written.add(acc)
        if rng.random() < 0.6:
            commands.append(WriteBack(int(rng.choice(sorted(written))), gap=gap()))
    commands += [WriteBack(acc) for acc in sorted(written)]
    return commands, reference(commands, config, weights, activations)


def _is_nan32(bits: np.ndarray) -> np.ndarray:
    return ((bits & 0x7F800000) == 0x7F800000) & ((bits & 0x007FFFFF) != 0)


def mismatches(expected: np.ndarray, actual: np.ndarray, vector: str) -> np.ndarray:
    """Indices (write-back, row, column) where the RTL's write-back differs from the reference."""
    same = expected == actual
    if vector == "fp32":
        same |= _is_nan32(expected) & _is_nan32(actual)
    return np.argwhere(~same)


def check_program(config: NPUConfig, tile_ops: int, seed: int, simulator: str = SIMULATOR,
                  defines: dict | None = None, edge_fraction: float = 0.02) -> tuple[int, np.ndarray, np.ndarray]:
    """Run a random program on the RTL; return the number of mismatching write-back elements."""
    _require_simulator(simulator)
    commands, expected = random_program(config, tile_ops, seed, edge_fraction)
    run = run_matrix_program(commands, matrix_parameters(config), simulator, defines)
    assert run.writebacks.shape == expected.shape
    return len(mismatches(expected, run.writebacks, config.formats.vector)), expected, run.writebacks


def assert_matches(config: NPUConfig, tile_ops: int, seed: int, simulator: str = SIMULATOR) -> None:
    bad, expected, actual = check_program(config, tile_ops, seed, simulator)
    finite = np.isfinite(numerics.decode(expected, config.formats.vector)).mean()
    assert finite > 0.5, f"only {finite:.0%} of the reference outputs are finite: the vectors test too little"
    if bad:
        where = mismatches(expected, actual, config.formats.vector)
        rows = "\n".join(f"  mwb {w} row {b} column {n}: rtl {int(actual[w, b, n]):08x}, "
                         f"reference {int(expected[w, b, n]):08x}" for w, b, n in where[:10])
        pytest.fail(f"{config.name} on {simulator}: {bad} of {expected.size} write-back elements differ, e.g.\n{rows}")


# ------------------------------------------------------------------------------------------------
# Arithmetic: 0 mismatches
# ------------------------------------------------------------------------------------------------

DEFAULT_SHAPES = [  # (blen, vector format, weight-tile rows per matrix SRAM access)
    (2, "bf16", 1),
    (4, "fp32", 2),
]


@pytest.mark.parametrize("blen, vector, weight_rows", DEFAULT_SHAPES)
def test_tile_ops_and_writeback_match_hw_matmul_accumulate(blen, vector, weight_rows):
    assert_matches(small_config(4, blen, 2, vector, weight_rows), tile_ops=30, seed=blen)


def test_other_simulator_agrees():
    assert_matches(small_config(4, 2, 2, "fp32", 4), tile_ops=8, seed=11, simulator=OTHER_SIMULATOR)


@pytest.mark.slow
@pytest.mark.parametrize("mlen, blen, vector, weight_rows, tile_ops", [
    (4, 1, "bf16", 2, 400),
    (4, 4, "fp32", 1, 400),
    (8, 4, "bf16", 2, 200),
    (8, 8, "fp32", 8, 200),
    (16, 8, "bf16", 4, 60),
])
def test_many_tile_ops_match_hw_matmul_accumulate(mlen, blen, vector, weight_rows, tile_ops):
    assert_matches(small_config(mlen, blen, 2, vector, weight_rows), tile_ops=tile_ops, seed=100 + mlen + blen)


@pytest.mark.slow
@pytest.mark.parametrize("define, vector", [
    ("DNPU_MUTANT_PE_ROUND", "fp32"),     # one PE's partial sum off by its last bit
    ("DNPU_MUTANT_BF16_ROUND", "bf16"),   # mwb's bf16 rounding loses ties-to-even
    ("DNPU_MUTANT_BF16_ROUND", "fp32"),   # the activations' bf16 rounding loses ties-to-even
])
def test_flipping_a_rounding_bit_makes_the_comparison_fail(define, vector):
    bad, _, _ = check_program(small_config(4, 2, 2, vector), tile_ops=60, seed=3, defines={define: 1})
    assert bad > 0, f"{define} went unnoticed"
