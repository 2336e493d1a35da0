"""The DMA codec RTL (npu/rtl/dma_codec.v) against the functional simulator's DMA semantics.

The codec converts one block of mx_block elements per cycle between SRAM values and the DRAM
bytes of every DRAM format of the ISA table, in both directions, with the smoothing multiply of
dldkv / dstkv and both MX scale rules. Each transaction is compared with what
npu/sim/functional/dma.py computes from npu.hw.rows and npu.hw.numerics: **0 mismatches**.
Stimuli per format: random rows with outlier blocks, all-zero blocks, block maxima on both sides
of every format's clipping threshold, exact rounding ties, NaN / inf blocks, subnormals, values
near the float32 limits, random bit patterns; decoding also takes every scale and element code.

NaN payloads: the kv multiply (fp32_mul) returns the canonical NaN, numpy's float32 multiply the
host CPU's NaN, so values that came through that multiply are compared as a class (NaN == NaN);
everything else bit for bit.

Default: 96 blocks per (format, direction, MX scale rule) - about 2,200 blocks in one simulation;
the other simulator runs 6 of each. `-m slow`: 3,200 blocks (102,400 values) per (format,
direction, rule), the mutation check and Yosys synthesis.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from npu.hw import numerics
from npu.hw.config import load_npu_config
from npu.hw.rows import decode_rows, encode_rows, row_bytes
from npu.isa.table import DRAM_FORMATS
from npu.rtl import DMA_CODEC_MODULES, DMA_CODEC_TOP, RTL_DIR, dma_codec_sources
from npu.rtl import sim as rtl_sim
from npu.rtl.generate import no_clip_fraction
from rtl_helpers import ELABORATE, SYNTHESIZE, verilator_lint, yosys, yosys_binaries

SIMULATOR = rtl_sim.default_simulator()
PRESET_BLOCK = load_npu_config("dnpu-cloud").mx_block  # the codec's BLOCK parameter, from the preset (32)
# The default suite simulates the same RTL with 8-element blocks: its Verilator build (cocotb
# makes every signal public) takes about 2 minutes instead of 9 at 32. The slow suite runs 32.
SMALL_BLOCK = 8
FORMAT_CODE = {name: code for code, name in enumerate(DRAM_FORMATS)}
MX_FORMATS = tuple(name for name in DRAM_FORMATS if name in numerics.MX_FORMATS)
PLAIN_FORMATS = tuple(name for name in DRAM_FORMATS if name not in numerics.MX_FORMATS)
# The cases a test checks: (format, direction, MX scale rule); the rule matters for MX stores only.
CASES = ([(fmt, "encode", rule) for fmt in MX_FORMATS for rule in numerics.MX_SCALE_RULES]
         + [(fmt, "encode", "ocp") for fmt in PLAIN_FORMATS]
         + [(fmt, "decode", "ocp") for fmt in DRAM_FORMATS])


def _f32(bits: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(bits, dtype=np.uint32).view(np.float32)


def _bits(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)


# ------------------------------------------------------------------------------------------------
# Stimuli
# ------------------------------------------------------------------------------------------------


def _outlier_rows(rng: np.random.Generator, n: int, block: int) -> np.ndarray:
    """Normal values at a random magnitude per block, a few lanes scaled up by 2^3..2^12."""
    x = rng.standard_normal((n, block)) * 2.0 ** rng.integers(-20, 21, (n, 1))
    lanes = rng.integers(0, block, (n, 3))
    factor = 2.0 ** rng.integers(3, 13, (n, 3)) * rng.uniform(1, 2, (n, 3))
    np.put_along_axis(x, lanes, np.take_along_axis(x, lanes, 1) * factor, 1)
    return _bits(x.astype(np.float32))


def _threshold_rows(rng: np.random.Generator, n: int, block: int) -> np.ndarray:
    """A block maximum with fraction f just below, at and above every format's no-clip threshold
    (and 0, 2^23 - 1), at a random binade; the other lanes smaller."""
    fractions = [0, 1, 2**22, 2**23 - 1]
    for fmt in MX_FORMATS:
        t = no_clip_fraction(fmt)
        fractions += [t - 1, t, t + 1]
    f = np.array(fractions)[rng.integers(0, len(fractions), n)]
    k = rng.integers(-60, 60, n)
    top = np.ldexp(1 + f / 2**23, k) * rng.choice([-1.0, 1.0], n)
    x = rng.uniform(-1, 1, (n, block)) * np.ldexp(1.0, k)[:, None]
    x[np.arange(n), rng.integers(0, block, n)] = top
    return _bits(x.astype(np.float32))


def _tie_rows(rng: np.random.Generator, n: int, block: int, fmt: str) -> np.ndarray:
    """Exact rounding ties of `fmt`'s element grid: midpoints between neighbouring element values
    below the block maximum 2^(e + emax), so that the shared exponent is e."""
    f = numerics.get_format(fmt)
    grid = np.unique(np.abs(numerics.decode_table(f)[np.isfinite(numerics.decode_table(f))]))
    grid = grid[grid <= 2.0**f.emax]
    midpoints = (grid[:-1] + grid[1:]) / 2
    e = rng.integers(-40, 40, n)
    x = midpoints[rng.integers(0, len(midpoints), (n, block))] * rng.choice([-1.0, 1.0], (n, block))
    x[np.arange(n), rng.integers(0, block, n)] = 2.0**f.emax
    return _bits(np.ldexp(x, e[:, None]).astype(np.float32))


def _special_rows(rng: np.random.Generator, n: int, block: int) -> np.ndarray:
    """Outlier rows with one lane NaN (random payload and sign), +inf or -inf."""
    x = _outlier_rows(rng, n, block)
    nan = 0x7F800000 | rng.integers(1, 1 << 23, n, dtype=np.uint32) | (rng.integers(0, 2, n, dtype=np.uint32) << 31)
    special = np.where(rng.integers(0, 3, n) == 0, 0x7F800000, np.where(rng.integers(0, 2, n) == 0, 0xFF800000, nan))
    x[np.arange(n), rng.integers(0, block, n)] = special
    return x


def _subnormal_rows(rng: np.random.Generator, n: int, block: int) -> np.ndarray:
    """Subnormal blocks, subnormals mixed with the smallest normals, and maxima in [2^-127, 2^-126)."""
    x = rng.integers(0, 1 << 32, (n, block), dtype=np.uint32) & np.uint32(0x807FFFFF)
    mixed = rng.integers(0, 2, (n, block)).astype(bool) & (rng.integers(0, 2, (n, 1)) == 1)
    x = np.where(mixed, x | (rng.integers(1, 12, (n, block), dtype=np.uint32) << 23), x)
    top = (rng.integers(0, 3, n) == 0)
    x[top, 0] = np.uint32(0x00400000) | rng.integers(0, 1 << 22, top.sum(), dtype=np.uint32)
    return x


def _extreme_rows(rng: np.random.Generator, n: int, block: int) -> np.ndarray:
    """Values near float32's largest (exponent fields 240-254, 0x7F7FFFFF), zeros of both signs."""
    x = (rng.integers(0, 1 << 23, (n, block), dtype=np.uint32)
         | (rng.integers(240, 255, (n, block), dtype=np.uint32) << 23)
         | (rng.integers(0, 2, (n, block), dtype=np.uint32) << 31))
    x[:, 0] = np.uint32(0x7F7FFFFF)
    zero = rng.integers(0, 4, n) == 0
    x[zero] = rng.integers(0, 2, (zero.sum(), block), dtype=np.uint32) << 31  # +-0 blocks
    return x


def _random_rows(rng: np.random.Generator, n: int, block: int) -> np.ndarray:
    """Random float32 patterns (some blocks therefore NaN / inf) and random bf16 patterns."""
    full = rng.integers(0, 1 << 32, (n, block), dtype=np.uint32)
    bf16 = rng.integers(0, 1 << 16, (n, block), dtype=np.uint32) << 16
    return np.where(rng.integers(0, 2, (n, 1)) == 1, full, bf16).astype(np.uint32)


def sram_rows(fmt: str, n: int, block: int, rng: np.random.Generator) -> np.ndarray:
    """n blocks of SRAM values (float32 bits) to encode in `fmt`, every category in turn."""
    if fmt == "int32":
        return rng.integers(0, 1 << 32, (n, block), dtype=np.uint32)
    makers = [_outlier_rows, _threshold_rows, _special_rows, _subnormal_rows, _extreme_rows, _random_rows]
    if fmt in MX_FORMATS:
        makers.append(lambda r, m, b: _tie_rows(r, m, b, fmt))
    if fmt == "bf16":  # exact bf16 ties and their neighbours
        makers.append(lambda r, m, b: (r.integers(0, 1 << 16, (m, b), dtype=np.uint32) << 16)
                      | r.choice(np.array([0x8000, 0x7FFF, 0x8001], np.uint32), (m, b)))
    counts = np.full(len(makers), n // len(makers))
    counts[: n % len(makers)] += 1
    rows = np.concatenate([make(rng, int(c), block) for make, c in zip(makers, counts)])
    return rows[rng.permutation(n)]


def dram_rows(fmt: str, n: int, block: int, rng: np.random.Generator) -> np.ndarray:
    """n blocks of DRAM bytes to decode: every scale code (0, 254, 0xFF more often) with random
    element codes, and blocks the encoder wrote from the SRAM stimuli."""
    raw = rng.integers(0, 256, (n, 4 * block), dtype=np.uint8)
    size = row_bytes(fmt, block, block)
    if fmt in MX_FORMATS:
        scales = rng.integers(0, 256, n)
        scales = np.where(rng.integers(0, 4, n) == 0, rng.choice([0, 1, 127, 253, 254, 255], n), scales)
        raw[:, 0] = scales
        written = rng.integers(0, 3, n) == 0  # a third: real blocks of the encoder
        rule = rng.choice(numerics.MX_SCALE_RULES)
        raw[written, :size] = encode_rows(_f32(sram_rows(fmt, int(written.sum()), block, rng)), fmt, block, rule)
    raw[:, size:] = 0
    return raw


def scale_rows(n: int, block: int, rng: np.random.Generator) -> np.ndarray:
    """Smoothing factors: powers of two (vsmscale p2aNN), other positive values, and a few lanes
    of 0, -0, subnormals, inf and NaN."""
    pow2 = np.ldexp(1.0, rng.integers(-12, 13, (n, block))).astype(np.float32)
    other = rng.uniform(0.01, 100.0, (n, block)).astype(np.float32)
    x = _bits(np.where(rng.integers(0, 2, (n, 1)) == 1, pow2, other))
    odd = rng.integers(0, 16, (n, block)) == 0
    specials = np.array([0, 0x80000000, 0x00012345, 0x7F800000, 0x7FC00000, 0xBF800000], np.uint32)
    return np.where(odd, rng.choice(specials, (n, block)), x).astype(np.uint32)


def batch(blocks: int, seed: int, block: int) -> dict[str, np.ndarray]:
    """`blocks` transactions for every case of CASES, in a shuffled stream; a third use kv, the
    decodes pick a bf16 or fp32 target SRAM at random. Returns the codec's input files plus
    `case`, the index into CASES of each transaction."""
    rng = np.random.default_rng(seed)
    parts = []
    for index, (fmt, direction, rule) in enumerate(CASES):
        n = blocks
        control = np.zeros((n, 5), np.uint8)  # store, fmt, no_clip, kv, bf16_sram
        control[:, 0] = direction == "encode"
        control[:, 1] = FORMAT_CODE[fmt]
        control[:, 2] = rule == "no_clip" if fmt in MX_FORMATS else rng.integers(0, 2, n)  # no effect
        control[:, 3] = (rng.integers(0, 3, n) == 0) & (fmt != "int32")
        control[:, 4] = rng.integers(0, 2, n) if direction == "decode" else 0
        sram = sram_rows(fmt, n, block, rng) if direction == "encode" else \
            rng.integers(0, 1 << 32, (n, block), dtype=np.uint32)
        dram = dram_rows(fmt, n, block, rng) if direction == "decode" else \
            rng.integers(0, 256, (n, 4 * block), dtype=np.uint8)
        parts.append({"control": control, "sram": sram, "scale": scale_rows(n, block, rng), "dram": dram,
                      "case": np.full(n, index)})
    order = rng.permutation(sum(len(p["case"]) for p in parts))
    return {name: np.concatenate([p[name] for p in parts])[order] for name in parts[0]}


# ------------------------------------------------------------------------------------------------
# The reference: what the functional simulator's DMA does (npu/sim/functional/dma.py)
# ------------------------------------------------------------------------------------------------


def expected(inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """DRAM bytes of each store and SRAM values of each load, as dma.py computes them: a store
    encodes values (x hw_recip(scale) for kv) with encode_rows and the MX scale rule; a load
    decodes with decode_rows, multiplies by the scale row for kv, and rounds to the SRAM format."""
    control = inputs["control"]
    n, block = inputs["sram"].shape
    dram_out = np.zeros((n, 4 * block), np.uint8)
    sram_out = np.zeros((n, block), np.uint32)
    keys = {tuple(row) for row in control.tolist()}
    with np.errstate(all="ignore"):
        for key in keys:
            store, code, no_clip, kv, bf16_sram = key
            fmt = DRAM_FORMATS[code]
            rows = np.flatnonzero((control == np.array(key, np.uint8)).all(axis=1))
            scale = _f32(inputs["scale"][rows])
            if store:
                if fmt == "int32":
                    values = inputs["sram"][rows].view(np.int32)
                else:
                    values = _f32(inputs["sram"][rows])
                    if kv:
                        values = values * numerics.hw_recip(scale)
                rule = "no_clip" if no_clip else "ocp"
                raw = encode_rows(values, fmt, block, rule if fmt in MX_FORMATS else "ocp")
                dram_out[rows, :raw.shape[1]] = raw
            else:
                raw = inputs["dram"][rows, :row_bytes(fmt, block, block)]
                values = decode_rows(raw, fmt, block, block)
                if fmt == "int32":
                    sram_out[rows] = values.view(np.uint32)
                    continue
                if kv:
                    values = values * scale
                if bf16_sram:
                    values = numerics.round_to_format(values, "bf16")
                sram_out[rows] = _bits(values)
    return dram_out, sram_out


def _is_nan32(bits: np.ndarray) -> np.ndarray:
    return ((bits & 0x7F800000) == 0x7F800000) & ((bits & 0x007FFFFF) != 0)


def mismatches(inputs: dict[str, np.ndarray], dram_out: np.ndarray, sram_out: np.ndarray) -> np.ndarray:
    """Per transaction: True where the RTL differs from the reference (NaN as a class where the
    value came through the kv multiply: fp32 stores and loads with kv)."""
    want_dram, want_sram = expected(inputs)
    control = inputs["control"]
    store, kv = control[:, 0] == 1, control[:, 3] == 1
    fp32 = control[:, 1] == FORMAT_CODE["fp32"]
    got_words, want_words = dram_out.view("<u4"), want_dram.view("<u4")
    same_store = (dram_out == want_dram).all(axis=1)
    nan_class = (got_words == want_words) | (_is_nan32(got_words) & _is_nan32(want_words))
    same_store = np.where(fp32 & kv, nan_class.all(axis=1), same_store)
    same_load = (sram_out == want_sram) | (kv[:, None] & _is_nan32(sram_out) & _is_nan32(want_sram))
    return np.where(store, ~same_store, ~same_load.all(axis=1))


# ------------------------------------------------------------------------------------------------
# Simulation
# ------------------------------------------------------------------------------------------------


def _require_simulator(simulator: str) -> None:
    reason = rtl_sim.missing_tool(simulator)
    if reason:
        pytest.skip(reason)


def simulate(inputs: dict[str, np.ndarray], simulator: str, defines: dict | None = None) -> dict[str, np.ndarray]:
    """Stream the transactions through dma_codec (BLOCK = the inputs' block) in one simulation."""
    _require_simulator(simulator)
    build = rtl_sim.build_design(DMA_CODEC_TOP, dma_codec_sources(), simulator,
                                 parameters={"BLOCK": inputs["sram"].shape[1]}, defines=defines)
    files = {name: inputs[name] for name in ("control", "sram", "scale", "dram")}
    return rtl_sim.run_cocotb(DMA_CODEC_TOP, build, "npu.rtl.cocotb_dma", simulator, files=files,
                              outputs=("dram_out", "sram_out", "cycles"))


@functools.lru_cache(maxsize=None)
def _run(blocks: int, seed: int, block: int, simulator: str) -> tuple[dict[str, np.ndarray], np.ndarray, int]:
    inputs = batch(blocks, seed, block)
    out = simulate(inputs, simulator)
    return inputs, mismatches(inputs, out["dram_out"], out["sram_out"]), int(out["cycles"])


def check_case(case: tuple[str, str, str], blocks: int, seed: int, block: int,
               simulator: str = SIMULATOR) -> None:
    inputs, bad, _ = _run(blocks, seed, block, simulator)
    mine = inputs["case"] == CASES.index(case)
    assert mine.sum() == blocks
    failed = np.flatnonzero(mine & bad)
    if len(failed):
        examples = "\n".join(f"  control {inputs['control'][i].tolist()}" for i in failed[:5])
        pytest.fail(f"{case} on {simulator}, BLOCK {block}: {len(failed)} of {blocks} blocks differ, e.g.\n{examples}")


def _case_id(case: tuple[str, str, str]) -> str:
    fmt, direction, rule = case
    return f"{direction}-{fmt}" + ("-no_clip" if rule == "no_clip" else "")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_codec_matches_the_dma_semantics(case):
    """96 blocks of 8 per case, all cases streamed through one simulation."""
    check_case(case, 96, seed=1, block=SMALL_BLOCK)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_other_simulator_agrees(case):
    """The simulator DNPU_RTL_SIM did not pick runs 6 blocks per case, so both stay usable."""
    other = next(s for s in rtl_sim.SIMULATORS if s != SIMULATOR)
    check_case(case, 6, seed=2, block=SMALL_BLOCK, simulator=other)


def test_codec_streams_one_block_per_cycle_with_latency_two():
    """Latency 2, one block per cycle: the last of n blocks driven back to back comes out 2
    cycles after it went in, n - 1 + 2 cycles after the first went in."""
    inputs, _, cycles = _run(96, 1, SMALL_BLOCK, SIMULATOR)
    assert cycles == len(inputs["case"]) - 1 + 2


def test_stimuli_reach_the_cases_they_are_meant_for():
    """The stimuli are not vacuous: OCP clips some blocks the no-clip rule does not, some blocks
    are NaN blocks, all-zero, or have subnormal maxima, and decoding sees the NaN scale."""
    inputs = batch(96, seed=1, block=SMALL_BLOCK)
    for fmt in MX_FORMATS:
        rows = _f32(inputs["sram"][inputs["case"] == CASES.index((fmt, "encode", "ocp"))])
        ocp = numerics.mx_quantize(rows, fmt, SMALL_BLOCK).scales
        no_clip = numerics.mx_quantize(rows, fmt, SMALL_BLOCK, scale_rule="no_clip").scales
        assert (ocp != no_clip).sum() >= 2, fmt
        assert (ocp == numerics.E8M0_NAN).sum() >= 5, fmt
        assert (ocp == 0).sum() >= 3, fmt  # all-zero or clamped-small blocks
        decode = inputs["dram"][inputs["case"] == CASES.index((fmt, "decode", "ocp"))]
        assert (decode[:, 0] == numerics.E8M0_NAN).sum() >= 3, fmt


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_codec_matches_the_dma_semantics_on_100k_values(case):
    """The preset's block (32): 3,200 blocks = 102,400 values per case, in one simulation."""
    check_case(case, 3200, seed=3, block=PRESET_BLOCK)


@pytest.mark.slow
def test_flipping_a_rounding_bit_of_the_mx_element_encoder_is_caught():
    """DNPU_MUTANT_MX_ROUND makes the element rounding round half up (rne_shift_right): the same
    comparison must then report mismatched MX stores (the tie stimuli hit it)."""
    inputs = batch(48, seed=4, block=SMALL_BLOCK)
    out = simulate(inputs, SIMULATOR, defines={"DNPU_MUTANT_MX_ROUND": 1})
    bad = mismatches(inputs, out["dram_out"], out["sram_out"])
    for fmt in MX_FORMATS:
        case = CASES.index((fmt, "encode", "ocp"))
        assert bad[inputs["case"] == case].sum() > 0, f"the mutant went unnoticed on {fmt}"


# ------------------------------------------------------------------------------------------------
# Lint, synthesis, constants
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", DMA_CODEC_MODULES)
def test_codec_module_is_verilator_lint_clean(module):
    parameters = {"BLOCK": PRESET_BLOCK} if module == DMA_CODEC_TOP else None
    result = verilator_lint(module, dma_codec_sources(), parameters)
    assert result.returncode == 0, result.stdout + result.stderr


def test_codec_elaborates_in_yosys_without_latches():
    for binary in yosys_binaries():
        result = yosys(binary, DMA_CODEC_TOP, dma_codec_sources(), ELABORATE, {"BLOCK": PRESET_BLOCK})
        assert result.returncode == 0, f"{binary}: {result.stdout[-3000:]}{result.stderr[-3000:]}"


@pytest.mark.slow
@pytest.mark.parametrize("block", [SMALL_BLOCK, PRESET_BLOCK])
def test_codec_synthesizes_in_yosys_without_latches(block):
    for binary in yosys_binaries():
        result = yosys(binary, DMA_CODEC_TOP, dma_codec_sources(), SYNTHESIZE, {"BLOCK": block})
        assert result.returncode == 0, f"{binary}: {result.stdout[-3000:]}{result.stderr[-3000:]}"


def test_every_dram_format_of_the_isa_table_has_a_case_in_the_codec():
    """A format added to DRAM_FORMATS must reach the codec: its code constant is used there."""
    source = (RTL_DIR / "dma_codec.v").read_text()
    for name in DRAM_FORMATS:
        assert f"`DNPU_FMT_{name.upper()}" in source, name
        if name in MX_FORMATS:
            assert f"`DNPU_MX_{name.upper()}_BITS" in source, name


def test_no_clip_thresholds_are_where_the_rule_steps_up():
    """The generated NO_CLIP_FRACTION constants against numerics: one below does not step up,
    at the constant it does (block maximum (1 + f / 2^23) x 2^emax)."""
    for fmt in MX_FORMATS:
        f = numerics.get_format(fmt)
        t = no_clip_fraction(fmt)
        amax = np.array([(1 + (t - 1) / 2**23) * 2.0**f.emax, (1 + t / 2**23) * 2.0**f.emax])
        steps = numerics.mx_shared_exponent(amax, fmt, "no_clip") - numerics.mx_shared_exponent(amax, fmt)
        assert steps.tolist() == [0, 1], fmt
