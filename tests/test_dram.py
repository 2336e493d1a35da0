"""Specifications of the DRAM timing model (npu.sim.dram) and its JEDEC-rule checker."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npu.sim.dram import (
    BANK_INTERLEAVED,
    BANKGROUP_INTERLEAVED,
    ROW_MAJOR,
    AddressMapping,
    Command,
    DramModel,
    Request,
    check_trace,
    dram_presets,
    get_preset,
    preset_names,
)
from npu.sim.dram.controller import ChannelController

PRESET_NAMES = preset_names()


def _rules(trace, timing) -> set[str]:
    return {violation.rule for violation in check_trace(trace, timing)}


# ------------------------------------------------------------------ presets and mapping


def test_presets_have_the_published_peak_bandwidths():
    assert get_preset("HBM2").peak_bandwidth_gbps == pytest.approx(256.0)
    assert get_preset("HBM3").peak_bandwidth_gbps == pytest.approx(819.2)
    assert get_preset("LPDDR5").peak_bandwidth_gbps == pytest.approx(51.2)
    assert get_preset("ddr5").peak_bandwidth_gbps == pytest.approx(25.6)
    for timing in dram_presets().values():
        assert timing.refresh_limited_peak_gbps < timing.peak_bandwidth_gbps
        assert timing.source


def test_unknown_preset_and_bad_settings_are_rejected_with_a_clear_message():
    with pytest.raises(ValueError, match="unknown DRAM preset 'GDDR9'"):
        get_preset("GDDR9")
    with pytest.raises(ValueError, match="page_policy"):
        DramModel("HBM2", page_policy="sometimes")
    with pytest.raises(ValueError, match="unknown field 'Xx'"):
        DramModel("HBM2", mapping="RoBaRaCoXx")
    with pytest.raises(ValueError, match="missing fields"):
        DramModel("HBM2", mapping="RoBaCoCh")
    with pytest.raises(ValueError, match="power of two"):
        get_preset("HBM2").with_channels(3)


def test_presets_are_data_files_checked_by_their_schema(tmp_path):
    from npu.config import DEFAULT_CONFIG_DIR, ConfigError

    (tmp_path / "dram").mkdir()
    text = (DEFAULT_CONFIG_DIR / "dram" / "hbm2.yaml").read_text()
    (tmp_path / "dram" / "hbm2.yaml").write_text(text)
    assert preset_names(tmp_path) == ["HBM2"]
    assert get_preset("hbm2", tmp_path) == get_preset("HBM2")
    (tmp_path / "dram" / "hbm2.yaml").write_text(text.replace("tRCD: 14", "tRCD: -1"))
    with pytest.raises(ConfigError, match=r"hbm2.yaml: tRCD: -1 must be at least 0"):
        get_preset("HBM2", tmp_path)


@pytest.mark.parametrize("scheme", [ROW_MAJOR, BANK_INTERLEAVED, BANKGROUP_INTERLEAVED])
def test_every_mapping_is_a_bijection_that_stripes_channels_first(scheme):
    timing = get_preset("HBM2").with_channels(4)
    mapping = AddressMapping(scheme, timing.org)
    burst = timing.org.burst_bytes
    addrs = np.arange(4096) * burst
    decoded = mapping.decode_array(addrs)
    assert decoded["channel"][:8].tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    places = set(zip(*(decoded[k].tolist() for k in decoded)))
    assert len(places) == addrs.size
    scalar = mapping.decode(int(addrs[1234]) + burst - 1)  # offset inside the burst is dropped
    assert scalar.row == decoded["row"][1234] and scalar.column == decoded["column"][1234]
    with pytest.raises(ValueError, match="outside"):
        mapping.decode(timing.org.capacity_bytes)


def test_row_major_mapping_keeps_a_row_in_one_bank_and_interleaved_spreads_it():
    timing = get_preset("DDR5").with_channels(1)
    row_bursts = timing.org.columns
    addrs = np.arange(row_bursts) * timing.org.burst_bytes
    row_major = AddressMapping(ROW_MAJOR, timing.org).decode_array(addrs)
    assert len(set(zip(row_major["bankgroup"].tolist(), row_major["bank"].tolist()))) == 1
    interleaved = AddressMapping(BANK_INTERLEAVED, timing.org).decode_array(addrs)
    assert len(set(zip(interleaved["bankgroup"].tolist(), interleaved["bank"].tolist()))) == 32
    bg_interleaved = AddressMapping(BANKGROUP_INTERLEAVED, timing.org).decode_array(addrs[:8])
    assert bg_interleaved["bankgroup"].tolist() == list(range(8))


# ------------------------------------------------------------------ the model obeys the rules


def _patterns(timing, count: int, seed: int = 0) -> dict[str, tuple]:
    rng = np.random.default_rng(seed)
    bursts = timing.org.capacity_bytes // 64
    sequential = np.arange(count) * 64
    random = rng.integers(0, bursts, count) * 64
    times = np.sort(rng.uniform(0, count * 2.0, count))  # some idle gaps, some bursts
    mixed_addr = np.where(rng.random(count) < 0.5, sequential, random)
    return {
        "streaming": (sequential, False, 0.0),
        "random": (random, False, 0.0),
        "mixed_read_write": (mixed_addr, rng.random(count) < 0.4, times),
    }


@pytest.mark.parametrize("page_policy", ["open", "close"])
@pytest.mark.parametrize("name", PRESET_NAMES)
def test_model_traces_have_no_violations(name, page_policy):
    model = DramModel(name, channels=2, page_policy=page_policy, record_trace=True)
    for addrs, is_write, times in _patterns(model.timing, 1500).values():
        completion = model.stream_arrays(addrs, 64, is_write, times)
        assert (completion > np.asarray(times)).all()
    assert model.stats.reads > 0 and model.stats.writes > 0
    violations = check_trace(model.trace, model.timing)
    assert violations == [], "\n".join(str(v) for v in violations[:5])


@pytest.mark.parametrize("scheme", [ROW_MAJOR, BANK_INTERLEAVED])
def test_two_rank_model_with_rank_switches_has_no_violations(scheme):
    timing = get_preset("DDR5").with_channels(1).with_ranks(2)
    model = DramModel(timing, mapping=scheme, record_trace=True)
    for addrs, is_write, times in _patterns(timing, 2000, seed=1).values():
        model.stream_arrays(addrs, 128, is_write, times)
    ranks = {c.rank for c in model.trace if c.kind in ("RD", "WR")}
    assert ranks == {0, 1}
    assert check_trace(model.trace, timing) == []


def test_in_the_loop_access_calls_have_no_violations_and_complete_after_issue():
    model = DramModel("HBM3", channels=4, record_trace=True)
    rng = np.random.default_rng(3)
    now = 0.0
    for _ in range(800):
        addr = int(rng.integers(0, model.timing.org.capacity_bytes // 64)) * 64
        done = model.access(addr, 64, bool(rng.random() < 0.3), now)
        assert done > now
        now += float(rng.exponential(8.0))
    assert check_trace(model.trace, model.timing) == []


# ------------------------------------------------------------------ latency, FR-FCFS, refresh


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_row_hit_is_faster_than_row_miss_which_is_faster_than_row_conflict(name):
    model = DramModel(name, channels=1, mapping=ROW_MAJOR)
    org = model.timing.org
    size = org.burst_bytes  # one burst, so one column command per request
    gap = 1000.0  # ns between requests: every request finds an idle channel
    miss = model.access(0, size, False, gap) - gap
    hit = model.access(size, size, False, 2 * gap) - 2 * gap
    other_row = org.row_bytes * org.banks_per_channel  # same bank, next row
    conflict = model.access(other_row, size, False, 3 * gap) - 3 * gap
    assert hit < miss < conflict
    t = model.timing
    assert hit == pytest.approx((t.tCL + t.tBL) * t.tCK_ns, abs=t.tCK_ns)
    assert miss == pytest.approx((t.tRCD + t.tCL + t.tBL) * t.tCK_ns, abs=t.tCK_ns)
    stats = model.stats
    assert (stats.row_hits, stats.row_misses, stats.row_conflicts) == (1, 1, 1)


def test_close_page_policy_precharges_after_each_access():
    model = DramModel("HBM2", channels=1, mapping=ROW_MAJOR, page_policy="close")
    gap = 1000.0
    first = model.access(0, 64, False, gap) - gap
    second = model.access(64, 64, False, 2 * gap) - 2 * gap  # same row, but it was closed
    assert first == pytest.approx(second)
    assert model.stats.row_hits == 0 and model.stats.precharges == 2


def test_fr_fcfs_serves_a_younger_row_hit_before_an_older_row_conflict():
    model = DramModel("HBM2", channels=1, mapping=ROW_MAJOR)
    org = model.timing.org
    same_bank_other_row = org.row_bytes * org.banks_per_channel
    requests = [Request(0), Request(same_bank_other_row), Request(64)]
    done = model.stream(requests)
    assert done[2] < done[1]
    assert model.stats.row_hits == 1 and model.stats.row_conflicts == 1


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_refresh_happens_every_tREFI(name):
    model = DramModel(name, channels=1, record_trace=True)
    t = model.timing
    # Busy for a while, then idle: refreshes must keep their cadence in both phases.
    model.stream_arrays(np.arange(20000) * 64)
    model.access(0, 64, False, 12 * t.tREFI * t.tCK_ns)
    refreshes = [c.cycle for c in model.trace if c.kind == "REF"]
    assert len(refreshes) >= 11
    assert refreshes[0] >= t.tREFI
    gaps = np.diff(refreshes)
    assert gaps.min() >= t.tREFI - t.tRAS - t.tRP - t.tWR - t.tCWL - t.tBL
    assert gaps.max() <= t.tREFI + t.tRAS + t.tRP + t.tWR + t.tCWL + t.tBL
    assert abs(refreshes[-1] - len(refreshes) * t.tREFI) < t.tREFI // 10  # no drift


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_streaming_reads_reach_the_refresh_limited_peak_within_5_percent(name):
    timing = get_preset(name).with_channels(1)
    model = DramModel(timing)
    # Ten refresh intervals worth of data at peak rate.
    total = timing.refresh_limited_peak_gbps * timing.tREFI * timing.tCK_ns * 10.5
    requests = int(total) // 64
    model.stream_arrays(np.arange(requests) * 64)
    stats = model.stats
    assert stats.refreshes >= 10
    assert stats.achieved_bandwidth_gbps >= 0.95 * timing.refresh_limited_peak_gbps
    assert stats.achieved_bandwidth_gbps <= timing.peak_bandwidth_gbps
    assert stats.bytes_transferred == requests * 64


def test_model_is_deterministic():
    def run():
        model = DramModel("LPDDR5", channels=2, record_trace=True)
        addrs, writes, times = _patterns(model.timing, 500, seed=7)["mixed_read_write"]
        return model.stream_arrays(addrs, 96, writes, times).tolist(), model.trace

    assert run() == run()


def test_bad_requests_are_rejected():
    model = DramModel("HBM2")
    with pytest.raises(ValueError, match="size_bytes"):
        model.access(0, 0, False, 0.0)
    with pytest.raises(ValueError, match="outside"):
        model.access(model.timing.org.capacity_bytes - 32, 64, False, 0.0)
    with pytest.raises(ValueError, match="issue_time_ns"):
        model.access(0, 64, False, -1.0)
    with pytest.raises(ValueError, match="inside"):
        model.stream_arrays(np.array([-64]))


# ------------------------------------------------------------------ fast paths change nothing


def _npu_calls(timing, seed: int) -> list[tuple]:
    """Batches like the cycle simulator's DMAs and a few other mixes, in issue-time order:
    (addrs, size_bytes, is_write, issue_ns) per stream_arrays call, or ("access", ...)."""
    rng = np.random.default_rng(seed)
    capacity = timing.org.capacity_bytes
    calls: list[tuple] = []
    now = 0.0
    for kind in ("chunks", "strided", "random", "chunks_misaligned", "mixed", "access", "chunks"):
        count = int(rng.integers(100, 600))
        if kind.startswith("chunks"):  # a DMA: 2 KiB requests paced like SRAM port writes
            base = int(rng.integers(0, capacity // 8 // 1024)) * 1024
            if kind == "chunks_misaligned":
                base += 64 * int(rng.integers(1, 16))
            offsets = np.arange(0, count * 132, 2048)
            sizes = np.minimum(2048, count * 132 - offsets)
            times = now + np.arange(offsets.size) * float(rng.choice([0.0, 2.0, 16.0]))
            calls.append((base + offsets, sizes, bool(rng.random() < 0.4), times))
        elif kind == "strided":  # rows of a tensor with a row pitch
            stride = int(rng.choice([4096, 8192, 1 << 16]))
            base = int(rng.integers(0, capacity // 4 // 64)) * 64
            addrs = base + np.arange(count) * stride
            calls.append((addrs[addrs + 512 <= capacity], 264, False, now))
        elif kind == "random":
            addrs = rng.integers(0, capacity // 64, count) * 64
            calls.append((addrs, 64, rng.random(count) < 0.3, now + np.sort(rng.uniform(0, count, count))))
        elif kind == "mixed":
            sequential = int(rng.integers(0, capacity // 4 // 64)) * 64 + np.arange(count) * 64
            random = rng.integers(0, capacity // 2 // 64, count) * 64
            addrs = np.where(rng.random(count) < 0.6, sequential, random)
            calls.append((addrs, 96, rng.random(count) < 0.4, now + np.sort(rng.uniform(0, count, count))))
        else:
            for i in range(30):
                addr = int(rng.integers(0, capacity // 64 - 64)) * 64
                calls.append(("access", addr, int(rng.choice([64, 2048])), bool(rng.random() < 0.3),
                              now + i * float(rng.choice([1.0, 40.0]))))
        now += float(rng.uniform(1000, 3 * timing.tREFI * timing.tCK_ns))  # refreshes between calls
    return calls


def _channel_stats(model: DramModel) -> list:
    return [controller.stats for controller in model.controllers] + [model.stats]


def _replay(calls, fast: bool, **options):
    model = DramModel(fast=fast, record_trace=True, **options)
    results = []
    for call in calls:
        if isinstance(call[0], str):
            results.append(model.access(*call[1:]))
        else:
            results.append(model.stream_arrays(*call).tolist())
    return model, results


@pytest.mark.parametrize("scheme", [ROW_MAJOR, BANK_INTERLEAVED, BANKGROUP_INTERLEAVED])
@pytest.mark.parametrize("name", PRESET_NAMES)
def test_fast_paths_give_the_same_completions_commands_and_stats_as_the_reference(name, scheme):
    timing = get_preset(name).with_channels(4)
    calls = _npu_calls(timing, seed=PRESET_NAMES.index(name))
    fast, fast_results = _replay(calls, True, spec=timing, mapping=scheme)
    slow, slow_results = _replay(calls, False, spec=timing, mapping=scheme)
    assert fast_results == slow_results
    assert fast.trace == slow.trace
    assert _channel_stats(fast) == _channel_stats(slow)
    assert check_trace(fast.trace, timing) == []


@pytest.mark.parametrize("page_policy, ranks, queue_depth", [("close", 1, 32), ("open", 2, 32), ("open", 1, 1),
                                                             ("open", 1, 4)])
def test_fast_paths_match_the_reference_with_other_policies_ranks_and_queues(page_policy, ranks, queue_depth):
    timing = get_preset("HBM3").with_channels(2).with_ranks(ranks)
    calls = _npu_calls(timing, seed=11)
    options = dict(spec=timing, page_policy=page_policy, queue_depth=queue_depth)
    fast, fast_results = _replay(calls, True, **options)
    slow, slow_results = _replay(calls, False, **options)
    assert (fast_results, fast.trace, _channel_stats(fast)) == (slow_results, slow.trace, _channel_stats(slow))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), name=st.sampled_from(PRESET_NAMES),
       queue_depth=st.sampled_from([2, 8, 32]), gap_ns=st.sampled_from([0.0, 1.0, 5.0, 50.0]))
def test_fast_paths_match_the_reference_on_random_streams(seed, name, queue_depth, gap_ns):
    """Short streams (sequential, strided or random, reads and writes) with random pacing."""
    timing = get_preset(name).with_channels(2)
    rng = np.random.default_rng(seed)
    calls, now = [], 0.0
    for _ in range(3):
        count = int(rng.integers(1, 300))
        start = int(rng.integers(0, timing.org.capacity_bytes // 2 // 64)) * 64
        step = int(rng.choice([64, 64, 128, 4096]))
        addrs = np.where(rng.random(count) < 0.9, start + np.arange(count) * step,
                         rng.integers(0, timing.org.capacity_bytes // 4 // 64, count) * 64)
        writes = rng.random(count) < float(rng.choice([0.0, 0.1, 1.0]))
        times = now + np.cumsum(rng.exponential(gap_ns, count)) if gap_ns else now
        calls.append((addrs, 64, writes, times))
        now += float(rng.uniform(0, 4000))
    fast, fast_results = _replay(calls, True, spec=timing, queue_depth=queue_depth)
    slow, slow_results = _replay(calls, False, spec=timing, queue_depth=queue_depth)
    assert (fast_results, fast.trace, _channel_stats(fast)) == (slow_results, slow.trace, _channel_stats(slow))


def test_row_hit_runs_carry_most_of_a_stream(monkeypatch):
    """The fast path is not idle: on a streaming read most bursts are issued as runs."""
    issued_in_runs = []
    apply_run = ChannelController._apply_run

    def spy(self, lists, oldest, index, cycle, *rest):
        issued_in_runs.append(cycle.size)
        return apply_run(self, lists, oldest, index, cycle, *rest)

    monkeypatch.setattr(ChannelController, "_apply_run", spy)
    model = DramModel("HBM3", channels=1)
    model.stream_arrays(np.arange(4000) * 64)
    assert sum(issued_in_runs) > 0.8 * model.stats.reads


def test_identical_channels_are_scheduled_once_and_rejoin_after_diverging(monkeypatch):
    served = []
    serve = ChannelController.serve

    def spy(self, lists, done, columns=None):
        served.append(self.channel)
        return serve(self, lists, done, columns)

    monkeypatch.setattr(ChannelController, "serve", spy)
    # HBM3: 32 channels of 32 B bursts; the first 128 KiB are row 0 of bank 0 in every channel
    # and bank group (mapping RoBaRaCoBgCh), so all the bursts below are row hits or misses.
    model = DramModel("HBM3", record_trace=True)
    slow = DramModel("HBM3", record_trace=True, fast=False)
    aligned = (np.arange(16) * 2048, 2048, False, np.arange(16) * 2.0)
    misaligned = (np.arange(16) * 2048 + 64, 2048, False, 1000 + np.arange(16) * 2.0)
    later = ((1 << 16) + np.arange(16) * 2048, 2048, False, 2000 + np.arange(16) * 2.0)
    for call in (aligned, misaligned, later):
        served.clear()
        completion = model.stream_arrays(*call).tolist()
        if call is misaligned:
            assert served == [0, 2]  # channels 0-1 get one burst more than channels 2-31
        else:
            assert served == [0]  # after the idle gap the diverged channels are equivalent again
        assert completion == slow.stream_arrays(*call).tolist()
    assert model.trace == slow.trace and _channel_stats(model) == _channel_stats(slow)


# ------------------------------------------------------------------ the checker catches each rule


def _timing():
    """HBM2 with a few values pulled apart so each rule can be broken on its own."""
    base = get_preset("HBM2").with_channels(1).with_ranks(2)
    return dataclasses.replace(base, tRC=base.tRAS + base.tRP + 6, tCCD_S=3, tCCD_L=4,
                               tCCD_L_WR=5)


def _cmd(cycle, kind, bg=0, bank=0, row=0, rank=0, column=0):
    if kind == "REF":
        return Command(cycle, kind, 0, rank, -1, -1)
    if kind == "PRE":
        return Command(cycle, kind, 0, rank, bg, bank)
    return Command(cycle, kind, 0, rank, bg, bank, row, column if kind in ("RD", "WR") else -1)


def _bad_traces(t) -> dict[str, list[Command]]:
    write_end = t.tCWL + t.tBL
    return {
        "tRCD": [_cmd(0, "ACT"), _cmd(t.tRCD - 1, "RD")],
        "tRAS": [_cmd(0, "ACT"), _cmd(t.tRAS - 1, "PRE")],
        "tRC": [_cmd(0, "ACT"), _cmd(t.tRAS, "PRE"), _cmd(t.tRC - 1, "ACT")],
        "tRP": [_cmd(0, "ACT"), _cmd(t.tRAS, "PRE"), _cmd(t.tRAS + t.tRP - 1, "ACT", bank=0)],
        "tRTP": [_cmd(0, "ACT"), _cmd(t.tRAS - 2, "RD"), _cmd(t.tRAS - 2 + t.tRTP - 1, "PRE")],
        "tWR": [_cmd(0, "ACT"), _cmd(t.tRCD, "WR"), _cmd(t.tRCD + write_end + t.tWR - 1, "PRE")],
        "tRRD_L": [_cmd(0, "ACT", bank=0), _cmd(t.tRRD_L - 1, "ACT", bank=1)],
        "tRRD_S": [_cmd(0, "ACT", bg=0), _cmd(t.tRRD_S - 1, "ACT", bg=1)],
        "tFAW": [_cmd(i * t.tRRD_L, "ACT", bg=i % 4, bank=i // 4) for i in range(5)],
        "tCCD_L": [_cmd(0, "ACT", bank=0), _cmd(t.tRRD_L, "ACT", bank=1),
                   _cmd(50, "RD", bank=0), _cmd(50 + t.tCCD_L - 1, "RD", bank=1)],
        "tCCD_L_WR": [_cmd(0, "ACT", bank=0), _cmd(t.tRRD_L, "ACT", bank=1),
                      _cmd(50, "WR", bank=0), _cmd(50 + t.tCCD_L_WR - 1, "WR", bank=1)],
        "tCCD_S": [_cmd(0, "ACT", bg=0), _cmd(t.tRRD_S, "ACT", bg=1),
                   _cmd(50, "RD", bg=0), _cmd(50 + t.tCCD_S - 1, "RD", bg=1)],
        "tWTR_L": [_cmd(0, "ACT", bank=0), _cmd(t.tRRD_L, "ACT", bank=1),
                   _cmd(50, "WR", bank=0), _cmd(50 + write_end + t.tWTR_L - 1, "RD", bank=1)],
        "tWTR_S": [_cmd(0, "ACT", bg=0), _cmd(t.tRRD_S, "ACT", bg=1),
                   _cmd(50, "WR", bg=0), _cmd(50 + write_end + t.tWTR_S - 1, "RD", bg=1)],
        "tRTW": [_cmd(0, "ACT", bg=0), _cmd(t.tRRD_S, "ACT", bg=1), _cmd(50, "RD", bg=0),
                 _cmd(50 + t.tCL + t.tBL + t.tRTW - 1 - t.tCWL, "WR", bg=1)],
        "tRTRS": [_cmd(0, "ACT", rank=0), _cmd(1, "ACT", rank=1), _cmd(50, "RD", rank=0),
                  _cmd(50 + t.tBL + t.tRTRS - 1, "RD", rank=1)],
        "tBL": [_cmd(0, "ACT", rank=0), _cmd(1, "ACT", rank=1), _cmd(50, "RD", rank=0),
                _cmd(51, "RD", rank=1)],
        "tRFC": [_cmd(t.tREFI, "REF"), _cmd(t.tREFI + t.tRFC - 1, "ACT")],
        "tREFI": [_cmd(10 * t.tREFI, "REF")],
        "command_bus": [_cmd(0, "ACT", rank=0), _cmd(0, "ACT", rank=1)],
        "row_not_open": [_cmd(0, "ACT", row=3), _cmd(t.tRCD, "RD", row=4)],
        "bank_already_open": [_cmd(0, "ACT", row=3), _cmd(t.tRC, "ACT", row=4)],
        "refresh_with_open_bank": [_cmd(0, "ACT"), _cmd(t.tRC, "REF")],
    }


def test_a_legal_hand_written_trace_passes():
    t = _timing()
    trace = [
        _cmd(0, "ACT", bg=0), _cmd(t.tRRD_S, "ACT", bg=1),
        _cmd(t.tRRD_S + t.tRCD, "RD", bg=1),
        _cmd(t.tRRD_S + t.tRCD + t.tCCD_S, "RD", bg=0),
        _cmd(t.tRAS + 10, "PRE", bg=0), _cmd(t.tRAS + 11, "PRE", bg=1),
        _cmd(t.tRC + 20, "REF"),
        _cmd(t.tRC + 20 + t.tRFC, "ACT", bg=0, row=9),
        _cmd(t.tRC + 20 + t.tRFC + t.tRCD, "WR", bg=0, row=9),
    ]
    assert check_trace(trace, t) == []


@pytest.mark.parametrize("rule", sorted(_bad_traces(_timing())))
def test_checker_catches_each_rule_on_a_crafted_bad_trace(rule):
    t = _timing()
    trace = _bad_traces(t)[rule]
    violations = check_trace(trace, t)
    assert rule in {v.rule for v in violations}, [str(v) for v in violations]
    # The violation points at a command of the trace (tREFI also flags the end of the trace).
    flagged = next(v for v in violations if v.rule == rule)
    assert flagged.command in trace or rule == "tREFI"


def test_checker_rejects_malformed_traces():
    t = _timing()
    with pytest.raises(ValueError, match="cycle order"):
        check_trace([_cmd(5, "ACT"), _cmd(4, "ACT", bank=1)], t)
    with pytest.raises(ValueError, match="unknown kind"):
        check_trace([Command(0, "NOP", 0, 0, 0, 0)], t)
    with pytest.raises(ValueError, match="does not exist"):
        check_trace([Command(0, "ACT", 5, 0, 0, 0, 0)], t)


@pytest.mark.parametrize(
    "field, rule",
    [("tRCD", "tRCD"), ("tRP", "tRP"), ("tRAS", "tRAS"), ("tRTP", "tRTP"), ("tWR", "tWR"),
     ("tRRD_S", "tRRD_S"), ("tFAW", "tFAW"), ("tCCD_L", "tCCD_L"), ("tWTR_S", "tWTR_S"),
     ("tRFC", "tRFC")],
)
def test_checker_catches_a_scheduler_that_uses_a_too_short_timing(field, rule):
    """Run the model with one constraint shortened, check against the real timing: the checker
    must notice. This shows it does not just mirror the scheduler's bookkeeping."""
    honest = get_preset("HBM3").with_channels(1)
    lax = dataclasses.replace(honest, **{field: getattr(honest, field) // 3})
    model = DramModel(lax, mapping=ROW_MAJOR, record_trace=True)
    for addrs, is_write, times in _patterns(honest, 1200, seed=2).values():
        model.stream_arrays(addrs, 64, is_write, times)
    assert check_trace(model.trace, lax) == []
    assert rule in _rules(model.trace, honest)
