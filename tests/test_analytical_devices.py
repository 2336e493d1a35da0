"""GPU / CPU roofline models, the Fast-dLLM A100 check and the device validation machinery."""

import pytest

from npu.models.decoding import DecodeConfig
from npu.models.presets import load_model_spec
from npu.sim.analytical.baselines import FAST_DLLM_BASELINE_TOK_S, fast_dllm_check, sampling_share_sweep
from npu.sim.analytical.devices import A100, A6000, H100, DeviceModel, DeviceSpec, Kernel, topk_kernels
from npu.sim.analytical.generation import GenerationSetup, generation_report
from npu.sim.analytical.operators import Operator, StepShape
from npu.sim.analytical.validation import Calibration, Timer, best_calibration, validation_cases

LLADA = load_model_spec("llada-8b").architecture
TINY = load_model_spec("tiny-sort").architecture


def test_gemm_is_compute_bound_when_large_and_memory_bound_as_a_matrix_vector_product():
    model = DeviceModel(A100)
    big = model.operator_cost(Operator("g", "gemm", 4096, 4096, 4096))
    assert big.bound == "compute"
    assert big.seconds == pytest.approx(2 * 4096 ** 3 / (A100.matmul_flops * A100.gemm_efficiency))
    gemv = model.operator_cost(Operator("g", "gemm", 1, 4096, 4096))
    assert gemv.bound == "memory" and gemv.roofline == "memory"
    weights_and_vectors = (4096 * 4096 + 2 * 4096) * 2
    assert gemv.seconds == pytest.approx(weights_and_vectors / (A100.memory_bandwidth * A100.memory_efficiency))


def test_small_operators_cost_at_least_their_kernel_launches():
    model = DeviceModel(A100)
    norm = model.operator_cost(Operator("n", "rmsnorm", 1, 64))
    assert norm.bound == "launch" and norm.seconds == pytest.approx(6 * A100.launch_s)


def test_float64_sampling_makes_sampling_costlier_on_a6000_than_on_a100():
    shape = StepShape("none", 1256, 1256, 32)
    share = {}
    for spec in (A6000, A100):
        step = DeviceModel(spec, temperature=1.0).step(LLADA, shape)
        share[spec.name] = step.sampling_seconds / step.seconds
    assert share["rtx-a6000"] > share["a100-80gb"]
    greedy = DeviceModel(A100).step(LLADA, shape)
    assert greedy.sampling_seconds < DeviceModel(A100, temperature=1.0).step(LLADA, shape).sampling_seconds


def test_fast_dllm_sampling_runs_over_every_queried_row():
    shape = StepShape("prefix", 200, 1256, 32)
    rows = {op.rows for op in DeviceModel(A100).operators(LLADA, shape) if op.kind == "sampling"}
    assert rows == {200}
    assert {op.rows for op in DeviceModel(A100, sample_rows="block").operators(LLADA, shape)
            if op.kind == "sampling"} == {32}


def test_newer_gpus_generate_faster():
    setup = GenerationSetup(100, DecodeConfig(64, 32, 64, cache="dual"))
    speed = [generation_report(DeviceModel(spec), LLADA, setup).tokens_per_s for spec in (A6000, A100, H100)]
    assert speed == sorted(speed)


def test_fast_dllm_check_calibrates_on_the_baseline_and_predicts_the_cached_run():
    rows = fast_dllm_check(LLADA, tokens_per_step=(2.0,))
    calibrated = [row for row in rows if row["rates"].startswith("calibrated")]
    baseline = next(row for row in calibrated if row["configuration"] == "baseline")
    assert baseline["predicted_tok_s"] == pytest.approx(FAST_DLLM_BASELINE_TOK_S, rel=0.01)
    datasheet = next(row for row in rows if row["rates"] == "datasheet" and row["configuration"] == "baseline")
    assert 0.5 < datasheet["predicted_tok_s"] / FAST_DLLM_BASELINE_TOK_S < 2.0
    implied = [row["tokens_per_step"] for row in rows if row["relative_error"] == 0.0 and row["tokens_per_step"] > 1]
    assert all(1.0 < tps < 8.0 for tps in implied)


def test_sampling_share_sweep_covers_every_setup():
    rows = sampling_share_sweep({"tiny-sort": TINY}, gpus=(A100,), temperatures=(0.0,), scenarios=((13, 12),),
                                caches=("none", "dual"), block_length=4)
    assert len(rows) == 2 and all(0 < row["sampling_share"] < 1 for row in rows)


def test_cache_levels_and_staged_bytes_shape_kernel_time():
    spec = DeviceSpec("toy", 1e12, 1e11, 1e10, 1e10, 1e-6, gemm_efficiency=1.0, memory_efficiency=1.0,
                      caches=((1e6, 1e11),), alloc_s_per_byte=1e-12)
    small = Kernel(0, "vector", 5e5)
    large = Kernel(0, "vector", 5e6)
    assert small.seconds(spec) == pytest.approx(5e5 / 1e11)
    assert large.seconds(spec) == pytest.approx(5e6 / 1e10)
    staged = Kernel(0, "vector", 5e6, staged_bytes=5e6, written=1e6)
    assert staged.seconds(spec) == pytest.approx(2 * 5e6 / 1e10 + 1e6 * 1e-12)
    assert topk_kernels(1, 4096, 64, 4)[0].datapath == "index"


def test_calibration_spec_and_validation_cases_on_a_small_scale():
    calibrations = [Calibration("cpu", "float32", 1, gemm, 1e10, ((1 << 20, 1e11),), 1e9, 5e8, 5e8, 2e-6, 0.0)
                    for gemm in (5e10, 8e10)]
    best = best_calibration(calibrations)
    assert best.gemm_flops == 8e10
    spec = best.spec()
    assert spec.dtype_bytes == 4 and spec.gemm_pack_passes == 2 and spec.matmul_flops == 8e10
    model = DeviceModel(spec, sampling="reference", attention="fused", sample_rows="block")
    cases = validation_cases("cpu", scale=0.02)
    assert {case.group for case in cases} == {"gemm", "attention", "sampling", "step"}
    timer = Timer("cpu", repeats=1, warmup=0)
    for case in cases[:3] + cases[-2:]:
        assert case.predict(model) > 0 and timer(case.run) > 0


@pytest.mark.slow
def test_device_validation_runs_end_to_end(tmp_path):
    from npu.stages.simulate import device_validation_stage

    paths = device_validation_stage(tmp_path, rounds=1)
    lines = paths[1].read_text().splitlines()
    assert lines[0].split("\t") == ["group", "kernel", "measured_ms", "predicted_ms", "relative_error"]
    assert len(lines) > 20
