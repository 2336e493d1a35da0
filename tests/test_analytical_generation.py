"""Whole generations: the step schedule of a DecodeConfig and the per-token figures."""

import dataclasses

import pytest

from npu.hw.config import load_npu_config
from npu.io import write_tsv
from npu.models.decoding import DecodeConfig
from npu.models.presets import load_model_spec
from npu.sim.analytical.devices import A100, DeviceModel
from npu.sim.analytical.generation import GenerationSetup, generation_report, step_schedule
from npu.sim.analytical.npu_ops import NpuStepModel
from npu.sim.analytical.scenarios import model_scenarios
from npu.runtime.lowering import step_program

TINY = load_model_spec("tiny-sort").architecture
CLOUD = NpuStepModel(load_npu_config("dnpu-cloud"), step_program)


def test_schedule_has_a_refresh_then_block_or_suffix_queries_per_block():
    decode = DecodeConfig(gen_length=12, block_length=4, steps=12, cache="prefix")
    schedule = step_schedule(GenerationSetup(13, decode))
    assert sum(count for _, count in schedule) == 12
    queries = {shape.query_length: count for shape, count in schedule}
    assert queries == {25: 3.0, 12: 3.0, 8: 3.0, 4: 3.0}   # per block: a refresh, then 3 block + suffix steps
    dual = step_schedule(GenerationSetup(13, DecodeConfig(12, 4, 12, cache="dual")))
    assert {(s.query_length, c) for s, c in dual} == {(25, 3.0), (4, 9.0)}
    assert all(s.kv_length == 25 and s.sample_length == 4 for s, _ in dual)


def test_threshold_rule_takes_its_steps_per_block_as_an_input():
    decode = DecodeConfig(gen_length=12, block_length=4, steps=12, cache="dual", threshold=0.9)
    with pytest.raises(ValueError, match="threshold_steps_per_block"):
        GenerationSetup(13, decode)
    schedule = step_schedule(GenerationSetup(13, decode, threshold_steps_per_block=1.5))
    assert sum(count for _, count in schedule) == pytest.approx(4.5)
    assert all(shape.sampling == "threshold" for shape, _ in schedule)


def test_report_figures_are_consistent():
    setup = GenerationSetup(13, DecodeConfig(12, 4, 12, cache="dual"))
    report = generation_report(CLOUD, TINY, setup)
    assert report.tokens_per_s == pytest.approx(12 / report.seconds)
    assert report.seconds_per_step == pytest.approx(report.seconds / 12)
    assert 0 < report.sampling_share < 1 and 0 < report.utilisation < 1
    assert report.energy_per_token_j > 0 and report.dram_bytes_per_token > 0
    assert report.refresh_steps == 3
    row = report.row()
    assert row["tokens_per_s"] == report.tokens_per_s and row["roofline_tokens_per_s"] >= row["tokens_per_s"]


def test_caches_and_the_threshold_rule_speed_generation_up_on_npu_and_gpu():
    # LLaDA-8B's layer shapes with two of its 32 layers: the ordering is a per-layer property, and
    # compiling 32 layers for five schedules took three minutes of the default suite.
    llada = dataclasses.replace(load_model_spec("llada-8b").architecture, n_layers=2)
    for machine in (CLOUD, DeviceModel(A100)):
        shared: dict = {}
        speed = {cache: generation_report(machine, llada, GenerationSetup(1000, DecodeConfig(256, 32, 256, cache=cache)),
                                          shared).tokens_per_s for cache in ("none", "prefix", "dual")}
        assert speed["none"] < speed["prefix"] < speed["dual"]
        fast = generation_report(machine, llada, GenerationSetup(
            1000, DecodeConfig(256, 32, 256, cache="dual", threshold=0.9), 8.0), shared)
        assert fast.tokens_per_s > speed["dual"]
    assert generation_report(DeviceModel(A100), TINY, GenerationSetup(13, DecodeConfig(12, 4, 12))).energy_j > 0


def test_every_model_has_scenarios_and_a_row_table(tmp_path):
    for name in ("tiny-sort", "tiny-add", "tiny-text", "dream-7b"):
        model, setups = model_scenarios(name)
        assert len(setups) == 6 and {s.decode.cache for s in setups} == {"none", "prefix", "dual"}
    model, setups = model_scenarios("tiny-add")
    rows = [generation_report(CLOUD, model, setup).row() for setup in setups]
    path = write_tsv(tmp_path / "t.tsv", rows)
    assert path.read_text().splitlines()[0].startswith("machine\tmodel\tcache\trule")
