"""Per-operator analytical costs: operators from the IR, NPU recipes vs compiled programs, rooflines."""

import dataclasses

import pytest

from npu.hw.config import load_npu_config
from npu.ir import export_step, graph_stats
from npu.models.presets import load_model_spec
from npu.models.transformer import ModelConfig
from npu.sim.analytical.costs import roofline_bound
from npu.sim.analytical.npu_ops import NpuStepModel
from npu.sim.analytical.operators import StepShape, operators_from_graph, step_operators

TINY = load_model_spec("tiny-sort").architecture
GQA = ModelConfig("tiny-gqa", 40, 39, 2, 64, 4, 2, 16, 128, 64, qkv_bias=True)
CLOUD = load_npu_config("dnpu-cloud")
EDGE = load_npu_config("dnpu-edge")
AR = load_npu_config("ar-npu")
LLADA = load_model_spec("llada-8b").architecture


def unnamed(operators):
    return [dataclasses.replace(op, name="") for op in operators]


@pytest.mark.parametrize("model", [TINY, GQA], ids=lambda m: m.name)
@pytest.mark.parametrize("mode, query, kv, rule", [("none", 20, 20, "topk"), ("prefix", 12, 20, "threshold"),
                                                     ("dual", 4, 20, "topk")])
def test_operators_written_from_shapes_equal_those_read_from_the_graph(model, mode, query, kv, rule):
    graph = export_step(model, cache_mode=mode, query_length=query, kv_length=kv if mode != "none" else None,
                        sample_range=(0, 4), sampling=rule)
    from_graph = operators_from_graph(graph)
    assert unnamed(from_graph) == unnamed(step_operators(model, StepShape(mode, query, kv, 4, rule)))
    assert sum(op.macs for op in from_graph) == graph_stats(graph).macs


def test_step_shape_rejects_impossible_steps():
    with pytest.raises(ValueError, match="kv_length must equal"):
        StepShape("none", 8, 16, 4)
    with pytest.raises(ValueError, match="sample_length"):
        StepShape("dual", 4, 16, 8)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # timing mode: FP registers hold no data
def test_npu_recipes_match_the_cycle_simulator_on_a_compiled_step():
    compiler = pytest.importorskip("npu.compiler")
    from npu.isa.assembler import assemble
    from npu.check.crossval import crossvalidate
    from npu.sim.analytical.program import comment_regions

    graph = export_step(TINY, cache_mode="dual", query_length=4, kv_length=25, sample_range=(0, 4))
    step = compiler.compile_step(graph, EDGE)
    program = assemble(step.listing, source="step")
    result = crossvalidate(program, EDGE, regions=comment_regions(program, step.listing))
    assert abs(result.total_error) <= 0.02
    assert result.mean_abs_error("operator") <= 0.03 and result.mean_abs_error("class") <= 0.03
    recipes = NpuStepModel(EDGE).step(TINY, StepShape("dual", 4, 25, 4))
    assert recipes.seconds * EDGE.clock_hz == pytest.approx(result.stats.cycles, rel=0.02)


def test_ar_npu_pays_only_the_generic_sampling_lowering():
    shape = StepShape("dual", 32, 512, 32, "threshold")
    dllm, generic = NpuStepModel(CLOUD).step(TINY, shape), NpuStepModel(AR).step(TINY, shape)
    assert generic.sampling_seconds > 1.5 * dllm.sampling_seconds
    transformer = lambda step: sum(op.seconds for op in step.operators if op.phase == "transformer")  # noqa: E731
    assert transformer(generic) == pytest.approx(transformer(dllm))


def test_large_model_gemms_are_bound_by_weight_tile_loads_on_both_presets():
    for config in (CLOUD, EDGE):
        step = NpuStepModel(config).step(LLADA, StepShape("dual", 32, 1256, 32))
        gemms = [op for op in step.operators if op.kind == "gemm"]
        assert {op.bound for op in gemms} == {"weight_load"}
        assert all(op.roofline == "memory" for op in gemms)
        # the step is several times slower than the roofline (the weight-load finding)
        assert step.seconds > 3 * step.roofline_seconds
        assert 0 < step.utilisation < 1 and step.energy_j > 0


def test_roofline_rows_report_intensity_and_attained_fraction():
    step = NpuStepModel(CLOUD).step(TINY, StepShape("prefix", 12, 25, 4))
    rows = step.roofline_rows()
    assert len(rows) == len(step.operators)
    gemm = next(row for row in rows if row["kind"] == "gemm")
    assert gemm["intensity_flop_per_byte"] > 0 and 0 < gemm["fraction_of_peak"] <= 1
    assert roofline_bound("dram") == "memory" and roofline_bound("frontend") == "compute"
    with pytest.raises(ValueError):
        roofline_bound("coffee")
