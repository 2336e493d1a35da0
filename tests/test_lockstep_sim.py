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


@pytest.mark.parametrize("cache, threshold, temperature", [("dual", 0.3, 0.0), ("prefix", None, 0.8)])
def test_lockstep_generations_equal_one_at_a_time_generations(cache, threshold, temperature):
    """Threshold commits finish blocks after different numbers of steps, so lanes run different
    step programs in one round; sampled plans draw their own seeded noise per prompt."""
    npu = load_npu_config("dnpu-edge")
    weights = random_weights(TINY, seed=2)
    plan = DecodeConfig(gen_length=4, block_length=2, steps=4, cache=cache, threshold=threshold,
                        temperature=temperature)
    plans = [dataclasses.replace(plan, seed=10 + i) for i in range(len(PROMPTS))]
    seq_len = PROMPTS.shape[1] + plan.gen_length
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
