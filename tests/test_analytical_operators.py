"""Per-operator analytical costs: operators from the IR, the NPU model on compiled programs, rooflines."""

import dataclasses

import pytest

from npu.hw.config import load_npu_config
from npu.ir import export_step, graph_stats
from npu.models.presets import load_model_spec
from npu.models.transformer import ModelConfig
from npu.sim.analytical.costs import roofline_bound
from npu.sim.analytical.npu_ops import NpuStepModel
from npu.sim.analytical.operators import StepShape, operators_from_graph, step_operators
from npu.runtime.lowering import step_program

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
def test_npu_model_costs_the_program_the_compile_stage_compiles():
    """The lowering skips the export, but compiles exactly what compile_step makes of the graph;
    the per-operator costs are its `op_` regions and add up to the program's estimate."""
    compiler = pytest.importorskip("npu.compiler")
    from npu.sim.analytical.program import estimate_program

    shape = StepShape("dual", 4, 25, 4)
    graph = export_step(TINY, cache_mode="dual", query_length=4, kv_length=25, sample_range=(0, 4))
    compiled = compiler.compile_step(graph, EDGE)
    program = step_program(EDGE, TINY, shape)
    assert (program.words == compiled.program).all() and program.labels == compiled.labels
    step = NpuStepModel(EDGE, step_program).step(TINY, shape)
    trace = estimate_program(program, EDGE)
    assert step.seconds * EDGE.clock_hz == pytest.approx(trace.cycles, rel=1e-5)
    assert {op.name: op.seconds * EDGE.clock_hz for op in step.operators} == pytest.approx(trace.by_region, rel=1e-4)
    assert step.dram_bytes == pytest.approx(trace.dram_bytes) and step.flops == 2 * trace.energy.actions["mac"]
    kinds = {op.name: op.kind for op in step.operators}
    assert kinds["blocks.0.attn.q_proj"] == "gemm" and kinds["blocks.0.attn.matmul"] == "attention"
    assert kinds["blocks.0.attn.kv_cache_write"] == "kv_write" and kinds["x0"] == "sampling"
    assert [op.name for op in step.operators if op.phase == "sampling"] == ["x0", "committed"]


def test_ar_npu_pays_only_the_generic_sampling_lowering():
    shape = StepShape("dual", 32, 512, 32, "threshold")
    dllm, generic = NpuStepModel(CLOUD, step_program).step(TINY, shape), NpuStepModel(AR, step_program).step(TINY, shape)
    assert generic.sampling_seconds > 1.5 * dllm.sampling_seconds
    transformer = lambda step: sum(op.seconds for op in step.operators if op.phase == "transformer")  # noqa: E731
    assert transformer(generic) == pytest.approx(transformer(dllm))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_large_model_gemms_are_bound_by_the_array_on_cloud():
    """With 8 accumulators the two 16-row blocks of a 32-query step share each weight tile, and a
    tile crosses the 16384-bit matrix-SRAM words in 16 cycles (DMA in, array load out): the array
    itself binds (16-cycle streaming tile ops), not the DMA or DRAM."""
    step = NpuStepModel(CLOUD, step_program).step(LLADA, StepShape("dual", 32, 1256, 32))
    gemms = [op for op in step.operators if op.kind == "gemm"]
    assert {op.bound for op in gemms} == {"matrix"}
    assert all(op.roofline == "compute" for op in gemms)
    # the step is still above the roofline (first-panel fills, attention and the other vector work)
    assert step.seconds > 1.2 * step.roofline_seconds
    assert 0 < step.utilisation < 1 and step.energy_j > 0


def test_a_step_the_compiler_cannot_lower_for_the_machine_has_no_cost():
    """dnpu-edge's 4 MiB matrix SRAM cannot double-buffer the down-projection weight panels of a
    LLaDA-8B with d_ff 24576 (K = 24576), so no program exists to cost; the model says so
    instead of guessing."""
    wide_mlp = dataclasses.replace(LLADA, d_ff=24576)
    with pytest.raises(ValueError, match="matrix_sram"):
        NpuStepModel(EDGE, step_program).step(wide_mlp, StepShape("dual", 32, 1256, 32))


def test_roofline_rows_report_intensity_and_attained_fraction():
    step = NpuStepModel(CLOUD, step_program).step(TINY, StepShape("prefix", 12, 25, 4))
    rows = step.roofline_rows()
    assert len(rows) == len(step.operators)
    gemm = next(row for row in rows if row["kind"] == "gemm")
    assert gemm["intensity_flop_per_byte"] > 0 and 0 < gemm["fraction_of_peak"] <= 1
    assert roofline_bound("dram") == "memory" and roofline_bound("frontend") == "compute"
    with pytest.raises(ValueError):
        roofline_bound("coffee")
