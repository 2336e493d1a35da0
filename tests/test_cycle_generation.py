"""Whole generations on the cycle simulator, and the exact-reuse claim behind them.

Specification: a step's statistics are reused only from a run with the same start state or the
same timing inputs (npu.sim.cycle.reuse), and reused statistics are bit-identical to simulating
the step (SHA-256 of every figure). Checked on a hand-written program whose timing depends on
an input through a branch, on whole top-k generations of compiled tiny-model steps, and on
generations whose sampling branches on computed data (threshold rule, Gumbel sampling) run with
execute_data on the functional simulator's memories before every step.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from npu.compiler.context import StepSpec
from npu.compiler.layout import Shapes
from npu.compiler.lower import compile_spec
from npu.hw.config import load_npu_config
from npu.ir import random_weights
from npu.isa.assembler import assemble
from npu.models.decoding import DecodeConfig
from npu.models.transformer import ModelConfig
from npu.runtime.generate import SimulatorStepper, decode_steps, generate
from npu.compiler.reference import StepOutput
from npu.sim.cycle import CycleSimulator
from npu.runtime.cycle_generation import StepProgram, generation_row, simulate_generations, step_inputs, topk_schedule
from npu.sim.cycle.reuse import SAME_START, SAME_TIMING, SIMULATED, TimingReuse, stats_digest
from npu.sim.cycle.simulator import RunInputs

EDGE = load_npu_config("dnpu-edge")
TINY = ModelConfig("test-cyclegen", vocab_size=12, mask_token_id=11, n_layers=1, d_model=64, n_heads=2,
                   n_kv_heads=2, head_dim=32, d_ff=128, max_seq_len=16)

# Input word 0 decides whether eight vector ops run; input word 1 is read but never timed.
BRANCH_ON_INPUT = """
    addi r2, r0, 1
    addi r3, r0, 16
    dld.i a0, r0, r2, r3, r0, r3, int32
    wait dma
    lw r4, 0(r0)
    lw r5, 1(r0)
    addi r6, r0, 4096
    beq r4, r0, skip
    loopi 8, body
      vexp r6, r6
    body:
  skip:
    wait vector
    halt
"""


def inputs(*words: int) -> RunInputs:
    return RunInputs(64, ((0, np.array(list(words) + [0] * (16 - len(words)), "<i4").tobytes()),))


class SimulateEveryStep(TimingReuse):
    """The reference: every run simulated."""

    def run(self, sim, max_instructions=10_000_000, max_cycles=10**10, inputs=None):
        return sim.run(max_instructions, max_cycles, inputs), SIMULATED


def test_a_timed_branch_on_an_input_changes_the_timing_key_and_an_untimed_input_does_not():
    sim = CycleSimulator(EDGE)
    sim.load(assemble(BRANCH_ON_INPUT))
    taken, other_value, not_taken = inputs(0, 7), inputs(0, 9), inputs(1, 7)
    assert sim.start_key(inputs=taken) != sim.start_key(inputs=other_value)
    assert sim.timing_key(inputs=taken) == sim.timing_key(inputs=other_value)
    assert sim.timing_key(inputs=taken) != sim.timing_key(inputs=not_taken)
    runs = {name: sim.run(inputs=i) for name, i in (("taken", taken), ("other", other_value), ("not", not_taken))}
    assert stats_digest(runs["taken"]) == stats_digest(runs["other"])
    assert runs["not"].cycles > runs["taken"].cycles and runs["not"].by_mnemonic["vexp"] == 8
    reuse = TimingReuse()
    got = [reuse.run(sim, inputs=i) for i in (taken, other_value, taken, not_taken)]
    assert [how for _, how in got] == [SIMULATED, SAME_TIMING, SAME_START, SIMULATED]
    assert [stats_digest(s) for s, _ in got] == [stats_digest(runs[n]) for n in ("taken", "other", "taken", "not")]


# Input word 0 is the row the second vector op reads: a row the first op writes, or another one.
ROW_FROM_INPUT = """
    addi r2, r0, 1
    addi r3, r0, 16
    dld.i a0, r0, r2, r3, r0, r3, int32
    wait dma
    lw r4, 0(r0)
    addi r6, r0, 4096
    addi r7, r0, 8192
    vexp r6, r6
    vexp r7, r4
    wait vector
    halt
"""


def runs_of_alike_and_unlike_inputs(program: str, alike: tuple, unlike) -> list:
    """The claim each timing-key test below makes: the two `alike` inputs give one timing key and
    bit-identical statistics, `unlike` another key. Returns the three runs (alike, alike, unlike)."""
    sim = CycleSimulator(EDGE)
    sim.load(assemble(program))
    assert sim.timing_key(inputs=alike[0]) == sim.timing_key(inputs=alike[1])
    assert sim.timing_key(inputs=alike[0]) != sim.timing_key(inputs=unlike)
    runs = [sim.run(inputs=i) for i in (*alike, unlike)]
    assert stats_digest(runs[0]) == stats_digest(runs[1])
    return runs


def test_vector_rows_count_only_through_how_recently_they_were_written():
    """Another row nobody else touches: the same key; the row the first op writes: another key
    (whether or not the read then waits for the write, the key does not assume it)."""
    runs_of_alike_and_unlike_inputs(ROW_FROM_INPUT, alike=(inputs(12288), inputs(16384)), unlike=inputs(4096))


# Input word 0 is the row the last vector op reads: one of two rows written before 100 other vector
# ops (both long complete by then), or the row those ops write.
ROW_WRITTEN_LONG_AGO = """
    addi r2, r0, 1
    addi r3, r0, 16
    dld.i a0, r0, r2, r3, r0, r3, int32
    wait dma
    lw r4, 0(r0)
    addi r6, r0, 4096
    addi r7, r0, 8192
    addi r8, r0, 12288
    vexp r6, r6
    vexp r7, r7
    loopi 100, body
      vexp r8, r8
    body:
    vexp r6, r4
    wait vector
    halt
"""


def test_rows_written_long_before_count_alike_whichever_they_are():
    """Two different rows, each last written long before (its writer surely complete): the same
    key and statistics (the refreshes' final-norm rows, which move with s0); the row written just
    before: another key."""
    runs_of_alike_and_unlike_inputs(ROW_WRITTEN_LONG_AGO, alike=(inputs(4096), inputs(8192)), unlike=inputs(12288))


# Input word 0 is the activation row of the second tile op (which follows an `mwb` into rows
# 8192..9215) and the vector-SRAM row a DMA writes; the timing asks of the row only whether the
# tile op's rows overlap the `mwb`'s (a DMA into vector SRAM reads no SRAM address at all).
MATRIX_ROW_FROM_INPUT = """
    addi r2, r0, 1
    addi r3, r0, 16
    dld.i a0, r0, r2, r3, r0, r3, int32
    wait dma
    lw r4, 0(r0)
    addi r6, r0, 64
    addi r8, r0, 8192
    dld.v a0, r4, r2, r6, r0, r6, bf16
    mm r0, r6, r0, 0
    mwb r8, r6, 0
    mm r4, r6, r0, 1
    wait dma|matrix
    halt
"""


def test_matrix_rows_count_only_through_which_of_them_overlap():
    """Rows shifted where no `mwb` writes: the same key and bit-identical statistics (the refreshes
    of different blocks); rows the `mwb` writes: another key, and the tile op waits for it."""
    runs = runs_of_alike_and_unlike_inputs(MATRIX_ROW_FROM_INPUT, alike=(inputs(2048), inputs(4096)),
                                           unlike=inputs(8192 + 512))
    assert runs[2].cycles > runs[0].cycles


# Input word 0 is the matrix-SRAM address a weight load writes between two tile ops on the tile
# at 0 (elements 0..4095): elsewhere it leaves the tile in the array, over it it forces a reload.
TILE_ADDRESS_FROM_INPUT = """
    addi r2, r0, 1
    addi r3, r0, 16
    dld.i a0, r0, r2, r3, r0, r3, int32
    wait dma
    lw r4, 0(r0)
    addi r6, r0, 64
    mm r0, r6, r0, 0
    dld.m a0, r4, r2, r6, r0, r6, bf16
    mm r0, r6, r0, 1
    wait dma|matrix
    halt
"""


def test_weight_load_addresses_count_only_through_the_tiles_they_overlap():
    runs = runs_of_alike_and_unlike_inputs(TILE_ADDRESS_FROM_INPUT, alike=(inputs(8192), inputs(16384)),
                                           unlike=inputs(1024))
    assert stats_digest(runs[2]) != stats_digest(runs[0])   # the tile is loaded twice


def test_the_timing_key_pass_leaves_the_memories_and_the_next_run_as_they_were():
    sim = CycleSimulator(EDGE)
    sim.load(assemble(BRANCH_ON_INPUT))
    first = stats_digest(sim.run(inputs=inputs(1, 3)))
    dram_before = sim.functional.dram.data.copy()
    sim.timing_key(inputs=inputs(0, 5))
    assert np.array_equal(sim.functional.dram.data, dram_before)
    assert stats_digest(sim.run(inputs=inputs(1, 3))) == first


def test_the_topk_schedule_is_the_one_the_runtime_drives():
    """topk_schedule lists exactly the StepRequests of npu.runtime.generate.decode_steps."""
    prompt, gen, block, steps = 5, 12, 4, 6
    for cache in ("none", "prefix", "dual"):
        plan = DecodeConfig(gen_length=gen, block_length=block, steps=steps, cache=cache)
        tokens = np.array([1] * prompt + [TINY.mask_token_id] * gen, np.int32)
        driver = decode_steps(tokens, prompt, plan, TINY.mask_token_id, 0.9, None, TINY.vocab_size)
        requests, request = [], next(driver)
        try:
            while True:
                requests.append((request.query_length, request.q0, request.s0, request.k))
                start = request.q0 + request.s0
                block_tokens = tokens[start:start + block].copy()
                masked = np.flatnonzero(block_tokens == TINY.mask_token_id)[:request.k]
                block_tokens[masked] = 2                   # commit the k leftmost masks
                out = StepOutput(x0=block_tokens, confidence=np.zeros(block, np.float32),
                                 committed=np.isin(np.arange(block), masked), tokens=block_tokens)
                request = driver.send((out, 0, 0.0))
        except StopIteration:
            pass
        schedule = topk_schedule(cache, prompt, gen, block, steps)
        assert [(s.query_length, s.q0, s.s0, s.k) for s in schedule] == requests


def tiny_programs(npu, seq_len: int, block: int, sampling: str = "topk"):
    shapes = Shapes(TINY, npu, seq_len)
    compiled: dict[int, StepProgram] = {}

    def program_for(query_length: int) -> StepProgram:
        if query_length not in compiled:
            step = compile_spec(StepSpec(shapes, query_length, block, sampling))
            compiled[query_length] = StepProgram(np.asarray(step.program, "<u4"), step.dram_map, step.constants)
        return compiled[query_length]
    return program_for


@pytest.mark.parametrize("npu_name, dram, gen, block, caches", [
    pytest.param("dnpu-edge", "jedec", 4, 4, ("dual",), marks=pytest.mark.slow),   # DRAM addresses in the key
    ("dnpu-cloud", "bandwidth", 8, 4, ("prefix", "dual"))])   # chunk plans in the timing key
def test_whole_topk_generations_with_reuse_are_bit_identical_to_simulating_every_step(npu_name, dram, gen, block,
                                                                                      caches):
    npu = load_npu_config(npu_name)
    prompt = 8
    program_for = tiny_programs(npu, prompt + gen, block)
    tokens = np.array([1] * prompt + [TINY.mask_token_id] * gen, np.int32)
    schedules = [topk_schedule(cache, prompt, gen, block, gen) for cache in caches]
    reuse = TimingReuse()
    got = simulate_generations(npu, schedules, program_for, tokens, dram=dram, reuse=reuse, log=None)
    want = simulate_generations(npu, schedules, program_for, tokens, dram=dram, reuse=SimulateEveryStep(), log=None)
    for mode_got, mode_want in zip(got, want):
        assert [r.digest for r in mode_got] == [r.digest for r in mode_want]
        assert generation_row(npu, mode_got) | {"steps_simulated": 0, "steps_same_start": 0} == \
            generation_row(npu, mode_want) | {"steps_simulated": 0, "steps_same_start": 0}
    assert reuse.counts[SIMULATED] <= sum(len(s) for s in schedules) // 2   # most steps reused
    assert [r.step.k for r in got[-1]] == [1] * gen


@pytest.mark.parametrize("threshold, temperature", [(0.6, 0.0), pytest.param(None, 0.8, marks=pytest.mark.slow)])
def test_reuse_is_exact_when_sampling_branches_on_computed_data(threshold, temperature):
    """Threshold commits (a data-dependent "count == 0" fallback) and Gumbel sampling, with
    execute_data: each step starts from the memories the functional simulator had before it."""
    seq_len, prompt = 12, np.array([1, 2, 3, 4, 5, 6, 7, 8], np.int32)
    plan = DecodeConfig(gen_length=4, block_length=2, steps=4, cache="dual", threshold=threshold,
                        temperature=temperature, seed=3)
    sampling = "topk" if threshold is None else "threshold"
    stepper = SimulatorStepper(TINY, random_weights(TINY, seed=4), EDGE, seq_len, sampling)
    starts = []
    run = stepper.sim.run

    def capturing_run(max_instructions):
        memories = [stepper.sim.dram.data.copy()] + [sram.data.copy() for sram in stepper.sim.srams.values()]
        starts.append((stepper.sim.program.words.copy(), memories))
        return run(max_instructions)
    stepper.sim.run = capturing_run
    generate(stepper, prompt, plan, TINY.mask_token_id)
    assert len(starts) >= 4
    sim = CycleSimulator(EDGE, execute_data=True, dram_size=stepper.dram.size)
    reuse, reference = TimingReuse(), []
    for words, memories in starts:
        sim.load(words)
        for target, saved in zip([sim.functional.dram] + list(sim.functional.srams.values()), memories):
            target.data[:] = saved
        got, _ = reuse.run(sim, 1_000_000)
        for target, saved in zip([sim.functional.dram] + list(sim.functional.srams.values()), memories):
            target.data[:] = saved
        reference.append(sim.run(1_000_000))
        assert stats_digest(got) == stats_digest(reference[-1])
    assert reuse.counts[SAME_START] == 0          # the data differ at every step
    assert len({stats_digest(s) for s in reference}) > 1


def test_the_cycle_stage_writes_whole_generations_from_every_step(tmp_path):
    """simulate_cycle's whole-generation table: every step of each cache mode accounted for
    (simulated or reused), sums consistent with the per-step figures, a clear row for a model
    the machine cannot hold."""
    from npu.sim.analytical.scenarios import ScenarioSettings, generation_recipe
    from npu.stages.simulate import whole_generation_rows

    recipe = generation_recipe("tiny-sort", ScenarioSettings())
    rows = {row["cache"]: row for row in whole_generation_rows(EDGE, "tiny-sort", recipe, 24, dram="bandwidth",
                                                               caches=("none", "dual"))}
    assert set(rows) == {"none", "dual"}
    for row in rows.values():
        assert row["status"] == "ok" and row["steps"] == recipe["steps"] and row["dram_backends"] == "bandwidth"
        assert row["steps_simulated"] + row["steps_same_start"] + row["steps_same_timing"] == row["steps"]
        assert row["latency_per_token_us"] == pytest.approx(row["cycles"] / EDGE.clock_hz / recipe["gen_length"] * 1e6)
    assert rows["dual"]["cycles"] < rows["none"]["cycles"]
    refused = whole_generation_rows(EDGE, "dream-7b", generation_recipe("dream-7b", ScenarioSettings()), 512)
    assert all(row["status"].startswith("not compiled: dnpu-edge") for row in refused)
