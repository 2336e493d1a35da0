"""Compiled step programs on the RTL (npu_top): a generation decoded by the runtime on the
functional simulator, its steps run on the RTL from the same DRAM images in order, the final state
(every register, all four SRAMs, the DRAM) compared bit for bit after each step; the RTL's cycles
beside the cycle simulator's (npu.check.rtl).

Machine: npu.check.rtl.rtl_machine("dnpu-edge") - dnpu-edge reduced to VLEN = MLEN = mx_block = 8,
BLEN 2 with SRAMs large enough for the tiny models (the same RTL, fewer lanes). Model: tiny-sort's
architecture with one layer and random weights (the trained checkpoint is the pipeline's business,
rule rtl_verify), narrowed to d_model 32 / d_ff 64 (one head of 32) in the slow generation test so
that a whole generation runs in minutes. Simulator: DNPU_RTL_SIM (Verilator by default here: a
compiled step is tens of thousands of cycles, about 500 cycles/s on Icarus).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from npu.check.rtl import (STEP_DRAM_BYTES, STEP_PROGRAM_WORDS, dram_timing, record_generation, rtl_machine, run_steps_on_rtl,
                           tiny_random_model)
from npu.models.decoding import DecodeConfig
from npu.rtl import sim as rtl_sim

SIMULATOR = os.environ.get("DNPU_RTL_SIM", "verilator")
PROMPT = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 10]   # tiny-sort's alphabet: digits, then '=' (10)


def skip_without(simulator: str) -> None:
    if reason := rtl_sim.missing_tool(simulator):
        pytest.skip(reason)


def generation_on_rtl(cache: str, steps: int | None, d_model: int, d_ff: int, simulator: str = SIMULATOR):
    skip_without(simulator)
    machine = rtl_machine("dnpu-edge")
    model, weights = tiny_random_model("tiny-sort", layers=1, d_model=d_model, d_ff=d_ff)
    plan = DecodeConfig(gen_length=8, block_length=4, steps=8, cache=cache)
    cases, tokens = record_generation(model, weights, machine, PROMPT, plan, max_steps=steps)
    assert steps is not None or not (tokens == model.mask_token_id).any()
    results = run_steps_on_rtl(machine, cases, simulator, program_words=STEP_PROGRAM_WORDS,
                               dram_bytes=STEP_DRAM_BYTES)
    for result in results:
        print(result.row())
    return cases, results


@pytest.mark.slow  # 8 steps, 269,020 cycles: about 2 minutes of CPU on Verilator once built (10 minutes)
def test_a_whole_dual_cache_generation_is_bit_exact_on_the_rtl_step_by_step():
    """Every step of a dual-cache generation (two blocks: a query-20 refresh step and three in-block
    steps each): bit-exact, and the DRAM each step leaves is the image the next one starts from
    (the runtime's hand-over: its token and K/V writes in between, nothing else)."""
    cases, results = generation_on_rtl("dual", None, d_model=32, d_ff=64)
    assert len(results) == 8
    assert all(r.bit_exact for r in results), [r.differences[:2] for r in results if not r.bit_exact]
    for before, after in zip(cases, cases[1:]):
        changed = np.flatnonzero(before.reference.dram != after.image)
        assert len(changed) < 200, "only the runtime's parameter / token writes lie between two steps"
    assert all(r.rtl_cycles > r.cycle_sim_cycles > 0 for r in results)


@pytest.mark.slow  # tiny-sort's widths (d_model 128, d_ff 512): about 2 M cycles, 3 minutes of CPU per mode
@pytest.mark.parametrize("cache", ["none", "prefix", "dual"])
def test_compiled_refresh_prefix_and_dual_steps_are_bit_exact_on_the_rtl(cache):
    _, results = generation_on_rtl(cache, 2, d_model=128, d_ff=512)
    assert len(results) == 2
    assert all(r.bit_exact for r in results), [r.differences[:2] for r in results if not r.bit_exact]


def test_the_activity_dump_records_npu_top_for_the_cycles_asked(tmp_path):
    """record_activity: a value change dump of npu_top's signals over the first N cycles of a program
    (Icarus), ending there."""
    from npu.isa.assembler import assemble
    from npu.rtl.top import reduced_config
    from npu.rtl.top_microbenchmarks import MICROBENCHMARKS
    from npu.rtl.top_sim import record_activity

    skip_without("icarus")
    machine = reduced_config()
    program = assemble(MICROBENCHMARKS["overlap: dld.m beside mm"]).words
    image = np.random.default_rng(3).integers(0, 256, 1 << 14, dtype=np.uint8)
    vcd = record_activity(machine, program, image, dram_timing(machine), tmp_path / "a.vcd", 50)
    lines = vcd.read_text().splitlines()
    assert any("u_dma" in line for line in lines if line.startswith("$scope"))
    clock = next(line.split()[3] for line in lines if line.startswith("$var") and line.split()[4] == "clk")
    edges = sum(line in (f"0{clock}", f"1{clock}") for line in lines)
    assert 98 <= edges <= 102   # 50 cycles: two clock edges each
