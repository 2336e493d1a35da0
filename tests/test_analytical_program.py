"""The analytical program model: closed-form segment timing against the cycle simulator.

Programs come from npu.sim.analytical.synthetic (GEMM-, attention-, vector- and sampling-like
code lowered as the compiler lowers it) and from the npu.kernels sampling pass. The goal of the
issue: <= 3 % mean absolute error per operator / instruction class and <= 2 % per program.
"""

import pytest

from npu.hw.config import load_npu_config
from npu.isa.assembler import assemble
from npu.sim.analytical import synthetic
from npu.check.crossval import crossvalidate
from npu.sim.analytical.program import (
    CountProfile,
    DmaTransfer,
    comment_regions,
    estimate_counts,
    estimate_program,
    region_lookup,
)
from npu.sim.analytical.segments import DramPipe, SegmentBuilder, SegmentClock, dma_request_sizes, dma_time
from npu.sim.cost.latency import DmaShape
from npu.sim.cycle import CycleSimulator

EDGE = load_npu_config("dnpu-edge")
CLOUD = load_npu_config("dnpu-cloud")
AR = load_npu_config("ar-npu")


def programs(config):
    mlen, blen = config.mlen, config.blen
    return {
        "gemm": synthetic.gemm_program(config, 4 * blen, 4 * mlen, 4 * mlen),
        "gemm_one_block": synthetic.gemm_program(config, blen, 2 * mlen, 8 * mlen),
        "attention": synthetic.attention_program(config, 2, 2 * blen, 4 * mlen, 128),
        "vector": synthetic.vector_program(config, 8, 512),
        "sampling": synthetic.sampling_program(config, 16, 4096),
        "sampling_threshold": synthetic.sampling_program(config, 70, 1024, threshold=0.9),
        "mixed": synthetic.mixed_program(config),
    }


@pytest.mark.parametrize("config", [EDGE, CLOUD, AR], ids=lambda c: c.name)
def test_analytical_model_meets_the_error_goals_on_synthetic_programs(config):
    for name, program in programs(config).items():
        result = crossvalidate(program, config, name=name)
        assert abs(result.total_error) <= 0.02, (name, result.table())
        assert result.mean_abs_error("class") <= 0.03, (name, result.table())
        assert result.mean_abs_error("operator") <= 0.03, (name, result.table())


def test_a_lone_vector_op_costs_dispatch_latency_wait_and_halt_exactly():
    program = assemble("vsum f1, r0\n wait vector\n halt")
    estimate = estimate_program(program, EDGE)
    # dispatch at 0, start at 1, result at 1 + 8 (log2(64) + 2); the wait dispatches then; halt + 1
    assert estimate.cycles == 1 + 8 + 2
    assert estimate.unit_busy == {"frontend": 3, "dma": 0, "matrix": 0, "vector": 1}


def test_front_end_bound_loop_is_timed_by_its_dispatch_count():
    # 3 vector ops + 1 addi per iteration; vexp waits one cycle for vsubs (latency 2): 4 / iteration
    program = assemble("""
        loopi 50, end
        vsubs r1, r1, f0
        vexp  r1, r1
        vsum  f1, r1
        addi  r1, r1, 64
    end:
        wait vector
        halt""")
    estimate = estimate_program(program, CLOUD)
    assert estimate.unit_busy["vector"] == 50 * 4
    assert estimate.unit_busy["frontend"] == 1 + 50 * 4 + 2
    sim = CycleSimulator(CLOUD, dram="bandwidth")
    sim.load(program)
    assert estimate.cycles == sim.run().cycles


def test_dma_closed_form_is_setup_latency_and_the_slower_of_port_and_dram():
    pipe = DramPipe.for_config(EDGE)
    builder = SegmentBuilder(EDGE, pipe=pipe)
    timing = builder.timing("dld.v", {"fmt": 1}, DmaShape(1, 8192))
    sizes = dma_request_sizes(timing.dram_bytes, 1)
    assert sizes == [2048] * 8
    # 16 KiB over LPDDR5 (47.5 B/cycle) is DRAM-bound: setup 4 + latency + 345 DRAM cycles + one chunk's port
    expected = 4 + pipe.read_latency + 345 + timing.sram_port_cycles / 8
    assert dma_time(timing, sizes, pipe) == pytest.approx(expected)


@pytest.mark.parametrize("config", [EDGE, CLOUD], ids=lambda c: c.name)
def test_tile_ops_wait_behind_a_weight_panel_longer_than_the_dma_queue(config):
    """In-order dispatch: the front end cannot dispatch a panel's tile ops before all but the last
    queue-depth (8) DMAs of the next panel have started. On cloud that serialises most of the
    DMA with the matrix work (LLaDA-8B linears were 30 % too fast without it); on edge the
    one-port matrix SRAM already does. The recipes (NpuStepModel) must agree too."""
    from npu.sim.analytical.npu_ops import _Recipes

    rows, k, n = 2 * config.blen, 16 * config.mlen, 2 * config.mlen
    result = crossvalidate(synthetic.gemm_program(config, rows, k, n), config)
    assert abs(result.total_error) <= 0.005, result.table()
    assert result.mean_abs_error("class") <= 0.01, result.table()
    recipe = SegmentClock(config).run(_Recipes(config, config.technology.latency).gemm("gemm", rows, k, n, False))
    assert recipe.cycles == pytest.approx(result.stats.cycles, rel=0.005)
    assert recipe.unit_busy["frontend"] < 0.1 * recipe.cycles  # queue waits are not front-end work


def test_count_only_estimate_is_a_lower_bound_of_the_ordered_one():
    program = synthetic.vector_program(CLOUD, 8, 512)
    ordered = estimate_program(program, CLOUD)
    counts = CycleSimulator(CLOUD, dram="bandwidth")
    counts.load(program)
    stats = counts.run()
    coarse = estimate_counts(CountProfile(stats.by_mnemonic, (DmaTransfer("dld.v", "bf16", 1, 512),)), CLOUD)
    assert coarse.instructions == stats.instructions
    assert coarse.cycles <= ordered.cycles
    assert coarse.unit_busy["vector"] == ordered.unit_busy["vector"]


def test_energy_actions_match_the_cycle_simulator():
    program = synthetic.mixed_program(EDGE)
    result = crossvalidate(program, EDGE, name="mixed")
    simulated = result.stats.energy.actions
    analytical = result.estimate.energy.actions
    for action in ("mac", "instruction", "dram_read_bytes", "vector_sram_read_bytes", "matrix_sram_read_bytes"):
        assert analytical[action] == pytest.approx(simulated[action]), action


def test_regions_come_from_op_labels_or_listing_comments():
    program = synthetic.mixed_program(CLOUD)
    region = region_lookup(program)
    assert region(0) == "norm_rmsnorm" and region(len(program) - 1) == "attn"
    listing = "# first part\n addi r1, r0, 1\n# second part\nend:\n addi r2, r0, 2\n halt\n"
    program = assemble(listing)
    regions = comment_regions(program, listing)
    assert [regions(pc) for pc in range(3)] == ["first", "second", "second"]


def test_segment_clock_carries_undrained_work_into_the_next_segment():
    builder = SegmentBuilder(EDGE)
    builder.dma("dld.v", "bf16", 1, 8192)
    first = builder.close(())              # no wait: the DMA keeps running
    second = SegmentBuilder(EDGE).close(("dma",))
    clock = SegmentClock(EDGE)
    short = clock.advance(first)
    rest = clock.advance(second)
    assert short == 2  # the front end only dispatched the DMA and the (empty) close
    assert short + rest == pytest.approx(1 + first.units["dma"].busy + 1)
