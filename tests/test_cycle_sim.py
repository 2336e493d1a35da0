"""The cycle simulator: hand-computed cycle counts, overlap, stalls, DRAM in the loop, traces.

Most programs run on dnpu-edge, whose numbers make the arithmetic short: VLEN = MLEN = 64,
BLEN = 8, every SRAM has ONE port of 128 bytes (vector / matrix) per cycle, LPDDR5 at
51.2 GB/s = 51.2 bytes per cycle at 1 GHz. Derived: tile ops stream through the array one
every BLEN = 8 cycles and each result lands 1 + 8 + 3 + MLEN (64, the systolic drain) = 76
cycles after its op starts, loading a 64x64 bf16 weight tile takes 8 KiB / 128 = 64 cycles,
`mwb` writes 8 x 64 bf16 = 8 port cycles on the write-back path beside the array.
Timing rules used below: dispatch 1 instruction/cycle; a queued instruction starts at the
earliest the cycle after its dispatch; `wait` dispatches when the unit is done; `halt` is one
more cycle; total = the later of the front end and the last completion.
"""

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

from npu.hw.config import load_npu_config
from npu.isa.assembler import assemble
from npu.isa.table import DRAM_FORMATS, INSTRUCTIONS
from npu.sim.cost.latency import DmaShape, instruction_timing
from npu.sim.cycle import CycleLimitError, CycleSimulator
from npu.sim.cycle import simulator as cycle_simulator_module
from npu.sim.dram import check_trace
from npu.sim.functional import FunctionalSimulator, SimulationError
from npu.sim.functional.simulator import HALT, InstructionFault

# The hand-computed programs run on a fixed machine: dnpu-edge as it was when they were written
# (BLEN 8, one 128-byte port on vector and matrix SRAM, 1 MiB matrix SRAM), so the arithmetic
# in their comments stays short whatever the preset becomes.
_EDGE_PRESET = load_npu_config("dnpu-edge")
EDGE = dataclasses.replace(
    _EDGE_PRESET, name="hand-edge", blen=8,
    vector_sram=dataclasses.replace(_EDGE_PRESET.vector_sram, ports=1),
    matrix_sram=dataclasses.replace(_EDGE_PRESET.matrix_sram, size_bytes=1 << 20, width_bits=1024, ports=1),
    paired_issue=False)
CLOUD = load_npu_config("dnpu-cloud")
# dnpu-cloud with its former one-row SRAM words (vector 1024, matrix 2048 bits): port-bound DMAs
NARROW_CLOUD = dataclasses.replace(CLOUD, vector_sram=dataclasses.replace(CLOUD.vector_sram, width_bits=1024),
                                   matrix_sram=dataclasses.replace(CLOUD.matrix_sram, width_bits=2048))


def simulate(source, config=EDGE, **options):
    sim = CycleSimulator(config, **options)
    sim.load(assemble(source))
    return sim, sim.run()


def events(stats, name):
    return [event for event in stats.timeline if event.name == name]


# ---- the latency model -------------------------------------------------------------------------

def test_latency_model_times_every_instruction_with_plena_numbers():
    for spec in INSTRUCTIONS:
        operands = {f.name: 0 for f in spec.fields}
        if "fmt" in operands:
            operands["fmt"] = DRAM_FORMATS.index("int32" if spec.mnemonic.endswith(".i") else "bf16")
        timing = instruction_timing(spec, EDGE, operands, DmaShape(2, 64))
        assert timing.issue == 1 and 1 <= timing.occupancy <= timing.latency, spec.mnemonic
        assert timing.unit == spec.unit.value
    latency = {name: instruction_timing(name, EDGE).latency
               for name in ("vadd", "vmul", "vexp", "vrecip", "vmaxr", "vsum", "vrank")}
    assert latency == {"vadd": 2, "vmul": 1, "vexp": 1, "vrecip": 2, "vmaxr": 4, "vsum": 8, "vrank": 20}
    mm = instruction_timing("mma", EDGE)
    # tile ops stream one every BLEN cycles; PLENA's 1 + BLEN + 3 and the MLEN drain are latency
    assert (mm.occupancy, mm.latency, mm.fill_drain, mm.weight_load_cycles) == (8, 1 + 8 + 3 + 64, 64, 64)
    cloud = instruction_timing("mma", CLOUD)  # 16 x 128 bf16 feed through a 256-byte port: 16 cycles
    assert (cloud.occupancy, cloud.weight_load_cycles) == (16, 128 * 128 * 2 // 2048)
    assert instruction_timing("mma", NARROW_CLOUD).occupancy == 2 * 16  # through a 128-byte port


def test_dma_timing_is_setup_plus_sram_bytes_over_the_port_width():
    operands = {"fmt": DRAM_FORMATS.index("mxint4")}
    timing = instruction_timing("dld.m", EDGE, operands, DmaShape(64, 64))
    assert timing.dram_bytes == 64 * 2 * (1 + 16)          # two 32-element MX blocks per row
    assert timing.sram_bytes == 64 * 64 * 2                 # dequantised to bf16
    assert timing.occupancy == timing.dma_setup + 64 * 64 * 2 // 128
    with pytest.raises(ValueError, match="shape"):
        instruction_timing("dld.v", EDGE, operands)


# ---- hand-computed programs ------------------------------------------------------------------

@pytest.mark.parametrize("op, latency", [("vadd r0, r0, r0", 2), ("vmul r0, r0, r0", 1), ("vexp r0, r0", 1),
                                         ("vrecip r0, r0", 2), ("vmaxr f1, r0", 4), ("vsum f1, r0", 8)])
def test_single_vector_op_takes_dispatch_plus_latency_plus_wait_and_halt(op, latency):
    _, stats = simulate(f"{op}\n wait vector\n halt")
    # dispatch at 0, start at 1, done at 1 + latency; wait dispatches then, halt one cycle later
    assert stats.cycles == 1 + latency + 2
    assert stats.units["vector"].busy == 1
    assert stats.units["frontend"].stalls["wait"] == latency


def test_independent_ops_on_two_units_overlap_and_wait_serialises_them():
    overlapped = "vsum f1, r0\n mwb r0, r0, 0\n wait vector|matrix\n halt"
    serialised = "vsum f1, r0\n wait vector\n mwb r0, r0, 0\n wait matrix\n halt"
    _, both = simulate(overlapped, record_timeline=True)
    _, one_by_one = simulate(serialised)
    # vsum: start 1, done 9. mwb: start 2, 8 port cycles, done 2 + 8 + 1 = 11. wait -> 11, halt 12.
    assert both.cycles == 13
    assert events(both, "mwb")[0].start == 2
    # serialised: vsum done 9, wait until 9, mwb dispatched 10, starts 11, done 20, wait, halt
    assert one_by_one.cycles == 22


def test_vector_op_reading_a_row_in_flight_waits_for_it():
    _, dependent = simulate("addi r1, r0, 64\n addi r2, r0, 128\n vsilu r1, r0\n vmul r2, r1, r1\n"
                            "wait vector\n halt", record_timeline=True)
    _, independent = simulate("addi r1, r0, 64\n addi r2, r0, 128\n vsilu r1, r0\n vmul r2, r0, r0\n"
                              "wait vector\n halt")
    # vsilu (exp 1 + add 2 + recip 2 + mul 1 = 6) starts 3, done 9: vmul may start at 9, not 4
    assert events(dependent, "vmul")[0].start == 9
    assert dependent.units["vector"].stalls["dependency"] == 5
    assert (dependent.cycles, independent.cycles) == (12, 11)


def test_register_written_by_a_vector_reduction_stalls_its_reader():
    _, stats = simulate("vsum f1, r0\n fadd f2, f1, f1\n halt", record_timeline=True)
    # vsum completes at 9; fadd (dispatch 1) must wait until f1 is written
    assert events(stats, "fadd")[0].start == 9
    assert stats.units["frontend"].stalls["dependency"] == 8
    assert stats.cycles == 11


def test_full_queue_stalls_dispatch_until_the_oldest_entry_starts():
    program = "mma r0, r0, r0, 0\n" * 4 + "halt"
    _, deep = simulate(program, record_timeline=True)
    _, shallow = simulate(program, queue_depth=2, record_timeline=True)
    # mma 0: weight tile load [1, 65), streams [65, 73); mma 1..3 follow every BLEN = 8 cycles;
    # the last (start 89) completes 1 + 8 + 3 + 64 (drain) later, at 165. With 2 queue entries,
    # mma 2 waits until mma 0 starts (65) and mma 3 until mma 1 starts (73); halt dispatches at
    # 74 instead of 4.
    assert deep.cycles == shallow.cycles == 165
    assert deep.units["frontend"].stalls["queue_full"] == 0
    assert shallow.units["frontend"].stalls["queue_full"] == (65 - 2) + (73 - 66)
    assert events(shallow, "halt")[0].start == 74 and events(deep, "halt")[0].start == 4


@pytest.mark.parametrize("ops", [1, 2, 4, 7])
def test_matrix_sequence_pays_weight_load_and_fill_drain_once(ops):
    _, stats = simulate("mma r0, r0, r0, 0\n" * ops + "mwb r0, r0, 0\n wait matrix\n halt")
    # 1 + 64 (weight load) + 8 per op (streaming) + 1 + 3 + 64 (pipeline and drain of the last)
    # + 8 (mwb) + 1 (write), then wait and halt
    assert stats.cycles == 1 + 64 + 8 * ops + 1 + 3 + 64 + 8 + 1 + 2
    assert stats.energy.actions["mac"] == ops * 8 * 64 * 64


def test_the_next_weight_tile_streams_in_under_every_op_that_reuses_the_current_one():
    """Double-buffered weights: the shadow registers are free once the op that switched to the
    current tile has started, so with two accumulators on one tile the next tile's load overlaps
    both ops (edge: 64-cycle load, 8-cycle ops)."""
    program = ("mma r0, r0, r0, 0\n mma r0, r0, r0, 1\n addi r1, r0, 4096\n mma r0, r0, r1, 0\n"
               "wait matrix\n halt")
    _, stats = simulate(program, record_timeline=True)
    starts = [event.start for event in events(stats, "mma")]
    # tile 0 loads [1, 65); ops at 65 and 73; tile 1 loads from 65 (not 73) on the free port
    assert starts == [65, 73, 65 + 64]


def test_a_new_weight_tile_per_op_is_limited_by_the_matrix_sram_port():
    program = "".join(f"addi r1, r0, {4096 * i}\n mma r0, r0, r1, 0\n" for i in range(4)) + \
        "mwb r0, r0, 0\n wait matrix\n halt"
    _, stats = simulate(program)
    _, reused = simulate(program.replace("mma r0, r0, r1, 0", "mma r0, r0, r0, 0"))
    # each 64-cycle load needs the single port; the array waits for it (8-cycle ops)
    assert stats.cycles - reused.cycles == 3 * (64 - 8)
    assert stats.units["matrix"].stalls["dependency"] > reused.units["matrix"].stalls["dependency"]


def test_writeback_of_one_accumulator_overlaps_tile_ops_into_another():
    """`mwb` runs on the write-back path beside the array: it waits for its own accumulator's
    result (start + 1 + 8 + 3 + 64 = 76 on edge), not for the tile ops queued behind it. With a
    second vector-SRAM port for its writes the array never stops; with edge's one port the
    activation feed of the op that meets it waits for the port."""
    program = ("addi r1, r0, 64\n mma r0, r1, r0, 0\n addi r2, r0, 4096\n mwb r2, r1, 0\n"
               + "mma r0, r1, r0, 1\n" * 12 + "wait matrix\n halt")
    two_ports = dataclasses.replace(EDGE, vector_sram=dataclasses.replace(EDGE.vector_sram, ports=2))
    _, stats = simulate(program, config=two_ports, record_timeline=True)
    assert [event.start for event in events(stats, "mma")] == [66 + 8 * i for i in range(13)]
    assert events(stats, "mwb")[0].start == 66 + 76  # while the 10th tile op streams
    _, one_port = simulate(program, record_timeline=True)
    assert events(one_port, "mwb")[0].start == 66 + 76
    assert [event.start for event in events(one_port, "mma")][9:] == [66 + 76 + 8 + 8 * i for i in range(4)]


def test_tile_op_waits_until_the_writeback_of_its_accumulator_has_read_it():
    """Its first result lands 1 + MLEN = 65 cycles after it starts, so a tile op into an
    accumulator with a pending `mwb` starts no earlier than that write-back's end - 65."""
    program = ("addi r1, r0, 64\n addi r2, r0, 4096\n mma r0, r1, r0, 0\n mwb r2, r1, 0\n"
               "mma r0, r1, r0, 0\n wait matrix\n halt")
    _, stats = simulate(program, record_timeline=True)
    mwb = events(stats, "mwb")[0]
    second = events(stats, "mma")[1]
    assert mwb.start == 67 + 76 and second.start == mwb.end - 65


def test_tile_op_reading_rows_an_inflight_writeback_writes_waits_for_it():
    """Same-unit accesses are ordered (ISA rule 1): the array must not read activation rows
    before an earlier `mwb` into them has written them."""
    program = ("addi r1, r0, 64\n addi r2, r0, 4096\n mma r0, r1, r0, 0\n mwb r2, r1, 0\n"
               "mma {act}, r1, r0, 1\n wait matrix\n halt")
    _, apart = simulate(program.format(act="r0"), record_timeline=True)
    _, reading = simulate(program.format(act="r2"), record_timeline=True)
    assert events(apart, "mma")[1].start == 67 + 8
    assert events(reading, "mma")[1].start == events(reading, "mwb")[0].end


def test_dma_into_matrix_sram_waits_only_for_tile_ops_reading_what_it_overwrites():
    """ISA rule 4: the refill of a tile an earlier tile op has not loaded yet waits for that load;
    a DMA into another part of matrix SRAM does not."""
    program = ("addi r1, r0, 64\n mma r0, r1, r0, 0\n addi r3, r0, {target}\n"
               "dld.m a0, r3, r1, r1, r1, r1, bf16\n wait dma|matrix\n halt")
    _, same = simulate(program.format(target=0), record_timeline=True)
    _, other = simulate(program.format(target=8192), record_timeline=True)
    assert events(same, "dld.m")[0].start == 66  # the tile is in the array from cycle 66
    assert events(other, "dld.m")[0].start == 4
    assert same.units["dma"].stalls["dependency"] == 66 - 4


def test_paired_issue_puts_a_scalar_update_beside_the_queued_op_before_it():
    """Two-wide issue (NPUConfig.paired_issue): `addi` shares the cycle of the `vmuls` before it,
    and the next `vmuls` may read its result one cycle later, so the loop takes 1 cycle per
    iteration instead of 2. A scalar that uses an SRAM port (`lw`) never pairs."""
    program = "loopi 20, end\n vmuls r1, r1, f0\n {scalar}\n end:\n wait vector\n halt"
    paired_machine = dataclasses.replace(EDGE, paired_issue=True)
    _, single = simulate(program.format(scalar="addi r1, r1, 64"))
    _, paired = simulate(program.format(scalar="addi r1, r1, 64"), config=paired_machine)
    # loopi + 20 x (vmuls, addi) + wait + halt = 43; paired: loopi + 20 cycles, the last vmuls's
    # result one cycle later, then wait + halt = 24
    assert (single.cycles, paired.cycles) == (43, 24)
    assert single.units["frontend"].busy - paired.units["frontend"].busy == 20
    _, load_single = simulate(program.format(scalar="lw r2, 0(r0)"))
    _, load_paired = simulate(program.format(scalar="lw r2, 0(r0)"), config=paired_machine)
    assert load_paired.cycles == load_single.cycles


def test_taken_branch_costs_one_bubble():
    _, taken = simulate("j skip\n nop\n skip: halt")
    _, straight = simulate("nop\n halt")
    assert taken.cycles == straight.cycles + 1 == 3
    assert taken.units["frontend"].stalls["branch"] == 1


# ---- DMA and DRAM in the loop ------------------------------------------------------------------

def dma_load(rows, cols=1024, fmt="bf16", store=False):
    op = "dst.v" if store else "dld.v"
    return (f"addi r1, r0, {rows}\n addi r2, r0, {cols}\n addi r3, r0, {2 * cols}\n"
            f"{op} a0, r0, r1, r2, r3, r2, {fmt}\n wait dma\n halt")


@pytest.mark.parametrize("dram", ["jedec", "bandwidth"])
def test_dma_time_grows_with_bytes_and_stays_under_the_dram_peak(dram):
    cycles = {rows: simulate(dma_load(rows), dram=dram)[1].cycles for rows in (4, 16, 64)}
    assert cycles[4] < cycles[16] < cycles[64]
    for rows, count in cycles.items():
        assert rows * 2048 / count <= EDGE.dram_bytes_per_cycle  # 51.2 bytes per cycle
    assert 64 * 2048 / cycles[64] > 0.8 * EDGE.dram_bytes_per_cycle


def test_dma_into_a_one_port_sram_is_capped_by_the_port_width():
    _, stats = simulate(dma_load(256), config=NARROW_CLOUD)
    # HBM3 delivers 819 bytes per cycle, but vector SRAM takes 128 bytes per cycle per port
    rate = 256 * 2048 / stats.cycles
    assert 0.9 * 128 < rate <= 128
    assert stats.units["dma"].busy == 4 + 256 * 2048 // 128


def test_bandwidth_backend_agrees_with_the_jedec_model_on_a_long_stream():
    jedec = simulate(dma_load(512), dram="jedec")[1].cycles
    fast = simulate(dma_load(512), dram="bandwidth")[1].cycles
    assert abs(fast - jedec) / jedec < 0.10


def test_dram_commands_of_a_dma_heavy_program_obey_every_jedec_rule():
    source = """
        addi r1, r0, 32
        addi r2, r0, 512
        addi r3, r0, 4096        # strided rows: a new DRAM row every 4 KiB
        addi r4, r0, 1024
        dld.v a0, r0, r1, r2, r3, r2, bf16
        dld.m a1, r0, r1, r2, r4, r2, mxint4
        wait dma
        aaddi a2, a0, 65536
        dst.v a2, r0, r1, r2, r4, r2, bf16
        dld.v a0, r4, r1, r2, r3, r2, bf16
        wait dma
        halt"""
    sim, stats = simulate(source, record_dram_trace=True)
    trace = sim.dram.model.trace
    assert len(trace) > 100 and {"ACT", "RD", "WR"} <= {command.kind for command in trace}
    assert check_trace(trace, sim.dram.timing) == []
    assert stats.dram.bytes_written == 32 * 1024 and stats.dram.row_hit_rate is not None


@pytest.mark.parametrize("config", [EDGE, CLOUD], ids=["edge", "cloud"])
def test_fast_dram_model_gives_the_same_run_as_the_reference_dram_model(config):
    """The JEDEC backend's fast paths (identical channels, row-hit runs) change no cycle."""
    source = """
        addi r1, r0, 48
        addi r2, r0, 704
        addi r3, r0, 4096        # strided rows, not a multiple of the channel interleave
        addi r4, r0, 1408
        dld.v a0, r0, r1, r2, r3, r2, bf16
        dld.m a1, r0, r1, r2, r4, r2, mxint4
        wait dma
        aaddi a2, a0, 65600
        dst.v a2, r0, r1, r2, r4, r2, bf16
        dld.v a0, r4, r1, r2, r3, r2, bf16
        wait dma
        halt"""
    sim, fast = simulate(source, config=config, record_dram_trace=True)
    fast_trace = sim.dram.model.trace
    sim, reference = simulate(source, config=config, record_dram_trace=True, dram="jedec-reference")
    assert not sim.dram.model.fast
    assert fast == reference
    assert fast_trace == sim.dram.model.trace
    assert check_trace(fast_trace, sim.dram.timing) == []


_FAST_PATH_PROGRAM = """
        addi r1, r0, 48
        addi r2, r0, 66
        addi r3, r0, 4096        # strided short rows: chunks of few port cycles, some of none
        addi r4, r0, 132
        addi r5, r0, 64
        addi r6, r0, 1024
        addi r7, r0, 2048
        loopi 3, again
        dld.v a0, r0, r1, r2, r3, r2, bf16
        vexp r0, r0              # the vector unit competes for the vector SRAM port
        mma r0, r0, r0, 0           # weight tiles (alternately transposed) reserve the matrix
        mmt r0, r0, r0, 0           # SRAM port ahead: the next load finds it taken
        mma r0, r0, r0, 0
        mmt r0, r0, r0, 0
        dld.v a0, r6, r1, r6, r7, r6, bf16   # meets the tile ops' activation feeds on the port
        dst.v a0, r0, r1, r2, r4, r2, bf16
        dld.m a1, r0, r1, r5, r4, r5, mxint4  # after the tiles are read (ISA rule 4)
        again:
        wait dma|vector|matrix
        halt"""


@pytest.mark.parametrize("config", [EDGE, NARROW_CLOUD], ids=["edge", "cloud"])
@pytest.mark.parametrize("dram", ["bandwidth", "jedec"])
def test_vectorised_dma_and_dram_paths_give_the_same_run_as_chunk_by_chunk(config, dram, monkeypatch):
    """Whole-DMA port reservations and the vectorised bandwidth pipe change no cycle or counter."""
    from npu.sim.cost import dram as dram_module
    from npu.sim.cycle.ports import PortPool

    taken = []
    reserve_run = PortPool.reserve_run
    monkeypatch.setattr(PortPool, "reserve_run", lambda *args: taken.append(reserve_run(*args)) or taken[-1])
    _, fast = simulate(_FAST_PATH_PROGRAM, config=config, dram=dram)
    assert True in taken and False in taken  # the fast path ran, and declined where it must
    monkeypatch.setattr(cycle_simulator_module, "FAST_DMA", False)
    _, segmented = simulate(_FAST_PATH_PROGRAM, config=config, dram=dram)  # chunk loop, in segments
    monkeypatch.setattr(cycle_simulator_module, "SEGMENTED_CHUNKS", False)
    monkeypatch.setattr(dram_module, "_FIXED_POINT_PASSES", 0)
    taken.clear()
    _, reference = simulate(_FAST_PATH_PROGRAM, config=config, dram=dram)
    assert taken == []
    assert fast == segmented == reference


def test_vectorised_bandwidth_pipe_matches_the_request_by_request_loop(monkeypatch):
    """Idle, briefly busy and saturated pipes: the same float pipe time and completions."""
    from npu.sim.cost.dram import make_dram
    from npu.sim.cost import dram as dram_module

    rng = np.random.default_rng(7)
    calls, at = [], 0
    for _ in range(200):
        count = int(rng.integers(1, 150))
        sizes = rng.choice([64, 132, 2048, 4000], count).tolist()
        gaps = rng.choice([0, 1, 1, 2, 30] if rng.random() < 0.7 else [0, 1], count)
        issue = (at + np.cumsum(gaps)).tolist()
        calls.append((sizes, issue, bool(rng.random() < 0.2)))
        at = issue[-1] + int(rng.choice([0, 5, 1000]))
    results = []
    # the shipped settings; busy runs alone (one fixed-point pass, no run limit); the loop alone
    for passes, runs in ((dram_module._FIXED_POINT_PASSES, dram_module._BUSY_RUNS), (1, 10**6), (0, 0)):
        monkeypatch.setattr(dram_module, "_FIXED_POINT_PASSES", passes)
        monkeypatch.setattr(dram_module, "_BUSY_RUNS", runs)
        for config in (EDGE, CLOUD):
            model = make_dram("bandwidth", config)
            results.append(([model.serve(list(range(len(sizes))), sizes, write, issue)
                             for sizes, issue, write in calls], model.pipe_free, model.latency_total))
    assert results[:2] == results[2:4] == results[4:]


def test_shift_profiles_serve_exactly_what_serve_arrays_serves(monkeypatch):
    """A DMA pattern's completions from its profile (at + done) equal serve_arrays' at every
    start that finds the pipe idle, up to 1.2e10 cycles; the pipe and counters stay in step."""
    from npu.sim.cost import dram as dram_module
    from npu.sim.cost.dram import make_dram

    rng = np.random.default_rng(11)
    served = busy = 0
    for config in (EDGE, CLOUD):
        for _ in range(120):
            count = int(rng.integers(1, 140))
            sizes = np.asarray(rng.choice([64, 132, 700, 2048], count), dtype=np.int64)
            offsets = np.cumsum(rng.choice([0, 0, 1, 3, 40], count)).astype(np.int64)
            write = bool(rng.random() < 0.3)
            shifted, reference = make_dram("bandwidth", config), make_dram("bandwidth", config)
            profile = shifted.shift_profile(sizes, offsets, write)
            if profile is None:  # some pipe time lies too close to an integer cycle
                continue
            at = 0
            for _ in range(4):
                at += int(rng.choice([0, 3, 10**5, 3 * 10**9]))
                idle = reference.pipe_free <= at
                if shifted.serve_shifted(profile, at):
                    assert idle
                    served += 1
                    assert (at + profile.done == reference.serve_arrays(offsets, sizes, write, at + offsets)).all()
                else:
                    assert not idle
                    busy += 1
                    for model in (shifted, reference):
                        model.serve_arrays(offsets, sizes, write, at + offsets)
                assert (shifted.pipe_free, shifted.latency_total, shifted.requests, shifted.bytes_read,
                        shifted.bytes_written) == (reference.pipe_free, reference.latency_total, reference.requests,
                                                   reference.bytes_read, reference.bytes_written)
    assert served > 100 and busy > 10
    # A pipe time that can land on an integer cycle has no profile (its ceiling depends on rounding).
    model = make_dram("bandwidth", EDGE)
    model.bytes_per_cycle = 64.0
    assert model.shift_profile(np.array([128, 64]), np.array([0, 0]), False) is None
    assert model.shift_profile(np.array([100, 64]), np.array([0, 0]), False) is not None
    monkeypatch.setattr(dram_module, "FAST_SHIFT", False)
    assert model.shift_profile(np.array([100, 64]), np.array([0, 0]), False) is None


@pytest.mark.parametrize("config", [EDGE, CLOUD], ids=["edge", "cloud"])
def test_shifted_dma_profiles_give_the_same_run_as_computing_every_dma(config, monkeypatch):
    """DMAs served from their plan's profile (bandwidth DRAM) change no cycle or counter."""
    from npu.sim.cost.dram import BandwidthDram

    taken = []
    serve_shifted = BandwidthDram.serve_shifted
    monkeypatch.setattr(BandwidthDram, "serve_shifted", lambda *args: taken.append(serve_shifted(*args)) or taken[-1])
    runs = []
    for shifted in (True, False):
        monkeypatch.setattr(cycle_simulator_module, "SHIFTED_DMA", shifted)
        runs.append(simulate(_FAST_PATH_PROGRAM, config=config, dram="bandwidth", record_timeline=True)[1])
        assert (True in taken) == shifted
        taken.clear()
    assert runs[0] == runs[1]


def test_dma_and_vector_unit_contend_for_a_single_sram_port():
    vector_work = "loopi 200, done\n vexp r5, r5\n done:\n"
    source = (f"addi r1, r0, 64\n addi r2, r0, 1024\n addi r3, r0, 2048\n lui r5, 8\n"
              f"dld.v a0, r0, r1, r2, r3, r2, bf16\n {vector_work} wait dma|vector\n halt")
    _, one_port = simulate(source)
    _, two_ports = simulate(source, config=CLOUD)
    conflicts = lambda s: s.units["vector"].stalls["port_conflict"] + s.units["dma"].stalls["port_conflict"]
    assert conflicts(one_port) > 0
    assert conflicts(two_ports) == 0


# ---- outputs -----------------------------------------------------------------------------------

def test_chrome_trace_is_valid_json_with_one_event_per_instruction(tmp_path):
    source = dma_load(4).replace("wait dma\n halt", "vexp r0, r0\n mma r0, r0, r0, 0\n wait dma|vector|matrix\n halt")
    _, stats = simulate(source, record_timeline=True)
    trace = json.loads(stats.write_chrome_trace(tmp_path / "trace.json").read_text())
    instructions = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert len(instructions) == stats.instructions
    tracks = {e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "thread_name"}
    assert tracks == {"control", "scalar", "dma", "matrix", "vector"}
    dma = next(e for e in instructions if e["name"] == "dld.v")
    assert dma["dur"] > 0 and dma["ts"] * 1000 == pytest.approx(dma["args"]["start_cycle"])  # 1 GHz: 1 ns
    assert max(e["ts"] + e["dur"] for e in instructions) * 1000 <= stats.cycles


def test_breakdowns_add_up_and_energy_is_counts_times_energies():
    _, stats = simulate(dma_load(16).replace("halt", "mma r0, r0, r0, 0\n mwb r0, r0, 0\n vexp r0, r0\n"
                                                     "wait matrix|vector\n halt"))
    for name, unit in stats.units.items():
        assert unit.busy + sum(unit.stalls.values()) + unit.idle == stats.cycles, name
    energy = stats.energy
    assert energy.picojoules["matrix"] == pytest.approx(8 * 64 * 64 * EDGE.technology.energy.mac)
    assert energy.actions["dram_read_bytes"] == 16 * 2048
    assert energy.actions["dma_codec_element"] == 16 * 1024  # every element through the DMA codec
    assert energy.picojoules["dma codec"] == pytest.approx(16 * 1024 * EDGE.technology.energy.dma_codec_element)
    assert energy.picojoules["leakage"] == pytest.approx(stats.cycles * EDGE.technology.energy.leakage_pj_per_cycle(EDGE.total_sram_bytes, EDGE.clock_ghz))
    assert energy.total_pj == pytest.approx(sum(energy.picojoules.values()))


def test_runs_are_deterministic():
    source = dma_load(32).replace("halt", "loopi 50, e\n vexp r0, r0\n mma r0, r0, r0, 0\n e:\n wait vector|matrix\n halt")
    first = simulate(source, record_timeline=True)[1]
    sim, second = simulate(source, record_timeline=True)
    assert first == second
    assert sim.run() == first  # the same simulator again


# ---- limits instead of hangs -------------------------------------------------------------------

def test_endless_loop_hits_the_instruction_limit_with_a_state_report():
    sim = CycleSimulator(EDGE)
    sim.load(assemble("vexp r0, r0\n spin: j spin"))
    with pytest.raises(CycleLimitError, match="instruction limit") as caught:
        sim.run(max_instructions=1000)
    assert any(state.startswith("vector: 1 accepted") for state in caught.value.unit_states)
    assert "j" in caught.value.instruction


def test_dma_that_cannot_finish_in_time_reports_the_stuck_instruction_and_units():
    sim = CycleSimulator(EDGE)
    sim.load(assemble("vexp r0, r0\n" + dma_load(1000)))
    with pytest.raises(CycleLimitError, match="cycle limit 10000") as caught:
        sim.run(max_cycles=10_000)
    assert caught.value.instruction.startswith("dld.v")
    states = "\n".join(caught.value.unit_states)
    assert "front end: at pc" in states and "dma: 0 accepted" in states and "vector_sram" in states


def test_wait_past_the_cycle_limit_is_reported():
    sim = CycleSimulator(EDGE)
    sim.load(assemble("mma r0, r0, r0, 0\n mwb r0, r0, 0\n wait matrix\n halt"))
    with pytest.raises(CycleLimitError, match="wait") as caught:
        sim.run(max_cycles=100)
    assert "matrix: 2 accepted" in "\n".join(caught.value.unit_states)


# ---- same dynamic instruction stream as the functional simulator -------------------------------

PROGRAMS = {
    "nested loops with register counts": """
        addi r1, r0, 3
        addi r2, r0, 0
        addi r6, r0, 4096
        addi r7, r0, 8192
        loop r1, outer
          loopi 4, inner
            vexp r6, r6
            addi r2, r2, 1
          inner:
          loopi 0, never
            vexp r6, r6
          never:
          mma r0, r0, r0, 0
        outer:
        mwb r7, r0, 0
        wait matrix|vector
        halt""",
    "countdown with branches": """
        addi r1, r0, 7
        addi r3, r0, 2
        addi r7, r0, 64
        addi r8, r0, 4096
        again:
          dld.v a0, r8, r3, r7, r7, r7, bf16
          blt r1, r3, small
          vsum f1, r0
          j next
        small:
          vmaxr f2, r0
        next:
          addi r1, r1, -1
          wait dma
          bne r1, r0, again
        wait vector
        halt""",
    "loop with a data-independent exit": """
        addi r4, r0, 10
        addi r5, r0, 0
        loopi 20, body_end
          addi r5, r5, 1
          beq r5, r4, body_end
          vmul r0, r0, r0
        body_end:
        wait vector
        halt""",
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_same_dynamic_instruction_counts_as_the_functional_simulator(name):
    program = assemble(PROGRAMS[name])
    functional = FunctionalSimulator(EDGE, dram_size=1 << 16)
    functional.load(program)
    expected = functional.run()
    cycle = CycleSimulator(EDGE)
    cycle.load(program)
    stats = cycle.run()
    assert stats.by_mnemonic == expected.by_mnemonic
    assert stats.instructions == expected.instructions


def test_stepping_the_functional_simulator_through_its_public_interface_equals_run():
    """The interface the cycle simulator drives: handler(pc), advance_loops, HALT."""
    program = assemble(PROGRAMS["nested loops with register counts"])
    reference = FunctionalSimulator(EDGE, dram_size=1 << 16)
    reference.load(program)
    expected = reference.run()
    stepped = FunctionalSimulator(EDGE, dram_size=1 << 16)
    stepped.load(program)
    assert stepped.decoded_instructions[0].mnemonic == "addi"
    pc, executed = 0, 0
    while True:
        next_pc = stepped.handler(pc)()
        executed += 1
        if next_pc == HALT:
            break
        pc = stepped.advance_loops(next_pc)
    assert executed == expected.instructions
    assert [stepped.int_reg(i) for i in range(16)] == [reference.int_reg(i) for i in range(16)]
    assert stepped.instruction_text(pc) == "halt"
    past_the_end = len(program)
    with pytest.raises(InstructionFault, match="past the end"):
        stepped.handler(past_the_end)()
    with pytest.raises(SimulationError, match=r"pc 2 \(source line \d+\): `addi r6, r0, 4096`: boom"):
        stepped.raise_at(2, "boom")


def test_the_cycle_simulator_uses_only_the_public_interface_of_the_functional_simulator():
    source = Path(cycle_simulator_module.__file__).read_text()
    assert re.findall(r"(?:fsim|functional)\._\w+", source) == []
    assert "_Fault" not in source


def test_execute_data_mode_computes_what_the_functional_simulator_computes():
    source = """
        addi r1, r0, 2
        addi r2, r0, 64
        addi r3, r0, 256
        dld.v a0, r0, r1, r2, r3, r2, fp32
        wait dma
        vexp r2, r0
        vsum f1, r2
        wait vector
        addi r4, r0, 4096
        amov a1, r4
        dst.v a1, r2, r1, r2, r3, r2, fp32
        wait dma
        halt"""
    values = np.random.default_rng(0).normal(size=(2, 64)).astype(np.float32)
    functional = FunctionalSimulator(EDGE, dram_size=1 << 16)
    functional.dram.write(0, values, "fp32")
    functional.load(assemble(source))
    functional.run()
    sim = CycleSimulator(EDGE, execute_data=True, dram_size=1 << 16)
    sim.functional.dram.write(0, values, "fp32")
    sim.load(assemble(source))
    stats = sim.run()
    np.testing.assert_array_equal(sim.functional.dram.read(4096, (2, 64), "fp32"),
                                  functional.dram.read(4096, (2, 64), "fp32"))
    assert sim.functional.fp_reg(1) == functional.fp_reg(1)
    assert stats.cycles == simulate(source)[1].cycles  # the data does not change the timing


def test_dllm_instruction_on_the_ar_baseline_is_rejected_with_pc_and_text():
    sim = CycleSimulator(load_npu_config("ar-npu"))
    sim.load(assemble("nop\n vtopk r0, r0, r0, r0\n halt"))
    with pytest.raises(SimulationError, match="pc 1.*vtopk.*dLLM instruction"):
        sim.run()


def test_queued_instructions_read_their_registers_at_dispatch():
    # ISA rule 2: register operands of queued instructions are read at issue, so a scalar
    # write right after a queued op does not change what the op uses (timing side: no stall)
    _, stats = simulate("addi r1, r0, 64\n vexp r1, r1\n addi r1, r0, 0\n wait vector\n halt")
    assert stats.units["frontend"].stalls["dependency"] == 0
