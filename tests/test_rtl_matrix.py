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

import numpy as np
import pytest

from npu.hw import numerics
from npu.hw.config import NPUConfig, load_npu_config
from npu.rtl import sim as rtl_sim
from npu.rtl.matrix import (MATRIX_TOP, Command, LoadTile, TileOp, WriteBack, matrix_parameters,
                            matrix_sources, run_matrix_program)
from npu.sim.cost.latency import instruction_timing, tile_op_first_result
from rtl_helpers import ELABORATE, SYNTHESIZE, verilator_lint, yosys, yosys_binaries

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


@dataclasses.dataclass
class Program:
    """Commands for the RTL and the float32 values they were made from: `weights[id(load)]` not
    rounded to bf16 (the LoadTile carries the bf16 codes matrix SRAM would hold), and
    `activations[id(op)]` as vector SRAM holds them (fp32 ones not rounded to bf16)."""

    commands: list[Command]
    weights: dict[int, np.ndarray]
    activations: dict[int, np.ndarray]


def reference(program: Program, config: NPUConfig) -> np.ndarray:
    """Write-back codes of `program` as npu/sim/functional/matrix.py computes them:
    hw_matmul_accumulate rounds the weights and activations to bf16 itself (the RTL receives the
    tile as matrix SRAM holds it, bf16, and rounds fp32 activations on entry)."""
    weights, activations = program.weights, program.activations
    accumulators = np.zeros((config.accumulators, config.blen, config.mlen), dtype=np.float32)
    weight, out = None, []
    with np.errstate(all="ignore"):
        for command in program.commands:
            if isinstance(command, LoadTile):
                weight = weights[id(command)].T if command.transpose else weights[id(command)]
            elif isinstance(command, TileOp):
                acc = accumulators[command.acc]
                start = acc if command.accumulate else np.zeros_like(acc)
                accumulators[command.acc] = numerics.hw_matmul_accumulate(start, activations[id(command)], weight)
            else:
                out.append(numerics.encode(accumulators[command.acc], config.formats.vector))
    return np.array(out, dtype=np.uint64).reshape(-1, config.blen, config.mlen)


def functional_simulator_writebacks(program: Program, config: NPUConfig) -> np.ndarray:
    """The same program run as dnpu instructions on the functional simulator: every tile preloaded
    into matrix SRAM and every activation block into vector SRAM, then mm / mma / mmt / mmta (the
    transpose of the tile's load) and mwb, the write-backs read back as vector-format codes."""
    from npu.isa.assembler import assemble
    from npu.sim.functional import FunctionalSimulator

    mlen, blen = config.mlen, config.blen
    commands, weights, activations = program.commands, program.weights, program.activations
    sim = FunctionalSimulator(config, dram_size=1 << 12)
    tile_count = sum(isinstance(command, LoadTile) for command in commands)
    op_count = sum(isinstance(command, TileOp) for command in commands)
    out_base = op_count * blen * mlen
    source = [f"addi r1, r0, {mlen}"]  # the row stride of every block
    tile = op = writeback = 0
    tile_at, transposed = 0, False
    for command in commands:
        if isinstance(command, LoadTile):
            tile_at, transposed = tile * mlen * mlen, command.transpose
            sim.matrix_sram.write(tile_at, weights[id(command)])
            tile += 1
        elif isinstance(command, TileOp):
            sim.vector_sram.write(op * blen * mlen, activations[id(command)])
            mnemonic = ("mmt" if transposed else "mm") + ("a" if command.accumulate else "")
            source += [f"addi r2, r0, {op * blen * mlen}", f"addi r3, r0, {tile_at}",
                       f"{mnemonic} r2, r1, r3, {command.acc}"]
            op += 1
        else:
            source += [f"addi r4, r0, {out_base + writeback * blen * mlen}", f"mwb r4, r1, {command.acc}"]
            writeback += 1
    assert tile == tile_count
    sim.load(assemble("\n".join(source + ["halt"])))
    with np.errstate(all="ignore"):
        sim.run(max_instructions=100_000)
    values = sim.vector_sram.read(out_base, writeback * blen * mlen)
    return numerics.encode(values, config.formats.vector).astype(np.uint64).reshape(-1, blen, mlen)


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
                   gaps: bool = True) -> Program:
    """A program of `tile_ops` mm / mma / mmt / mmta on fresh or reused tiles, write-backs in
    between and of every written accumulator at the end, with idle cycles sprinkled in. Each tile and activation block is drawn from the grid values
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
    return Program(commands, weights, activations)


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
    program = random_program(config, tile_ops, seed, edge_fraction)
    expected = reference(program, config)
    run = run_matrix_program(program.commands, matrix_parameters(config), simulator, defines)
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
        pytest.fail(f"{config.name} on {simulator}: {bad} of {expected.size} write-back elements differ, "
                    f"e.g.\n{rows}")


# ------------------------------------------------------------------------------------------------
# Arithmetic: 0 mismatches
# ------------------------------------------------------------------------------------------------

# The default tests share two builds: (BLEN, vector format, weight-tile rows per matrix SRAM
# access) at MLEN 4 with 2 accumulators - one-beat tile loads with bf16, one row per beat with fp32.
DEFAULT_SHAPES = [(2, "bf16", 4), (4, "fp32", 1)]


def default_config(shape: tuple[int, str, int]) -> NPUConfig:
    blen, vector, weight_rows = shape
    return small_config(4, blen, 2, vector, weight_rows)


@pytest.mark.parametrize("blen, vector, weight_rows", DEFAULT_SHAPES)
def test_tile_ops_and_writeback_match_hw_matmul_accumulate(blen, vector, weight_rows):
    assert_matches(small_config(4, blen, 2, vector, weight_rows), tile_ops=40, seed=blen)


@pytest.mark.parametrize("blen, vector, weight_rows", DEFAULT_SHAPES)
def test_the_reference_is_the_functional_simulator(blen, vector, weight_rows):
    """The tests' reference (hw_matmul_accumulate as npu/sim/functional/matrix.py applies it) gives
    the functional simulator's own write-backs, bit for bit, on the default programs."""
    config = default_config((blen, vector, weight_rows))
    program = random_program(config, tile_ops=40, seed=blen)
    expected, simulated = reference(program, config), functional_simulator_writebacks(program, config)
    assert len(mismatches(expected, simulated, vector)) == 0


def test_other_simulator_agrees():
    assert_matches(default_config(DEFAULT_SHAPES[1]), tile_ops=12, seed=11, simulator=OTHER_SIMULATOR)


def weight_streaming_program(config: NPUConfig, tiles: int, seed: int) -> Program:
    """The K loop of a matmul at full rate: every tile op on a new tile (mm, then mma / mmta into
    the same accumulator, transposes mixed in), each load issued as early as the array allows -
    the weight double buffer's hazard at its tightest - then the write-back. N(0, 1) values, so
    every product shows in the fp32 sums (one weight read from the wrong tile changes them)."""
    rng = np.random.default_rng(seed)
    commands: list[Command] = []
    weights, activations = {}, {}
    for k in range(tiles):
        values = rng.standard_normal((config.mlen, config.mlen)).astype(np.float32)
        load = LoadTile(numerics.encode(values, "bf16"), transpose=bool(rng.random() < 0.5))
        weights[id(load)] = values
        block = numerics.encode(rng.standard_normal((config.blen, config.mlen)).astype(np.float32),
                                config.formats.vector)
        tile_op = TileOp(block, acc=0, accumulate=k > 0)
        activations[id(tile_op)] = numerics.decode(block, config.formats.vector)
        commands += [load, tile_op]
    commands.append(WriteBack(0))
    return Program(commands, weights, activations)


def test_weight_switch_at_full_rate_keeps_the_old_tile_until_the_array_is_done_with_it():
    """Loads into the buffer the op before last still reads, as early as w_ready allows: a beat one
    cycle earlier overwrites a weight of the last column before that op's last row reaches it
    (checked: that variant of matrix_unit.v fails here)."""
    _require_simulator()
    config = default_config(DEFAULT_SHAPES[1])  # fp32 write-back: every bit of the sums shows
    program = weight_streaming_program(config, tiles=12, seed=21)
    expected = reference(program, config)
    run = run_matrix_program(program.commands, matrix_parameters(config))
    bad = mismatches(expected, run.writebacks, "fp32")
    assert len(bad) == 0, f"{len(bad)} of {expected.size} elements differ"


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


# ------------------------------------------------------------------------------------------------
# Timing: the RTL's cycle counts against the cycle model (npu.sim.cost.latency)
# ------------------------------------------------------------------------------------------------


def measure_timing(config: NPUConfig, simulator: str = SIMULATOR) -> dict[str, int]:
    """Cycle counts of matrix_unit, measured at its handshakes (see npu.rtl.matrix.MatrixRun):

    tile_op_occupancy   first rows of two back-to-back tile ops
    tile_op_first_write first row accepted -> first accumulator write (column 0, row 0)
    tile_op_latency     first row accepted -> the result readable (an mwb of it accepted)
    mwb_occupancy       two back-to-back mwb
    mwb_latency         mwb accepted -> its last row written (the cycle after it leaves)
    weight_load         beats of one weight-tile load
    weight_switch_wait  last row of an op -> first beat of the load that overwrites its buffer
    tile_stream_pair    cycles per two tile ops when every op has a new tile (the K loop at full
                        rate), in the steady state
    """
    mlen, blen = config.mlen, config.blen
    rng = np.random.default_rng(0)

    def tile() -> np.ndarray:
        return numerics.encode(rng.standard_normal((mlen, mlen)).astype(np.float32), "bf16")

    def rows() -> np.ndarray:
        return numerics.encode(rng.standard_normal((blen, mlen)).astype(np.float32), config.formats.vector)

    idle = 2 * mlen + blen + 4  # lets the array drain, so a command starts alone
    commands = [
        LoadTile(tile()),                                    # 0
        TileOp(rows(), 0, False, gap=idle),                  # 1  an isolated tile op
        WriteBack(0),                                        # 2  ... read as soon as it may be
        TileOp(rows(), 1, False, gap=idle),                  # 3  back-to-back ops
        TileOp(rows(), 1, True),                             # 4
        WriteBack(1, gap=idle),                              # 5  back-to-back write-backs
        WriteBack(0),                                        # 6
        LoadTile(tile(), gap=idle),                          # 7  the next tile
        TileOp(rows(), 0, False),                            # 8  (on tile 7's buffer)
        LoadTile(tile()),                                    # 9  overwrites tile 0's buffer:
        TileOp(rows(), 0, True),                             # 10 fine, op 4 is long done
        LoadTile(tile()),                                    # 11 overwrites the buffer op 8 reads
        TileOp(rows(), 0, True),                             # 12
    ]
    run = run_matrix_program(commands, matrix_parameters(config), simulator)
    beats = run.beats
    tiles = 8
    stream = run_matrix_program(weight_streaming_program(config, tiles, seed=1).commands,
                                matrix_parameters(config), simulator)
    op_starts = stream.beats[1:2 * tiles:2, 0]
    pairs = set((op_starts[4:] - op_starts[2:-2]).tolist())
    assert len(pairs) == 1, f"no steady state: tile ops start at {op_starts}"
    first_write = run.write_cycles[(run.write_cycles >= beats[1, 0]) & run.column_writes[:, 0]].min()
    return {
        "tile_op_occupancy": int(beats[4, 0] - beats[3, 0]),
        "tile_op_first_write": int(first_write - beats[1, 0]),
        "tile_op_latency": int(beats[2, 0] - beats[1, 0]),
        "mwb_occupancy": int(beats[6, 0] - beats[5, 0]),
        "mwb_latency": int(run.writeback_cycles[0, -1] + 1 - beats[2, 0]),
        "weight_load": int(beats[0, 1] - beats[0, 0] + 1),
        "weight_switch_wait": int(beats[11, 0] - beats[8, 1]),
        "tile_stream_pair": pairs.pop(),
    }


def model_timing(config: NPUConfig) -> dict[str, int]:
    """The same quantities from the cycle model (both simulators use these functions)."""
    tile_op, mwb = instruction_timing("mm", config), instruction_timing("mwb", config)
    return {
        "tile_op_occupancy": tile_op.occupancy,
        "tile_op_first_write": tile_op_first_result(config),
        "tile_op_latency": tile_op.latency,
        "mwb_occupancy": mwb.occupancy,
        "mwb_latency": mwb.latency,
        "weight_load": tile_op.weight_load_cycles,
        # the model lets the next tile load once the op that switched to the current one starts
        "weight_switch_wait": 1,
        # ... so a tile op per tile streams at its occupancy or the weight port's rate
        "tile_stream_pair": 2 * max(tile_op.occupancy, tile_op.weight_load_cycles),
    }


@pytest.mark.parametrize("blen, vector, weight_rows", DEFAULT_SHAPES)
def test_cycle_counts_match_the_cycle_model(blen, vector, weight_rows):
    """Occupancy, first write, mwb and weight-load cycles equal the cycle model's; the tile op's
    result latency differs by the stated amount (docs/rtl.md): the RTL has no 3-cycle tail but a
    column skew of MLEN - 1 cycles the model's MLEN fill/drain leaves out; at MLEN 4 they agree."""
    _require_simulator()
    mlen = 4
    config = small_config(mlen, blen, 2, vector, weight_rows)
    measured, model = measure_timing(config), model_timing(config)
    params = config.technology.latency
    for key in ("tile_op_occupancy", "tile_op_first_write", "mwb_occupancy", "mwb_latency", "weight_load"):
        assert measured[key] == model[key], f"{key}: RTL {measured[key]}, cycle model {model[key]}"
    assert measured["tile_op_latency"] == blen + 2 * mlen
    assert measured["tile_op_latency"] - model["tile_op_latency"] == (mlen - 1) - params.matrix_tail
    # Weight double buffer: a load into the buffer the op before last used waits until that op's
    # last row is done with the PEs the beat writes (its first beat: MLEN + WROWS - 1 cycles after
    # the row), where the model lets it start with the op before (docs/rtl.md quantifies it).
    # the driver's own earliest: beside the first row of the op after the load before it
    in_order = mlen // weight_rows - blen + 1
    assert measured["weight_switch_wait"] == max(in_order, mlen + weight_rows - 1)
    # Hence with a new tile for every op, two ops take BLEN + 2*MLEN - 1 cycles (the op before
    # last's last row, its wavefront through the array, the op) where that exceeds the model's.
    assert measured["tile_stream_pair"] == max(model["tile_stream_pair"], blen + 2 * mlen - 1)


# ------------------------------------------------------------------------------------------------
# Parameters, lint, synthesis
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset, expected", [
    ("dnpu-cloud", {"MLEN": 128, "BLEN": 16, "ACCUMULATORS": 8, "VEC_BITS": 16, "WROWS": 8}),
    ("dnpu-edge", {"MLEN": 64, "BLEN": 16, "ACCUMULATORS": 8, "VEC_BITS": 16, "WROWS": 4}),
])
def test_parameters_come_from_the_preset(preset, expected):
    assert matrix_parameters(load_npu_config(preset)) == expected


def test_a_preset_the_unit_cannot_build_is_refused_by_name():
    config = small_config()
    with pytest.raises(ValueError, match="matrix_sram.width_bits = 96"):
        matrix_parameters(dataclasses.replace(config, matrix_sram=dataclasses.replace(config.matrix_sram,
                                                                                      width_bits=96)))
    with pytest.raises(ValueError, match="blen = 3"):
        matrix_parameters(dataclasses.replace(config, blen=3))


LINT_SHAPES = [  # matrix_unit parameters: the default tests' sizes and corner shapes
    {"MLEN": 4, "BLEN": 2, "ACCUMULATORS": 2, "VEC_BITS": 16, "WROWS": 1},
    {"MLEN": 8, "BLEN": 1, "ACCUMULATORS": 3, "VEC_BITS": 32, "WROWS": 8},
]


@pytest.mark.parametrize("parameters", LINT_SHAPES, ids=lambda p: "-".join(map(str, p.values())))
def test_matrix_unit_is_verilator_lint_clean(parameters):
    result = verilator_lint(MATRIX_TOP, matrix_sources(), parameters)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("top", ["matrix_pe", "systolic_array", "matrix_accumulator"])
def test_matrix_building_blocks_are_verilator_lint_clean(top):
    result = verilator_lint(top, matrix_sources())
    assert result.returncode == 0, result.stdout + result.stderr


def _yosys_check(script: str, parameters: dict[str, int]) -> None:
    for binary in yosys_binaries():
        result = yosys(binary, MATRIX_TOP, matrix_sources(), script, parameters)
        assert result.returncode == 0, f"{binary}: {result.stdout[-3000:]}{result.stderr[-3000:]}"


def test_matrix_unit_synthesizes_in_yosys_without_latches():
    """Full `synth` at MLEN 4 (about 20 s): no latch cells, no undriven or multiply driven nets."""
    _yosys_check(SYNTHESIZE, matrix_parameters(small_config(4, 2, 2)))


@pytest.mark.slow
@pytest.mark.parametrize("mlen, blen, vector", [(16, 8, "fp32")])
def test_matrix_unit_elaborates_in_yosys_at_larger_sizes(mlen, blen, vector):
    _yosys_check(ELABORATE, matrix_parameters(small_config(mlen, blen, 4, vector, 2)))
