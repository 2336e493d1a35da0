"""The functional simulator executes each instruction class as specified, bit-exact with numerics."""

import dataclasses

import numpy as np
import pytest

from npu.hw import numerics
from npu.hw.config import load_npu_config
from npu.isa.assembler import assemble
from npu.isa.encoding import encode
from npu.hw.numerics import smoothing_factor
from npu.isa.table import BY_MNEMONIC, INSTRUCTIONS, Unit
from npu.sim.functional import FunctionalSimulator, SimulationError
from npu.sim.functional.simulator import HANDLERS_BY_UNIT, UnknownInstructionError, handler_builder

EDGE = load_npu_config("dnpu-edge")  # vlen 64, mlen 64, blen 8, bf16 vector SRAM, mx_block 32
VLEN = EDGE.vlen
rng = np.random.default_rng(0)


def bf16(x):
    return numerics.round_to_format(np.asarray(x, dtype=np.float32), "bf16")


def run(source, sim=None, **options):
    sim = sim or FunctionalSimulator(EDGE, dram_size=1 << 18, **options)
    sim.load(assemble(source))
    return sim, sim.run(max_instructions=200_000)


# ---- handler tables --------------------------------------------------------------------------

def test_every_isa_instruction_has_exactly_one_handler_in_the_table_of_its_unit():
    for spec in INSTRUCTIONS:
        owners = [unit for unit, table in HANDLERS_BY_UNIT.items() if spec.mnemonic in table]
        assert owners == [spec.unit], spec.mnemonic
        assert handler_builder(spec) is HANDLERS_BY_UNIT[spec.unit][spec.mnemonic]
    handled = [mnemonic for table in HANDLERS_BY_UNIT.values() for mnemonic in table]
    assert sorted(handled) == sorted(BY_MNEMONIC)  # and none for an instruction the ISA lacks


def test_every_isa_instruction_decodes_into_a_handler():
    words = [encode(spec.mnemonic, **{operand.name: 0 for operand in spec.fields}) for spec in INSTRUCTIONS]
    sim = FunctionalSimulator(EDGE, dram_size=1 << 12)
    sim.load(words)
    assert [ins.mnemonic for ins in sim.decoded_instructions] == [spec.mnemonic for spec in INSTRUCTIONS]
    assert all(callable(sim.handler(pc)) for pc in range(len(words)))


def test_an_instruction_without_a_handler_is_a_named_error():
    with pytest.raises(UnknownInstructionError, match="vector unit has no handler for `vfancy`"):
        handler_builder(dataclasses.replace(BY_MNEMONIC["vadd"], mnemonic="vfancy"))
    with pytest.raises(UnknownInstructionError, match="scalar unit has no handler for `vadd`"):
        handler_builder(dataclasses.replace(BY_MNEMONIC["vadd"], unit=Unit.SCALAR))


# ---- scalar ----------------------------------------------------------------------------------

def test_integer_alu_wraps_to_32_bits_and_r0_stays_zero():
    sim, _ = run("""
        lui  r1, 0x7fff
        ori  r1, r1, 0xffff      # 2^31 - 1
        addi r2, r1, 1           # wraps to -2^31
        addi r0, r0, 5           # dropped
        srai r4, r2, 4
        srli r5, r2, 28
        mul  r6, r1, r1
        slt  r7, r2, r1
        sltu r8, r2, r1
        sub  r9, r0, r1
        halt
    """)
    r = sim.int_reg
    assert r(1) == 2**31 - 1 and r(2) == -(2**31) and r(0) == 0
    assert r(4) == -(2**27) and r(5) == 8 and r(6) == 1
    assert (r(7), r(8), r(9)) == (1, 0, -(2**31 - 1))


def test_scalar_fp_uses_the_shared_approximations_and_rounds_half_to_even():
    sim, _ = run("""
        flui f0, 3.0
        frecip f1, f0
        fexp f2, f0
        flui f3, 2.5
        fcvt.i.f r1, f3
        addi r2, r0, -7
        fcvt.f.i f4, r2
        fmv.i.f r3, f0
        flt r4, f4, f0
        halt
    """)
    three = np.array([3.0], dtype=np.float32)
    assert sim.fp_reg(1) == numerics.hw_recip(three)[0]
    assert sim.fp_reg(2) == numerics.hw_exp(three)[0]
    assert sim.int_reg(1) == 2 and sim.fp_reg(4) == -7.0
    assert sim.int_reg(3) == 0x40400000 and sim.int_reg(4) == 1


def test_specialised_scalar_handlers_and_memoised_functions_match_the_generic_ones(monkeypatch):
    """addi/add/sub/aadd/aaddi without the operation lambdas, and fexp/frecip/frsqrt remembered
    by input bits: the same registers (wrapped to 32 / 64 bits, r0 untouched, -0.0 kept apart)."""
    from npu.sim.functional import scalar as scalar_unit

    source = """
        lui  r1, 0x7fff
        ori  r1, r1, 0xffff      # 2^31 - 1
        addi r2, r1, 1           # wraps to -2^31
        addi r3, r2, -1          # wraps back to 2^31 - 1
        add  r4, r1, r1          # wraps
        sub  r5, r2, r1          # wraps
        add  r0, r1, r1          # dropped
        addi r0, r0, 7           # dropped
        sub  r6, r0, r2
        aaddi a1, a0, -5         # wraps to 2^64 - 5
        aadd a2, a1, r1
        aadd a3, a2, r2
        flui f0, 3.0
        flui f5, -0.0
        loopi 3, again           # the functions see the same inputs again (remembered results)
        fexp f1, f0
        frecip f2, f0
        frsqrt f3, f0
        frecip f4, f5            # -0.0 -> -inf, not the +inf of +0.0
        frecip f6, f7            # +0.0 -> +inf, then another input per iteration
        fexp f7, f2
        again:
        halt
    """
    results = []
    for fast in (True, False):
        monkeypatch.setattr(scalar_unit, "SPECIALISED_SCALAR", fast)
        monkeypatch.setattr(scalar_unit, "MEMOISED_UNARY", fast)
        sim, _ = run(source, check_sync=False)  # unwrapped handlers, to see which ran
        names = {sim.handler(pc).__name__ for pc in range(len(sim.decoded_instructions))}
        assert ({"addi", "add", "sub", "aadd", "aaddi", "unary_memoised"} <= names) == fast
        results.append((list(sim.int_regs[:16]), list(sim.addr_regs),
                        [np.float32(f).tobytes() for f in sim.fp_regs]))
    assert results[0] == results[1]
    int_regs, addr_regs, _ = results[0]
    assert int_regs[2:7] == [-(2**31), 2**31 - 1, -2, 1, -(2**31)] and int_regs[0] == 0
    assert addr_regs[1:4] == [2**64 - 5, 2**31 - 6, 2**64 - 6]
    assert sim.fp_reg(4) == -np.inf


def test_scalar_sram_words_and_address_registers():
    sim, _ = run("""
        addi r1, r0, 42
        sw   r1, 5(r0)
        lw   r2, 5(r0)
        flui f0, -1.5
        fsw  f0, 3(r2)
        flw  f1, 45(r0)
        addi r3, r0, 1
        addi r4, r0, 256
        aset a1, r3, r4          # 2^32 + 256
        amac a2, a1, r1, r4      # + 42 * 256
        halt
    """)
    assert sim.int_reg(2) == 42 and sim.fp_reg(1) == -1.5
    assert sim.addr_regs[1] == 2**32 + 256 and sim.addr_regs[2] == 2**32 + 256 + 42 * 256


# ---- DMA -------------------------------------------------------------------------------------

def test_dma_strided_load_and_store_convert_formats():
    sim = FunctionalSimulator(EDGE, dram_size=1 << 18)
    x = rng.normal(size=(4, 128)).astype(np.float32)
    sim.dram.write(0, x, "fp32")
    run("""
        addi r1, r0, 4       # rows
        addi r2, r0, 64      # cols: the right half of each row
        addi r3, r0, 512     # DRAM row stride in bytes (128 fp32)
        addi r4, r0, 128     # SRAM row stride in elements
        addi r5, r0, 256
        amov a0, r5          # DRAM byte 256 = column 64 of row 0
        dld.v a0, r0, r1, r2, r3, r4, fp32
        wait dma
        addi r6, r0, 0x2000
        amov a1, r6
        addi r7, r0, 256     # mxint4 row of 64: 2 blocks x 17 bytes = 34 bytes; use stride 256
        dst.v a1, r0, r1, r2, r7, r4, mxint4
        halt
    """, sim)
    loaded = sim.vector_sram.read(0, 4 * 128).reshape(4, 128)[:, :64]
    np.testing.assert_array_equal(loaded, bf16(x[:, 64:]))
    for row in range(4):
        stored = sim.dram.read(0x2000 + row * 256, 64, "mxint4")
        np.testing.assert_array_equal(stored, numerics.mx_round(bf16(x[row, 64:]), "mxint4", 32))


def test_dma_dequantises_mx_weights_into_matrix_sram_as_bf16():
    sim = FunctionalSimulator(EDGE, dram_size=1 << 18)
    w = rng.normal(size=(2, 64)).astype(np.float32)
    sim.dram.write(0, w, "mxfp8_e4m3")
    run("""
        addi r1, r0, 2
        addi r2, r0, 64
        addi r3, r0, 66      # 2 blocks x (1 scale + 32 codes)
        dld.m a0, r0, r1, r2, r3, r2, mxfp8_e4m3
        halt
    """, sim)
    expected = bf16(numerics.mx_round(w, "mxfp8_e4m3", 32))
    np.testing.assert_array_equal(sim.matrix_sram.read(0, 128).reshape(2, 64), expected)


# ---- vector unit -----------------------------------------------------------------------------

def test_vector_elementwise_special_functions_and_reductions_match_numerics():
    sim = FunctionalSimulator(EDGE, dram_size=1 << 16)
    x, y = bf16(rng.normal(size=VLEN) * 3), bf16(rng.normal(size=VLEN))
    sim.vector_sram.write(0, x)
    sim.vector_sram.write(64, y)
    ops = ["vadd", "vmul", "vmax", "vge"]
    unary = ["vexp", "vrecip", "vsilu"]
    lines = ["addi r1, r0, 0", "addi r2, r0, 64"]
    for i, op in enumerate(ops):
        lines += [f"addi r3, r0, {128 + 64 * i}", f"{op} r3, r1, r2"]
    for i, op in enumerate(unary):
        lines += [f"addi r3, r0, {512 + 64 * i}", f"{op} r3, r1"]
    lines += ["flui f1, 0.5", "addi r3, r0, 768", "vmuls r3, r1, f1",
              "addi r3, r0, 832", "vrothalf r3, r1, 4",
              "vsum f2, r1", "vmaxr f3, r1", "wait vector", "halt"]
    run("\n".join(lines), sim)
    expected = [x + y, x * y, np.maximum(x, y), (x >= y).astype(np.float32),
                numerics.hw_exp(x), numerics.hw_recip(x), numerics.hw_silu(x), x * np.float32(0.5)]
    for i, want in enumerate(expected[:4]):
        np.testing.assert_array_equal(sim.vector_sram.read(128 + 64 * i, VLEN), bf16(want))
    for i, want in enumerate(expected[4:7]):
        np.testing.assert_array_equal(sim.vector_sram.read(512 + 64 * i, VLEN), bf16(want))
    np.testing.assert_array_equal(sim.vector_sram.read(768, VLEN), bf16(expected[7]))
    groups = x.reshape(-1, 16)
    rotated = np.concatenate([-groups[:, 8:], groups[:, :8]], axis=1).reshape(-1)
    np.testing.assert_array_equal(sim.vector_sram.read(832, VLEN), rotated)
    assert sim.fp_reg(2) == numerics.hw_tree_sum(x) and sim.fp_reg(3) == x.max()


def test_running_argmax_over_chunks_handles_all_negative_logits_and_ties():
    sim = FunctionalSimulator(EDGE, dram_size=1 << 16)
    logits = -50.0 - rng.random(3 * VLEN).astype(np.float32)
    logits[70] = logits[150] = -1.0           # tie across chunks: the lower index wins
    sim.vector_sram.write(0, logits)
    run("""
        flui f0, -inf
        addi r1, r0, 0        # chunk address == vocabulary offset here
        loopi 3, done
        vargmax f0, r2, r1, r1
        addi r1, r1, 64
    done:
        wait vector
        halt
    """, sim)
    assert sim.int_reg(2) == 70 and sim.fp_reg(0) == -1.0


def topk_program(n, k_reg_value):
    """Top-k over n positions: conf at 0.., elig at 1024.., mask at 2048.., ranks in INT SRAM 0.."""
    chunks = n // VLEN
    lines = ["flui f0, -inf", "flui f1, 0.0", "addi r10, r0, 4096", "vbcast r10, f0",
             "addi r11, r0, 4160", "vbcast r11, f1", f"addi r9, r0, {k_reg_value}"]
    for c in range(chunks):
        lines += [f"addi r1, r0, {c * VLEN}", f"addi r2, r0, {1024 + c * VLEN}",
                  "vsel r1, r1, r10, r2",       # ineligible -> -inf
                  "vsti r1, r11"]               # zero ranks (r1 holds c*VLEN: INT SRAM address)
    for c in range(chunks):
        for o in range(chunks):
            lines += [f"addi r1, r0, {c * VLEN}", f"addi r3, r0, {o * VLEN}", "vrank r1, r1, r3"]
    for c in range(chunks):
        lines += [f"addi r1, r0, {c * VLEN}", f"addi r2, r0, {1024 + c * VLEN}",
                  f"addi r4, r0, {2048 + c * VLEN}", "vtopk r4, r1, r2, r9"]
    return "\n".join(lines + ["halt"])


def test_topk_mask_over_more_than_vlen_positions_breaks_ties_by_lowest_position():
    n, k = 2 * VLEN, 9
    sim = FunctionalSimulator(EDGE, dram_size=1 << 16)
    conf = bf16(rng.choice([0.25, 0.5, 0.75, 0.875], size=n))   # many exact ties
    elig = (rng.random(n) < 0.6).astype(np.float32)
    sim.vector_sram.write(0, conf)
    sim.vector_sram.write(1024, elig)
    run(topk_program(n, k), sim)
    candidates = [i for i in range(n) if elig[i]]
    chosen = sorted(candidates, key=lambda i: (-conf[i], i))[:k]
    expected = np.zeros(n, dtype=np.float32)
    expected[chosen] = 1.0
    np.testing.assert_array_equal(sim.vector_sram.read(2048, n), expected)


THRESHOLD_PROGRAM = """
    .const TAU 0.875
    flui f5, TAU
    flui f1, 0.0
    addi r1, r0, 0           # conf
    addi r2, r0, 1024        # elig
    addi r3, r0, 2048        # mask
    vthresh r3, r1, r2, f5
    vsum f1, r3
    wait vector
    flui f2, 0.0
    feq r4, f1, f2
    beq r4, r0, done         # at least one passed: keep the threshold mask
    flui f3, -inf            # else commit the top-1 eligible position
    addi r6, r0, 192
    vbcast r6, f3
    addi r7, r0, 256
    vsel r7, r1, r6, r2      # confidence where eligible, -inf elsewhere
    addi r8, r0, 320
    vbcast r8, f2
    addi r5, r0, 3000        # rank words in INT SRAM
    vsti r5, r8
    vrank r5, r7, r7
    addi r9, r0, 1
    vtopk r3, r5, r2, r9
done:
    halt
"""


@pytest.mark.parametrize("top, expected_positions", [(0.9375, [3, 17]), (0.75, [17])])
def test_threshold_select_commits_at_least_one_position(top, expected_positions):
    sim = FunctionalSimulator(EDGE, dram_size=1 << 16)
    conf = np.full(VLEN, 0.25, dtype=np.float32)
    conf[[3, 17, 40]] = [top, top, 1.0]
    elig = np.ones(VLEN, dtype=np.float32)
    elig[40] = 0.0
    if top < 0.875:
        conf[3] = 0.5
    sim.vector_sram.write(0, conf)
    sim.vector_sram.write(1024, elig)
    sim.vector_sram.write(4096, conf)
    run(THRESHOLD_PROGRAM, sim)
    assert list(np.flatnonzero(sim.vector_sram.read(2048, VLEN))) == expected_positions


def test_masked_integer_select_commits_token_ids_without_touching_fp_data():
    sim = FunctionalSimulator(EDGE, dram_size=1 << 16)
    mask_id, big = 126336, 126463
    tokens = np.full(VLEN, mask_id, dtype=np.int32)
    tokens[:5] = [7, 8, 9, 10, 11]
    x0 = np.full(VLEN, big, dtype=np.int32)
    commit = np.zeros(VLEN, dtype=np.float32)
    commit[[5, 6, 30]] = 1.0
    sim.int_sram.write(0, tokens)
    sim.int_sram.write(64, x0)
    sim.vector_sram.write(0, commit)
    run(f"""
        lui r9, {mask_id >> 16}
        ori r9, r9, {mask_id & 0xFFFF}
        addi r2, r0, 64
        addi r3, r0, 128
        vieq r3, r0, r9          # still-masked positions before the commit
        vseli r0, r2, r0, r0     # tokens <- x0 where commit
        halt
    """, sim)
    expected = tokens.copy()
    expected[[5, 6, 30]] = big
    np.testing.assert_array_equal(sim.int_sram.read(0, VLEN), expected)
    np.testing.assert_array_equal(sim.vector_sram.read(128, VLEN), (tokens == mask_id).astype(np.float32))


def test_online_kv_smoothing_quantises_on_write_and_dequantises_on_read():
    sim = FunctionalSimulator(EDGE, dram_size=1 << 16)
    keys = bf16(rng.normal(size=(8, VLEN)))
    keys[:, [3, 50]] *= 40.0                       # outlier channels
    keys = bf16(keys)
    sim.vector_sram.write(0, keys)
    run("""
        addi r1, r0, 1024        # stats
        flui f0, 0.0
        vbcast r1, f0
        addi r2, r0, 0
        loopi 8, stats_done
        vamax r1, r1, r2
        addi r2, r2, 64
    stats_done:
        addi r3, r0, 1088        # smoothing factors
        vsmscale r3, r1, p2a50
        wait vector
        addi r4, r0, 8
        addi r5, r0, 64
        addi r6, r0, 34          # mxint4 row of 64: 2 x 17 bytes
        dstkv.v a0, r0, r4, r5, r6, r3, mxint4
        addi r7, r0, 2048
        dldkv.v a0, r7, r4, r5, r6, r3, mxint4
        halt
    """, sim)
    stats = np.abs(keys).max(axis=0)
    scale = smoothing_factor(stats, "p2a50")
    _, exponent = np.frexp(stats)
    np.testing.assert_array_equal(scale, np.ldexp(1.0, (exponent - 1) // 2).astype(np.float32))
    np.testing.assert_array_equal(sim.vector_sram.read(1088, VLEN), scale)
    smoothed = keys * numerics.hw_recip(scale)[None, :]
    expected = bf16(numerics.mx_round(smoothed, "mxint4", 32) * scale[None, :])
    restored = sim.vector_sram.read(2048, 8 * VLEN).reshape(8, VLEN)
    np.testing.assert_array_equal(restored, expected)
    plain = numerics.mx_round(keys, "mxint4", 32)
    assert np.abs(restored - keys).mean() < np.abs(plain - keys).mean()


def test_no_clip_stores_take_the_no_clip_mx_scale_rule_and_load_back_with_the_same_decoder():
    """dstnc.v / dstkvnc.v encode MX blocks with scale_rule='no_clip'; the layout is unchanged, so
    the ordinary loads read them back (npu.isa.table.STORE_SCALE_RULES)."""
    sim = FunctionalSimulator(EDGE, dram_size=1 << 16)
    rows = bf16(rng.uniform(-1.0, 1.0, size=(4, VLEN)))
    rows[:, 5] = bf16(np.float32(1.9))  # rounds past MXINT4's 1.75 at the OCP scale of its block
    sim.vector_sram.write(0, rows)
    sim.vector_sram.write(1024, np.ones(VLEN, np.float32))  # smoothing factors 1
    run("""
        addi r4, r0, 4
        addi r5, r0, 64
        addi r6, r0, 34          # mxint4 row of 64: 2 x 17 bytes
        addi r3, r0, 1024
        dst.v a0, r0, r4, r5, r6, r5, mxint4
        addi r1, r0, 136
        aadd a1, a0, r1
        dstnc.v a1, r0, r4, r5, r6, r5, mxint4
        addi r1, r0, 272
        aadd a2, a0, r1
        dstkvnc.v a2, r0, r4, r5, r6, r3, mxint4
        wait dma
        addi r7, r0, 2048
        dld.v a0, r7, r4, r5, r6, r5, mxint4
        addi r7, r0, 2304
        dld.v a1, r7, r4, r5, r6, r5, mxint4
        addi r7, r0, 2560
        dldkv.v a2, r7, r4, r5, r6, r3, mxint4
        halt
    """, sim)
    ocp = sim.vector_sram.read(2048, 4 * VLEN).reshape(4, VLEN)
    no_clip = sim.vector_sram.read(2304, 4 * VLEN).reshape(4, VLEN)
    np.testing.assert_array_equal(ocp, bf16(numerics.mx_round(rows, "mxint4", 32)))
    np.testing.assert_array_equal(no_clip, bf16(numerics.mx_round(rows, "mxint4", 32, scale_rule="no_clip")))
    np.testing.assert_array_equal(sim.vector_sram.read(2560, 4 * VLEN).reshape(4, VLEN), no_clip)
    assert not np.array_equal(ocp, no_clip)
    assert (np.abs(no_clip[:, 5] - rows[:, 5]) < np.abs(ocp[:, 5] - rows[:, 5])).all()


# ---- matrix unit -----------------------------------------------------------------------------

def gemm_source(transposed=False):
    """C[8 x 128] = A[8 x 128] @ W[128 x 128], W tiles streamed from DRAM into matrix SRAM."""
    lines = ["addi r1, r0, 64", "addi r2, r0, 256", "addi r3, r0, 128"]  # rows/cols, DRAM stride, A stride
    for kt in range(2):
        for nt in range(2):
            offset = (kt * 64 * 128 + nt * 64) * 2
            lines += [f"addi r4, r0, {offset}", "amov a0, r4", f"addi r5, r0, {(kt * 2 + nt) * 4096}",
                      "dld.m a0, r5, r1, r1, r2, r1, bf16"]
    lines += ["wait dma"]
    op, op_acc = ("mmt", "mmta") if transposed else ("mm", "mma")
    for nt in range(2):
        lines += [f"addi r6, r0, {nt * 4096}", f"addi r7, r0, {2 * 4096 + nt * 4096}",
                  f"{op} r0, r3, r6, 0", "addi r8, r0, 64", f"{op_acc} r8, r3, r7, 0",
                  f"addi r9, r0, {2048 + nt * 64}", "mwb r9, r3, 0"]
    return "\n".join(lines + ["halt"])


@pytest.mark.parametrize("transposed", [False, True])
def test_tiled_gemm_matches_the_systolic_reference_and_numpy(transposed):
    sim = FunctionalSimulator(dataclasses.replace(EDGE, blen=8), dram_size=1 << 16)  # 8-row tile ops
    a = bf16(rng.normal(size=(8, 128)))
    w = bf16(rng.normal(size=(128, 128)) / 8)
    sim.dram.write(0, w, "bf16")
    sim.vector_sram.write(0, a)
    _, stats = run(gemm_source(transposed), sim)
    c = sim.vector_sram.read(2048, 8 * 128).reshape(8, 128)
    tile = lambda kt, nt: w[kt * 64:(kt + 1) * 64, nt * 64:(nt + 1) * 64]  # noqa: E731
    for nt in range(2):
        first, second = (tile(0, nt), tile(1, nt))
        if transposed:
            first, second = first.T, second.T
        acc = numerics.hw_matmul_accumulate(np.zeros((8, 64), np.float32), a[:, :64], first)
        acc = numerics.hw_matmul_accumulate(acc, a[:, 64:], second)
        np.testing.assert_array_equal(c[:, nt * 64:(nt + 1) * 64], bf16(acc))
    if not transposed:
        np.testing.assert_allclose(c, a @ w, rtol=2e-2, atol=2e-2)
    assert stats.macs == 4 * 8 * 64 * 64
    assert stats.bytes_moved["dram_read"] == 4 * 64 * 64 * 2
    assert stats.by_unit["matrix"] == 6


def test_interleaved_accumulators_keep_the_single_accumulator_result():
    """Both output-column tiles accumulated K-outer, interleaved into accumulators 0 and 1, give
    the very bits of the one-accumulator, K-inner program: each accumulator sums its own tile ops
    in issue order (the reuse emit_gemm makes of one weight tile across row blocks)."""
    a = bf16(rng.normal(size=(8, 128)))
    w = bf16(rng.normal(size=(128, 128)) / 8)
    results = []
    for source in (gemm_source(), gemm_source()):
        sim = FunctionalSimulator(EDGE, dram_size=1 << 16)
        sim.dram.write(0, w, "bf16")
        sim.vector_sram.write(0, a)
        if results:  # second run: K outer, column tiles into accumulators 0 and 1
            head = source.split("wait dma")[0] + "wait dma"
            body = []
            for kt, op in ((0, "mm"), (1, "mma")):
                body += [f"addi r8, r0, {kt * 64}"]
                for nt in range(2):
                    body += [f"addi r6, r0, {(kt * 2 + nt) * 4096}", f"{op} r8, r3, r6, {nt}"]
            for nt in range(2):
                body += [f"addi r9, r0, {2048 + nt * 64}", f"mwb r9, r3, {nt}"]
            source = "\n".join([head, *body, "halt"])
        run(source, sim)
        results.append(sim.vector_sram.read(2048, 8 * 128).copy())
    np.testing.assert_array_equal(results[0], results[1])


def test_an_accumulator_the_machine_lacks_faults():
    sim = FunctionalSimulator(dataclasses.replace(EDGE, accumulators=2), dram_size=1 << 12)
    with pytest.raises(SimulationError, match="accumulator 2 does not exist"):
        run("mm r0, r0, r0, 2\n halt", sim)
    with pytest.raises(SimulationError, match="accumulator 3 does not exist"):
        run("mwb r0, r0, 3\n halt", sim)


# ---- control ---------------------------------------------------------------------------------

def test_nested_loops_count_and_zero_count_skips_the_body():
    sim, stats = run("""
        addi r1, r0, 4
        loopi 3, outer
        loop r1, inner
        addi r2, r2, 1
    inner:
        addi r3, r3, 1
    outer:
        loop r0, skipped
        addi r4, r4, 1
    skipped:
        halt
    """)
    assert (sim.int_reg(2), sim.int_reg(3), sim.int_reg(4)) == (12, 3, 0)
    assert stats.by_mnemonic["addi"] == 1 + 12 + 3


def expect_error(source, fragment, pc, text, config=EDGE, setup=None, **options):
    sim = FunctionalSimulator(config, dram_size=1 << 16, **options)
    if setup:
        setup(sim)
    sim.load(assemble(source) if isinstance(source, str) else source)
    with pytest.raises(SimulationError) as caught:
        sim.run(max_instructions=1000)
    error = caught.value
    assert fragment in error.message
    assert error.pc == pc and error.instruction == text
    assert f"pc {pc}" in str(error) and text in str(error)


@pytest.mark.parametrize("source, fragment, pc, text", [
    ("loopi 5, e\nloopi 1, e\nloopi 1, e\nloopi 1, e\nloopi 1, e\nnop\ne: halt",
     "nested deeper than 4", 4, "loopi 1, 1"),
    ("loopi 2, e\nj 3\nnop\ne: halt", "leaves the hardware loop body", 1, "j 3"),
    ("loopi 2, e\nloopi 2, f\nnop\ne: nop\nf: halt", "not nested inside", 1, "loopi 2, 2"),
    ("addi r1, r0, -1\nloop r1, e\nnop\ne: halt", "negative", 1, "loop r1, 1"),
    ("nop", "ran past the end", 1, "<end of program>"),
    ("j 0", "instruction limit 1000", 0, "j 0"),
])
def test_loop_and_control_misuse_names_pc_and_instruction(source, fragment, pc, text):
    expect_error(source, fragment, pc, text)


def test_illegal_word_and_dllm_instruction_on_ar_npu_are_rejected():
    expect_error([encode("nop"), 0xFC000000], "illegal opcode", 1, ".word 0xfc000000")
    ar_npu = load_npu_config("ar-npu")
    expect_error("vargmax f0, r1, r2, r3\nhalt", "ar-npu has no dLLM instructions", 0,
                 "vargmax f0, r1, r2, r3", config=ar_npu)


@pytest.mark.parametrize("source, fragment, pc, text", [
    ("addi r1, r0, 32\nvadd r1, r1, r1\nhalt", "not aligned to a row of VLEN=64", 1, "vadd r1, r1, r1"),
    ("lui r1, 0x20\nvexp r0, r1\nhalt", "outside [0, 1048576)", 1, "vexp r0, r1"),
    ("addi r1, r0, -1\nlw r2, 0(r1)\nhalt", "INT SRAM word -1 outside", 1, "lw r2, 0(r1)"),
    ("addi r1, r0, 1\naddi r2, r0, 2\namov a0, r1\ndld.v a0, r0, r1, r2, r2, r2, fp32\nhalt",
     "not aligned to 4 bytes", 3, "dld.v a0, r0, r1, r2, r2, r2, fp32"),
    ("dld.v a0, r0, r1, r2, r3, r4, int32\nhalt", "int32 is for INT SRAM only", 0,
     "dld.v a0, r0, r1, r2, r3, r4, int32"),
])
def test_bad_accesses_name_pc_and_instruction(source, fragment, pc, text):
    expect_error(source, fragment, pc, text)


def test_strict_mode_rejects_reads_of_never_written_sram():
    expect_error("addi r1, r0, 64\nvadd r1, r0, r0\nvadd r1, r1, r0\nhalt", "read before written", 1,
                 "vadd r1, r0, r0", strict=True, setup=lambda sim: sim.vector_sram.write(64, np.ones(64)))
    sim, _ = run("addi r1, r0, 64\nvadd r1, r1, r1\nhalt", strict=False)  # lenient by default
    assert sim.vector_sram.read(64, 1)[0] == 0.0


# ---- synchronisation -------------------------------------------------------------------------

DMA_THEN_VECTOR = """
    addi r1, r0, 1
    addi r2, r0, 64
    dld.v a0, r0, r1, r2, r2, r2, bf16
    {wait}
    vexp r2, r0
    halt
"""


def test_vector_read_of_dma_target_needs_wait_dma():
    expect_error(DMA_THEN_VECTOR.format(wait="nop"), "insert `wait dma` first", 4, "vexp r2, r0")
    _, stats = run(DMA_THEN_VECTOR.format(wait="wait dma"))
    assert stats.halted


def test_registers_written_by_the_vector_unit_need_wait_vector():
    expect_error("vsum f1, r0\nvsum f1, r0\nfadd f2, f1, f1\nhalt", "f1 is still being written", 2,
                 "fadd f2, f1, f1")
    sim, _ = run("vsum f1, r0\nvsum f1, r0\nwait vector\nfadd f2, f1, f1\nhalt")
    assert sim.fp_reg(2) == 0.0


def test_matrix_writeback_then_dma_store_needs_wait_matrix():
    source = """
        addi r1, r0, 64
        mwb r0, r1, 0
        {wait}
        addi r2, r0, 1
        dst.v a0, r0, r2, r1, r1, r1, bf16
        halt
    """
    expect_error(source.format(wait="nop"), "insert `wait matrix` first", 4, "dst.v a0, r0, r2, r1, r1, r1, bf16")
    run(source.format(wait="wait matrix"))


REFILL_AFTER_TILE_OP = """
    addi r1, r0, 64
    mma r0, r1, r0, 0
    {wait}
    dld.m a0, r0, r1, r1, r1, r1, bf16
    {wait_dma}
    mma r0, r1, r0, 1
    halt
"""


def test_dma_refilling_a_weight_tile_the_array_read_needs_no_wait_matrix():
    """ISA rule 4: a DMA into matrix SRAM is ordered after earlier tile ops' weight reads (the
    GEMM refills a panel buffer while the array still computes); reading the new tile still
    needs `wait dma`."""
    sim, stats = run(REFILL_AFTER_TILE_OP.format(wait="nop", wait_dma="wait dma"))
    assert stats.halted
    expect_error(REFILL_AFTER_TILE_OP.format(wait="nop", wait_dma="nop"), "insert `wait dma` first", 5,
                 "mma r0, r1, r0, 1")


# ---- statistics and trace --------------------------------------------------------------------

def test_stats_count_classes_bytes_and_trace():
    sim = FunctionalSimulator(EDGE, dram_size=1 << 16, trace=True)
    sim.dram.write(0, np.arange(128, dtype=np.float32), "bf16")
    _, stats = run("""
        addi r1, r0, 2
        addi r2, r0, 64
        addi r3, r0, 128
        dld.v a0, r0, r1, r2, r3, r2, bf16
        wait dma
        vadd r2, r0, r2
        halt
    """, sim)
    assert stats.instructions == 7 and stats.halted
    assert stats.by_unit == {"scalar": 3, "dma": 1, "control": 2, "vector": 1}
    assert stats.bytes_moved["dram_read"] == 256
    assert stats.bytes_moved["vector_sram_write"] == 256 + 128
    assert stats.bytes_moved["vector_sram_read"] == 256
    assert stats.trace[3] == "     3: dld.v a0, r0, r1, r2, r3, r2, bf16"
    np.testing.assert_array_equal(sim.vector_sram.read(64, 64), bf16(np.arange(64) + np.arange(64, 128)))


def test_scalar_sram_dma_and_vector_transfers_between_int_fp_and_vector_data():
    sim = FunctionalSimulator(EDGE, dram_size=1 << 16)
    ids = rng.integers(0, 126464, size=VLEN).astype(np.int32)
    conf = rng.random(VLEN).astype(np.float32)
    sim.dram.write(0, ids, "int32")
    sim.dram.write(256, conf, "fp32")
    run("""
        addi r1, r0, 1
        addi r2, r0, 64
        addi r3, r0, 256
        amov a1, r3
        dld.i a0, r0, r1, r2, r2, r2, int32
        dld.f a1, r0, r1, r2, r2, r2, fp32
        wait dma
        vldf r0, r0              # confidences gathered from FP SRAM (rounded to bf16)
        vldi r2, r0              # token ids as floats (bf16 keeps 8 bits: lossy)
        vstf r2, r0              # back to FP SRAM words 64..127
        wait vector
        addi r4, r0, 1024
        amov a2, r4
        dst.i a2, r0, r1, r2, r2, r2, int32
        halt
    """, sim)
    np.testing.assert_array_equal(sim.vector_sram.read(0, VLEN), bf16(conf))
    np.testing.assert_array_equal(sim.vector_sram.read(64, VLEN), bf16(ids.astype(np.float32)))
    np.testing.assert_array_equal(sim.fp_sram.read(64, VLEN), bf16(conf))
    np.testing.assert_array_equal(sim.dram.read(1024, VLEN, "int32"), ids)
