"""The lock-step functional simulator (npu.sim.functional.lockstep) computes every lane exactly as
the one-image FunctionalSimulator computes that lane's memory image alone: the SHA-256 digest of
every memory (DRAM, the four SRAMs, the accumulators) and the instruction count agree lane by lane
on compiled tiny-model step programs, on every kernel of npu/kernels, on hand-written programs
whose lanes branch apart, and whole generations (generate_lockstep) equal generate() record for
record. Errors carry the one-image simulator's message, pc and instruction."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest

from npu.hw import numerics
from npu.hw.config import load_npu_config
from npu.ir import random_weights
from npu.isa.assembler import assemble
from npu.models.decoding import DecodeConfig
from npu.models.transformer import ModelConfig
from npu.rtl.top import reduced_config
from npu.runtime.generate import SimulatorStepper, generate, generation_difference
from npu.runtime.lockstep import LockstepStepper, generate_lockstep
from npu.sim.functional import FunctionalSimulator, SimulationError
from npu.sim.functional.lockstep import LockstepSimulator

SRAMS = ("vector_sram", "matrix_sram", "fp_sram", "int_sram")
TINY = ModelConfig("test-lockstep", vocab_size=12, mask_token_id=11, n_layers=1, d_model=64, n_heads=2,
                   n_kv_heads=2, head_dim=32, d_ff=128, max_seq_len=16)


def single_digest(sim: FunctionalSimulator) -> str:
    parts = [sim.dram.data] + [sim.srams[name].data for name in SRAMS] + [sim.accumulators]
    return hashlib.sha256(b"".join(np.ascontiguousarray(p).tobytes() for p in parts)).hexdigest()


def lane_digest(sim: LockstepSimulator, lane: int) -> str:
    parts = [sim.dram.data[lane]] + [sim.srams[name].data[lane] for name in SRAMS] + [sim.accumulators[lane]]
    return hashlib.sha256(b"".join(np.ascontiguousarray(p).tobytes() for p in parts)).hexdigest()


def snapshot(sim: FunctionalSimulator) -> dict[str, np.ndarray]:
    """The DRAM and the INT SRAM a kernel runner preloads (the other SRAMs start at zero)."""
    return {"dram": sim.dram.data.copy(), "int_sram": sim.int_sram.data.copy()}


def run_both(config, program, images: list[dict[str, np.ndarray]], dram_size: int):
    """Each image run alone on FunctionalSimulator and all together in lock step: (digests and
    instruction counts of the one-image runs, the same of the lanes, the lock-step stats)."""
    lock = LockstepSimulator(config, len(images), dram_size=dram_size)
    expected = []
    for lane, image in enumerate(images):
        single = FunctionalSimulator(config, dram_size=dram_size)  # zero SRAMs (pages untouched)
        single.dram.data[:] = image["dram"]
        lock.dram.data[lane] = image["dram"]
        for name in SRAMS:
            if name in image:
                single.srams[name].data[:] = image[name]
                lock.srams[name].data[lane] = image[name]
        single.load(program)
        stats = single.run(max_instructions=10_000_000)
        expected.append((single_digest(single), stats.instructions))
    lock.load(program)
    stats = lock.run(max_instructions=10_000_000)
    got = [(lane_digest(lock, lane), int(stats.instructions[lane])) for lane in range(len(images))]
    return expected, got, stats


PROMPTS = np.array([[3, 1, 4, 1, 5, 9, 2, 6], [2, 7, 1, 8, 2, 8, 1, 8], [1, 4, 1, 4, 2, 1, 3, 5]], np.int32)


@pytest.mark.parametrize("npu_name, sampling, temperature", [
    ("dnpu-edge", "topk", False), ("dnpu-edge", "threshold", True),
    pytest.param("ar-npu", "topk", False, marks=pytest.mark.slow)])  # MLEN 128, 32 MiB SRAMs: ~10 s
def test_every_compiled_step_program_leaves_each_lane_as_the_one_image_simulator(npu_name, sampling, temperature):
    """Refresh (whole sequence) and in-block (one block) step programs, a different prompt per
    lane: identical memories bit for bit and identical instruction counts."""
    npu = load_npu_config(npu_name)
    seq_len, block = 12, 4
    stepper = SimulatorStepper(TINY, random_weights(TINY), npu, seq_len, sampling)
    rng = np.random.default_rng(3)
    for query_length, q0, s0 in ((seq_len, 0, 8), (block, 8, 0)):
        compiled = stepper.program(query_length, block, temperature)
        images = []
        for lane, prompt in enumerate(PROMPTS):
            stepper.start(np.concatenate([prompt, np.full(block, TINY.mask_token_id, np.int32)]))
            dram = stepper.sim.dram
            dram.write(stepper.dram["constants"].address, np.frombuffer(compiled.constants, np.uint8))
            dram.write(stepper.dram["params"].address, np.array([q0, s0, 2] + [0] * 13, np.int32), "int32")
            dram.write(stepper.dram["fparams"].address, np.array([0.5, 0.7 if temperature else 0] + [0] * 14,
                                                                 np.float32), "fp32")
            if temperature:
                noise = rng.gumbel(size=(block, stepper.shapes.vocab_pad)).astype(np.float32)
                dram.write(stepper.dram["noise"].address, noise, "fp32")
            images.append(snapshot(stepper.sim))
        expected, got, stats = run_both(npu, compiled.program, images, stepper.sim.dram.size)
        assert got == expected, f"query_length {query_length}"
        assert stats.groups == 1  # lanes with the same parameters never branch apart


def captured_kernels(config) -> list[tuple[str, object, dict[str, np.ndarray], int]]:
    """Every kernel of npu/kernels, three times on different data: (name, program, the memory
    image its runner built just before running, DRAM size)."""
    import npu.kernels.dense as dense
    import npu.kernels.sampling as sampling
    from npu.kernels import run_gemm, run_rmsnorm, run_sampling_pass, run_softmax, run_token_confidence

    captured = []
    original = dense.run_program

    def capture(sim, name, program, *args, **kwargs):
        captured.append((name, program, snapshot(sim), sim.dram.size))
        return original(sim, name, program, *args, **kwargs)

    dense.run_program = sampling.run_program = capture
    try:
        for seed in range(3):
            rng = np.random.default_rng(seed)
            run_gemm(config, rng.normal(0, 1, (4, 16)), rng.normal(0, 1, (16, 16)))
            run_softmax(config, rng.normal(0, 3, (2, 32)))
            run_rmsnorm(config, rng.normal(0, 1, (2, 32)), rng.normal(1, 0.1, 32), eps=1e-5)
            run_token_confidence(config, rng.normal(0, 2, (2, 64)), tile_chunks=2)
            run_sampling_pass(config, rng.normal(0, 2, (4, 64)), np.array([5, 63, 63, 7]), 63, k=2, forbid_id=63,
                              tile_chunks=2)
    finally:
        dense.run_program = sampling.run_program = original
    return captured


@pytest.mark.parametrize("npu_name", ["dnpu-edge", "ar-npu"])
def test_every_kernel_leaves_each_lane_as_the_one_image_simulator(npu_name):
    config = reduced_config(npu_name)  # the presets at VLEN = MLEN = 8, as the RTL tests run the kernels
    kernels = captured_kernels(config)
    names = sorted({name for name, *_ in kernels})
    assert len(names) == 5, names
    for name in names:
        runs = [k for k in kernels if k[0] == name]
        program, size = runs[0][1], runs[0][3]
        assert all(np.array_equal(r[1].words, program.words) and r[3] == size for r in runs), name
        images = [r[2] for r in runs]
        expected, got, _ = run_both(config, program, images, size)
        assert got == expected, name
        assert len({digest for digest, _ in got}) == 3, f"{name}: the lanes' data should differ"


DIVERGING = """
    lw   r1, 0(r0)          # a per-lane count
    lw   r2, 1(r0)          # a per-lane row address
    addi r3, r0, 0
    loop r1, counted        # loop count differs between lanes: they split here
    addi r3, r3, 1
counted:
    bne  r3, r1, wrong
    flui f1, 2.0
    vbcast r2, f1           # SRAM address differs
    vmuls r2, r2, f1
    wait vector
    addi r4, r0, 1
    blt  r1, r4, small
    vexp r2, r2
    wait vector
small:
    sw   r3, 2(r0)
    halt
wrong:
    addi r5, r0, 99
    sw   r5, 3(r0)
    halt
"""


def test_lanes_that_need_different_control_split_and_match_the_one_image_simulator():
    config = load_npu_config("dnpu-edge")
    program = assemble(DIVERGING)
    images = []
    for count, row in ((0, 64), (3, 128), (3, 64), (5, 192)):
        ints = np.zeros(config.int_sram.size_bytes // 4, np.int32)
        ints[:2] = (count, row)
        images.append({"dram": np.zeros(4096, np.uint8), "int_sram": ints})
    expected, got, stats = run_both(config, program, images, 4096)
    assert got == expected
    assert stats.groups == 4  # (0, 64), (3, 128), (3, 64), (5, 192): four different paths


def test_a_uniform_program_on_lanes_with_different_data_stays_one_group():
    config = load_npu_config("dnpu-edge")
    program = assemble("""
        lw   r1, 0(r0)
        addi r2, r1, 7          # varying arithmetic, no control: no split
        sw   r2, 1(r0)
        fcvt.f.i f1, r1
        vbcast r0, f1
        vargmax f2, r5, r0, r0
        wait vector
        sw   r5, 2(r0)
        halt
    """)
    images = [{"dram": np.zeros(4096, np.uint8), "int_sram": np.arange(16384, dtype=np.int32) * (lane + 1)}
              for lane in range(3)]
    expected, got, stats = run_both(config, program, images, 4096)
    assert got == expected and stats.groups == 1


@pytest.mark.parametrize("source, npu_name", [
    (None, "dnpu-edge"),                                                               # illegal word
    ("lui r1, 1000\nvadd r1, r0, r0\nhalt", "dnpu-edge"),                              # out of range
    ("\n".join(f"loopi 2, e{i}" for i in range(9)) + "\nnop\n"
     + "\n".join(f"e{i}:" for i in reversed(range(9))) + "\nhalt", "dnpu-edge"),      # loop nesting
    ("vtopk r0, r0, r0, r0\nhalt", "ar-npu"),                                          # no dLLM instructions
    ("addi r1, r0, 64\ndld.v a0, r0, r1, r1, r0, r1, bf16\nvadd r0, r0, r0\nhalt", "dnpu-edge"),  # sync
    ("halt\n", "dnpu-edge"),
])
def test_errors_name_the_same_pc_instruction_and_message(source, npu_name):
    config = load_npu_config(npu_name)
    program = assemble(source) if source else [0xFFFFFFFF, int(assemble("halt").words[0])]
    single, lock = FunctionalSimulator(config, dram_size=1 << 16), LockstepSimulator(config, 2, dram_size=1 << 16)
    single.load(program)
    lock.load(program)
    try:
        single.run(max_instructions=1000)
    except SimulationError as err:
        with pytest.raises(SimulationError) as raised:
            lock.run(max_instructions=1000)
        assert (raised.value.message, raised.value.pc, raised.value.instruction) == \
            (err.message, err.pc, err.instruction)
        assert "lanes [0, 1]" in str(raised.value)
    else:
        assert lock.run(max_instructions=1000).instructions.tolist() == [1, 1]


def test_strict_mode_and_bad_lanes_are_refused_with_a_clear_error():
    config = load_npu_config("dnpu-edge")
    with pytest.raises(ValueError, match="lanes=0"):
        LockstepSimulator(config, 0)
    sim = LockstepSimulator(config, 2, dram_size=4096)
    sim.load(assemble("halt"))
    with pytest.raises(ValueError, match=r"lanes \[0, 2\]"):
        sim.run([0, 2])


def test_batched_matmul_equals_the_two_dimensional_one_lane_by_lane():
    rng = np.random.default_rng(5)
    act = (rng.standard_normal((3, 16, 64)) * 10.0 ** rng.integers(-4, 5, (3, 16, 64))).astype(np.float32)
    weight = (rng.standard_normal((3, 64, 64)) * 10.0 ** rng.integers(-4, 5, (3, 64, 64))).astype(np.float32)
    acc = rng.standard_normal((3, 16, 64)).astype(np.float32)
    batched = numerics.hw_matmul_accumulate(acc, act, weight)
    shared = numerics.hw_matmul_accumulate(acc, act, weight[:1])
    for lane in range(3):
        assert np.array_equal(batched[lane].view(np.uint32),
                              numerics.hw_matmul_accumulate(acc[lane], act[lane], weight[lane]).view(np.uint32))
        assert np.array_equal(shared[lane].view(np.uint32),
                              numerics.hw_matmul_accumulate(acc[lane], act[lane], weight[0]).view(np.uint32))


def _tiny_generations(cache: str, threshold: float | None, temperature: float):
    """dnpu-edge, TINY with random weights and one seeded decoding plan per prompt of PROMPTS:
    (npu, weights, plan, plans, seq_len)."""
    npu = load_npu_config("dnpu-edge")
    weights = random_weights(TINY, seed=2)
    plan = DecodeConfig(gen_length=4, block_length=2, steps=4, cache=cache, threshold=threshold,
                        temperature=temperature)
    plans = [dataclasses.replace(plan, seed=10 + i) for i in range(len(PROMPTS))]
    return npu, weights, plan, plans, PROMPTS.shape[1] + plan.gen_length


@pytest.mark.parametrize("cache, threshold, temperature", [("dual", 0.3, 0.0), ("prefix", None, 0.8)])
def test_lockstep_generations_equal_one_at_a_time_generations(cache, threshold, temperature):
    """Threshold commits finish blocks after different numbers of steps, so lanes run different
    step programs in one round; sampled plans draw their own seeded noise per prompt."""
    npu, weights, plan, plans, seq_len = _tiny_generations(cache, threshold, temperature)
    lock = LockstepStepper(TINY, weights, npu, seq_len, plan.sampling, lanes=len(PROMPTS))
    finished = []
    got = generate_lockstep(lock, list(PROMPTS), plans, TINY.mask_token_id, on_finished=finished.append)
    assert sorted(finished) == [0, 1, 2]
    single = SimulatorStepper(TINY, weights, npu, seq_len, plan.sampling)
    for prompt, lane_plan, generation in zip(PROMPTS, plans, got):
        want = generate(single, prompt, lane_plan, TINY.mask_token_id)
        assert generation_difference(generation, want) is None
        assert [r.instructions for r in generation.records] == [r.instructions for r in want.records]


@pytest.mark.parametrize("fast", [True, False])
def test_specialised_and_generic_scalar_handlers_wrap_the_same_way_in_every_lane(monkeypatch, fast):
    """tests/test_functional_sim.py's wrap-around program (32-bit registers, 64-bit addresses, the
    remembered fexp/frecip/frsqrt) with lane-varying operands: each lane's results, stored to the
    SRAMs, equal the one-image simulator's, with the fast paths on and off."""
    from npu.sim.functional import scalar as scalar_unit

    monkeypatch.setattr(scalar_unit, "SPECIALISED_SCALAR", fast)
    monkeypatch.setattr(scalar_unit, "MEMOISED_UNARY", fast)
    program = assemble("""
        lw   r8, 0(r0)           # differs per lane
        lui  r1, 0x7fff
        ori  r1, r1, 0xffff      # 2^31 - 1
        add  r1, r1, r8          # per lane: wraps in some lanes only
        addi r2, r1, 1
        addi r3, r2, -1
        add  r4, r1, r1
        sub  r5, r2, r1
        add  r0, r1, r1          # dropped
        mul  r6, r8, r1
        slt  r7, r8, r0
        aaddi a1, a0, -5
        aadd a2, a1, r8
        fcvt.f.i f0, r8
        flui f5, -0.0
        loopi 3, again
        fexp f1, f0
        frecip f2, f0
        frsqrt f3, f0
        frecip f4, f5
        fexp f6, f2
        again:
        fcvt.i.f r9, f1
        fmv.i.f r10, f2
        flt r11, f2, f3
        sw r1, 1(r0)
        sw r2, 2(r0)
        sw r3, 3(r0)
        sw r4, 4(r0)
        sw r5, 5(r0)
        sw r6, 6(r0)
        sw r7, 7(r0)
        sw r9, 9(r0)
        sw r10, 10(r0)
        sw r11, 11(r0)
        addi r12, r0, 0
        loopi 7, stored
        fsw f0, 0(r12)
        addi r12, r12, 1
        stored:
        fsw f1, 1(r0)
        fsw f2, 2(r0)
        fsw f3, 3(r0)
        fsw f4, 4(r0)
        fsw f6, 6(r0)
        halt
    """)
    config = load_npu_config("dnpu-edge")
    images = []
    for value in (0, 1, -3, 7):
        ints = np.zeros(config.int_sram.size_bytes // 4, np.int32)
        ints[0] = value
        images.append({"dram": np.zeros(4096, np.uint8), "int_sram": ints})
    expected, got, stats = run_both(config, program, images, 4096)
    assert got == expected and stats.groups == 1
    assert len({digest for digest, _ in got}) == 4


def test_fused_and_trimmed_batched_matmul_equals_the_unfused_order_bit_for_bit():
    """The batched matrix sum's exact shortcuts (npu.hw.numerics._exact_products_sum: fused
    multiply-add when every product is exact, zero product slices and all-+0 weight columns left
    out) against the 2-D per-lane sum in order, on operands built to hit every signed-zero case:
    zero-padded slices and columns, -0 activations and weights, rows of negative values (-0
    results), slices of zeros with one -0, accumulators of +-0; plus operands that must take the
    unfused path (tiny products, NaN, inf, values not yet rounded to bf16)."""
    rng = np.random.default_rng(11)
    bf16 = lambda x: numerics.round_to_format(np.asarray(x, np.float32), "bf16")  # noqa: E731
    fused = unfused = 0
    for case in range(400):
        lanes, rows, k, n = 3, int(rng.integers(1, 5)), int(rng.integers(1, 20)), int(rng.integers(1, 20))
        a = bf16(rng.standard_normal((lanes, rows, k)) * 10.0 ** rng.integers(-3, 3, (lanes, rows, k)))
        w = bf16(rng.standard_normal((1 if case % 2 else lanes, k, n)))
        a[:, :, rng.random(k) < 0.4] = 0.0                      # padded product slices
        w[:, :, rng.random(n) < 0.4] = 0.0                      # padded output columns
        if rng.random() < 0.5:
            a[rng.random(a.shape) < 0.2] = -0.0
        if rng.random() < 0.5:
            w[rng.random(w.shape) < 0.2] = -0.0
        if rng.random() < 0.3:                                  # a row of negative values: -0 sums
            a[:, 0] = -np.abs(a[:, 0])
        if rng.random() < 0.3:                                  # a zero slice holding one -0
            a[:, :, 0] = 0.0
            a[0, 0, 0] = -0.0
        if rng.random() < 0.2:
            w[..., int(rng.integers(n))] = -0.0
        if rng.random() < 0.1:
            a[:] = 0.0
        special = case % 10
        if special == 1:
            a[0, 0, 0] = 2.0 ** -100                            # products below 2^-126: not exact
        elif special == 2:
            a[1, 0, 0] = np.nan
        elif special == 3:
            w[0, 0, 0] = np.inf
        elif special == 4:
            a = a + np.float32(1e-4) * rng.standard_normal(a.shape).astype(np.float32)  # not bf16 values
        acc = rng.choice(np.float32([0.0, -0.0, 1.5]), (lanes, rows, n)).astype(np.float32)
        exact = numerics._products_exact(bf16(a), bf16(w))
        fused, unfused = fused + exact, unfused + (not exact)
        got = numerics.hw_matmul_accumulate(acc, a, w)
        for lane in range(lanes):
            want = numerics.hw_matmul_accumulate(acc[lane], a[lane], w[min(lane, w.shape[0] - 1)])
            assert np.array_equal(got[lane].view(np.uint32), want.view(np.uint32)), (case, lane)
    assert fused > 250 and unfused > 60, (fused, unfused)


SHARED_PANELS = """
    addi r1, r0, 16          # DRAM bytes of a row of 8 bf16
    addi r2, r0, 8           # MLEN: columns, and the row stride in SRAM
    addi r3, r0, 16          # rows of W: two 8 x 8 tiles
    aaddi a1, a0, 256        # W2, the same in every lane
    aaddi a2, a0, 512        # P, different in every lane
    aaddi a3, a0, 1024       # activations, different in every lane
    addi r4, r0, 2           # BLEN rows
    addi r5, r0, 0
    dld.v a3, r5, r4, r2, r1, r2, bf16
    addi r6, r0, 0           # tile 0 of the matrix SRAM
    addi r8, r0, 64          # tile 1
    dld.m a0, r6, r3, r2, r1, r2, bf16     # W into [0, 128): the same in every lane, stored once
    wait dma
    addi r7, r0, 64
    mm   r5, r2, r6, 0
    mwb  r7, r2, 0
    mm   r5, r2, r8, 1
    addi r7, r0, 80
    mwb  r7, r2, 1
    wait matrix
    addi r9, r0, 4
    dld.m a2, r8, r9, r2, r1, r2, bf16     # every lane's own rows over [64, 96) of the panel
    wait dma
    mm   r5, r2, r8, 0                     # tile 1: half per lane, half shared
    addi r7, r0, 96
    mwb  r7, r2, 0
    wait matrix
    addi r9, r0, 2
    addi r10, r0, 4
    dld.m a2, r6, r9, r10, r1, r2, bf16    # strided (4 of 8 columns, 2 rows) into tile 0: gaps stay
    wait dma
    mmt  r5, r2, r6, 1
    addi r7, r0, 112
    mwb  r7, r2, 1
    wait matrix
    dld.m a0, r6, r3, r2, r1, r2, bf16     # the whole panel shared again
    wait dma
    lw   r11, 0(r0)                        # a per-lane flag: the lanes split here
    beq  r11, r0, same
    addi r9, r0, 4
    dld.m a1, r6, r9, r2, r1, r2, bf16     # some lanes only: copy on write, even of equal bytes
    wait dma
same:
    mm   r5, r2, r6, 0
    addi r7, r0, 128
    mwb  r7, r2, 0
    mmt  r5, r2, r8, 1
    addi r7, r0, 144
    mwb  r7, r2, 1
    wait matrix
    halt
"""


def test_shared_weight_panels_copy_on_write_and_match_the_one_image_simulator(monkeypatch):
    """A panel loaded the same into every lane is kept once (LaneSram.share); lanes then write their
    own rows over part of it (contiguous, strided with gaps, and from a subgroup after a split)
    and tile ops read tiles that are shared, per lane, and half of each: every lane's memories
    equal the one-image simulator's bit for bit."""
    from npu.sim.functional.lockstep import LaneSram
    from npu.sim.functional.memory import dram_bytes

    calls = {"share": 0, "unshare": 0}
    for method in calls:
        original = getattr(LaneSram, method)

        def counted(self, *args, _original=original, _name=method, **kwargs):
            calls[_name] += 1
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(LaneSram, method, counted)
    config = reduced_config("dnpu-edge")
    rng = np.random.default_rng(4)
    shared = {0: rng.standard_normal((16, 8)), 256: rng.standard_normal((8, 8))}
    images = []
    for flag in (0, 1, 0, 1):
        dram = np.zeros(4096, np.uint8)
        for address, values in [*shared.items(), (512, rng.standard_normal((16, 8))),
                                (1024, rng.standard_normal((2, 8)))]:
            raw = dram_bytes(values.astype(np.float32), "bf16", config.mx_block)
            dram[address:address + raw.size] = raw
        ints = np.zeros(config.int_sram.size_bytes // 4, np.int32)
        ints[0] = flag
        images.append({"dram": dram, "int_sram": ints})
    expected, got, stats = run_both(config, assemble(SHARED_PANELS), images, 4096)
    assert got == expected
    assert stats.groups == 2
    assert calls["share"] >= 2 and calls["unshare"] >= 4, calls
    assert len({digest for digest, _ in got}) == 4


def test_host_access_to_a_shared_matrix_sram_sees_and_changes_every_lane():
    """LaneSram.data copies the shared panels into every lane first: what the host reads is what
    each lane holds, and what it writes is what the next run reads."""
    from npu.sim.functional.lockstep import LaneSram

    sram = LaneSram(3, "matrix SRAM", 64, np.float32, 2, "bf16", shares_panels=True)
    sram.share(8, 24, np.arange(16, dtype=np.float32))
    sram.share(24, 32, np.full(8, 5.0, np.float32))
    assert sram.uniform == [(8, 32)] and sram.shared_range(8, 32)
    sram.unshare(12, 16, copy=False)
    assert sram.uniform == [(8, 12), (16, 32)] and not sram.shared_range(8, 32)
    sram.per_lane[:, 12:16] = -1.0
    data = sram.data
    assert sram.uniform == []
    want = np.zeros(64, np.float32)
    want[8:24], want[24:32], want[12:16] = np.arange(16), 5.0, -1.0
    assert all(np.array_equal(data[lane], want) for lane in range(3))


TABLED = """
    addi r1, r0, 0
    addi r2, r0, 64
    loopi 4, rows_done
    vexp   r2, r1
    addi   r2, r2, 8
    vrecip r2, r1
    addi   r2, r2, 8
    vrsqrt r2, r1
    addi   r2, r2, 8
    vsilu  r2, r1
    addi   r2, r2, 8
    addi   r1, r1, 8
rows_done:
    wait vector
    halt
"""


def test_tabled_vector_functions_match_the_one_image_simulator_on_special_values():
    """vexp / vrecip / vrsqrt / vsilu read bf16 rows through a table of every bf16 pattern's
    result: NaNs of any payload, infinities, signed zeros, bf16 subnormals, the clamps; rows
    where a lane holds values that are not bf16 (the host wrote them) are computed instead."""
    config = reduced_config("dnpu-edge")
    specials = np.array([0x7FC00000, 0xFFC00000, 0x7F810000, 0x7F800000, 0xFF800000, 0x00000000, 0x80000000,
                         0x00010000, 0x80070000, 0x42B20000, 0xC2B00000, 0x7F7F0000, 0x3F800000, 0xBF800000,
                         0xC2AF0000, 0x00800000, 0x3C000000, 0x4B000000, 0xC1200000, 0x3EAA0000, 0x7F000000,
                         0xFF7F0000, 0x80800000, 0x40490000, 0xC0490000, 0x41200000, 0x00400000, 0x80400000,
                         0x42C80000, 0xC2C80000, 0x3DCC0000, 0x1F800000], np.uint32).view(np.float32)
    rng = np.random.default_rng(8)
    images = []
    for lane in range(4):
        rows = np.zeros(config.vector_sram.size_bytes // 2, np.float32)
        if lane == 0:
            rows[:32] = specials
        elif lane == 3:  # rows 0-1 bf16 (by the table), rows 2-3 not bf16 values (computed)
            rows[:16] = specials[::-1][:16]
            rows[16:32] = rng.standard_normal(16).astype(np.float32)
        else:
            rows[:32] = numerics.round_to_format(rng.standard_normal(32) * 10.0 ** rng.integers(-8, 8, 32), "bf16")
        images.append({"dram": np.zeros(1024, np.uint8), "vector_sram": rows})
    expected, got, _ = run_both(config, assemble(TABLED), images, 1024)
    assert got == expected


@pytest.mark.parametrize("cache", ["none", "prefix", "dual"])
@pytest.mark.parametrize("threshold, temperature", [(None, 0.0), (0.3, 0.0), (None, 0.8)])
def test_batched_reference_generations_equal_one_at_a_time_reference_generations(cache, threshold, temperature):
    """npu.runtime.lockstep.BatchedReferenceStepper (the NPU-arithmetic reference over several
    generations at once, npu.compiler.reference.reference_steps) against ReferenceStepper one
    generation at a time: every cache mode, the top-k and threshold rules, temperature sampling;
    the same windows, commits, confidence bits and tokens (generation_difference), and the same
    logits bit for bit."""
    from npu.runtime.generate import ReferenceStepper
    from npu.runtime.lockstep import BatchedReferenceStepper

    npu, weights, plan, plans, seq_len = _tiny_generations(cache, threshold, temperature)
    batched = BatchedReferenceStepper(TINY, weights, npu, seq_len, plan.sampling, lanes=len(PROMPTS))
    got = generate_lockstep(batched, list(PROMPTS), plans, TINY.mask_token_id)
    single = ReferenceStepper(TINY, weights, npu, seq_len, plan.sampling)
    for prompt, lane_plan, generation in zip(PROMPTS, plans, got):
        want = generate(single, prompt, lane_plan, TINY.mask_token_id)
        assert generation_difference(generation, want) is None
    # the step outputs themselves, logits included, for one round of three different windows
    from npu.compiler.context import StepSpec
    from npu.compiler.reference import ReferenceState, reference_step, reference_steps

    spec = StepSpec(single.shapes, 4, 2, plan.sampling, temperature=temperature > 0)
    rng = np.random.default_rng(1)
    noises = [rng.gumbel(size=(2, TINY.vocab_size)).astype(np.float32) if temperature else None for _ in PROMPTS]
    starts = [np.concatenate([p, np.full(4, TINY.mask_token_id, np.int32)]) for p in PROMPTS]
    windows = [(8, 0), (6, 2), (8, 2)]
    together = reference_steps(spec, single.weights, [ReferenceState.start(single.shapes, t) for t in starts],
                               [q0 for q0, _ in windows], [s0 for _, s0 in windows], [1, 2, 1], [0.5] * 3,
                               [temperature] * 3, noises)
    for tokens, (q0, s0), k, noise, out in zip(starts, windows, [1, 2, 1], noises, together):
        alone = reference_step(spec, single.weights, ReferenceState.start(single.shapes, tokens), q0, s0, k, 0.5,
                               temperature, noise)
        for field in ("x0", "confidence", "committed", "tokens", "logits"):
            a, b = np.asarray(getattr(out, field)), np.asarray(getattr(alone, field))
            assert a.dtype == b.dtype and np.array_equal(a.view(np.uint8), b.view(np.uint8)), field
