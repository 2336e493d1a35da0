"""The compiler's contract: compiled programs on the functional simulator decode exactly what the
NPU-arithmetic reference decodes, on every machine, cache mode and commit rule."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from npu.compiler import CompileError, StepSpec, compile_spec, compile_step, reference_step, write_artifacts
from npu.compiler.layout import Shapes, pack_weights, reference_weights
from npu.compiler.reference import ReferenceState
from npu.hw.config import load_npu_config
from npu.ir import export_step, random_weights, weights_from_model
from npu.models.decoding import DecodeConfig
from npu.models.presets import load_model_spec
from npu.models.transformer import ModelConfig, build_model
from npu.runtime import ReferenceStepper, SimulatorStepper, generate, generation_difference

SMALL = ModelConfig("test-small", vocab_size=12, mask_token_id=11, n_layers=2, d_model=128, n_heads=4,
                    n_kv_heads=4, head_dim=32, d_ff=256, max_seq_len=16)
GQA_BIAS = ModelConfig("test-gqa-bias", vocab_size=13, mask_token_id=12, n_layers=1, d_model=128, n_heads=4,
                       n_kv_heads=2, head_dim=32, d_ff=128, max_seq_len=16, qkv_bias=True)
WIDE_HEADS = ModelConfig("test-wide-heads", vocab_size=12, mask_token_id=11, n_layers=1, d_model=256, n_heads=2,
                         n_kv_heads=2, head_dim=128, d_ff=256, max_seq_len=16)
PROMPT = [3, 1, 4, 1, 5, 9, 2, 6]


def decode_both(config, npu_name, cache, threshold):
    npu = load_npu_config(npu_name)
    weights = random_weights(config)
    plan = DecodeConfig(gen_length=8, block_length=4, steps=8, cache=cache, threshold=threshold)
    seq_len = len(PROMPT) + plan.gen_length
    sim = generate(SimulatorStepper(config, weights, npu, seq_len, plan.sampling), PROMPT, plan,
                   config.mask_token_id)
    ref = generate(ReferenceStepper(config, weights, npu, seq_len, plan.sampling), PROMPT, plan,
                   config.mask_token_id)
    return sim, ref


@pytest.mark.parametrize("config, npu_name, cache, threshold", [
    (SMALL, "dnpu-cloud", "none", None),
    (SMALL, "dnpu-cloud", "prefix", 0.2),
    (SMALL, "dnpu-cloud", "dual", None),
    (GQA_BIAS, "dnpu-edge", "dual", 0.2),
    (GQA_BIAS, "ar-npu", "prefix", None),
    (WIDE_HEADS, "dnpu-edge", "none", 0.2),
    (SMALL, "ar-npu", "dual", 0.2),
])
def test_compiled_generation_equals_reference_step_by_step(config, npu_name, cache, threshold):
    sim, ref = decode_both(config, npu_name, cache, threshold)
    assert generation_difference(sim, ref) is None
    assert len(sim.records) >= 2
    assert not (sim.tokens == config.mask_token_id).any()


def test_statistics_predict_what_the_simulator_executes():
    npu = load_npu_config("dnpu-cloud")
    weights = random_weights(SMALL)
    stepper = SimulatorStepper(SMALL, weights, npu, 16, "topk")
    stepper.start(np.array(PROMPT + [SMALL.mask_token_id] * 8, np.int32))
    stepper.step(16, 4, 0, 8, 1, 0.9)
    stats, predicted = stepper.last_stats, stepper.program(16, 4).stats
    assert predicted["macs"] == stats.macs
    assert predicted["dram_read_bytes"] == stats.bytes_moved["dram_read"]
    assert predicted["dram_write_bytes"] == stats.bytes_moved["dram_write"]
    assert predicted["executed_total"] == stats.instructions
    assert predicted["executed_by_class"] == stats.by_latency_class


def test_compile_step_reads_the_exported_graph():
    npu = load_npu_config("dnpu-edge")
    graph = export_step(SMALL, cache_mode="dual", query_length=4, kv_length=16, sampling="threshold",
                        sample_range=(0, 4))
    step = compile_step(graph, npu)
    direct = compile_spec(StepSpec(Shapes(SMALL, npu, 16), 4, 4, "threshold"))
    assert np.array_equal(step.program, direct.program)
    assert step.listing.rstrip().endswith("halt")
    assert {"tokens", "cache_k.0", "cache_v.1", "lm_head.weight"} <= set(step.dram_map)
    assert step.dram_map["blocks.0.mlp.up_proj.weight"]["format"] == "mxint4"
    assert step.stats["peak_sram_bytes"]["vector_sram"] > 0


def test_compile_step_rejects_a_graph_that_is_not_the_step_pattern():
    graph = export_step(SMALL, cache_mode="none", query_length=16)
    node = graph.nodes[5]
    graph.nodes[5] = dataclasses.replace(node, attrs={"perm": [0, 1, 2, 3]})
    with pytest.raises(CompileError, match=node.name):
        compile_step(graph, load_npu_config("dnpu-cloud"))


def test_a_model_too_big_for_the_edge_matrix_sram_names_the_constraint():
    """Row tiling fits a LLaDA-shaped MLP into the 2 MiB vector SRAM; with d_ff 24576 a down_proj
    panel pair (2 x 24576 x 64 bf16 = 6 MiB) does not fit the 4 MiB matrix SRAM."""
    wide_mlp = dataclasses.replace(load_model_spec("llada-8b").architecture, d_ff=24576)
    spec = StepSpec(Shapes(wide_mlp, load_npu_config("dnpu-edge"), 1024), 32, 32, "topk")
    with pytest.raises(CompileError, match="dnpu-edge: matrix_sram.size_bytes: .*down_proj"):
        compile_spec(spec)


def small_vector_sram(npu_name: str, size_bytes: int):
    npu = load_npu_config(npu_name)
    return dataclasses.replace(npu, name=f"{npu_name}-small-vsram",
                               vector_sram=dataclasses.replace(npu.vector_sram, size_bytes=size_bytes))


def test_row_tiled_steps_on_a_small_vector_sram_equal_the_reference():
    """64 query rows do not fit 112 KiB of vector SRAM at once: every stage runs in row blocks
    (the last MLP block is shorter, the 56-row step has pad rows and starts at q0=8)."""
    npu = small_vector_sram("dnpu-cloud", 112 * 1024)
    config = dataclasses.replace(SMALL, max_seq_len=64)
    weights = random_weights(config, seed=7)
    rng = np.random.default_rng(0)
    seq = np.concatenate([rng.integers(0, 11, 40), np.full(24, 11)]).astype(np.int32)
    sim, ref = SimulatorStepper(config, weights, npu, 64, "topk"), ReferenceStepper(config, weights, npu, 64, "topk")
    for stepper in (sim, ref):
        stepper.start(seq)
    for query_length, q0, s0, k in ((64, 0, 40, 3), (56, 8, 32, 2), (64, 0, 48, 4)):
        got, _ = sim.step(query_length, 8, q0, s0, k, 0.9)
        want, _ = ref.step(query_length, 8, q0, s0, k, 0.9)
        assert np.array_equal(got.x0, want.x0)
        assert np.array_equal(got.confidence.view(np.uint32), want.confidence.view(np.uint32))
        assert np.array_equal(got.tokens, want.tokens)
        stats, predicted = sim.last_stats, sim.program(query_length, 8).stats
        assert predicted["dram_read_bytes"] == stats.bytes_moved["dram_read"]
        assert predicted["dram_write_bytes"] == stats.bytes_moved["dram_write"]
        assert predicted["executed_total"] == stats.instructions
        assert predicted["row_blocks"] == {"attention.kv": 4, "attention.q": 4, "mlp": 2}
        assert predicted["peak_sram_bytes"]["vector_sram"] <= npu.vector_sram.size_bytes


def test_a_vector_sram_without_room_for_one_row_block_names_the_constraint():
    npu = small_vector_sram("dnpu-cloud", 64 * 1024)
    spec = StepSpec(Shapes(dataclasses.replace(SMALL, max_seq_len=64), npu, 64), 64, 8, "topk")
    with pytest.raises(CompileError, match="dnpu-cloud-small-vsram: vector_sram.size_bytes: .*not even one row "
                                           "block of blen=16 rows"):
        compile_spec(spec)


def test_llada_8b_block_refresh_step_compiles_with_row_tiling():
    """Prompt 512 + block 32: the MLP of 544 rows needs two row blocks of the 32 MiB vector SRAM."""
    llada = load_model_spec("llada-8b").architecture
    npu = load_npu_config("dnpu-cloud")
    step = compile_spec(StepSpec(Shapes(llada, npu, 544), 544, 32, "topk"))
    assert step.stats["row_blocks"] == {"attention": 1, "mlp": 2}
    assert step.stats["peak_sram_bytes"]["vector_sram"] <= npu.vector_sram.size_bytes
    assert step.stats["macs"] > 544 * 6.5e9


def test_head_dim_that_rope_cannot_tile_is_rejected():
    odd = ModelConfig("odd", 12, 11, 1, 128, 4, 4, 48, 128, 16)
    with pytest.raises(CompileError, match="head_dim=48"):
        compile_spec(StepSpec(Shapes(odd, load_npu_config("dnpu-cloud"), 16), 16, 4, "topk"))


def test_npu_arithmetic_reference_stays_close_to_float32_logits():
    npu = load_npu_config("dnpu-cloud")
    model = build_model(SMALL).init_weights(3)
    seq = np.array(PROMPT + [SMALL.mask_token_id] * 8, np.int32)
    shapes = Shapes(SMALL, npu, 16)
    weights = reference_weights(pack_weights(weights_from_model(model), shapes), npu)
    out = reference_step(StepSpec(shapes, 16, 8, "topk"), weights, ReferenceState.start(shapes, seq), 0, 8, k=2)
    with torch.no_grad():
        exact = model(torch.as_tensor(seq[None], dtype=torch.long))[0, 8:].numpy()
    keep = np.arange(SMALL.vocab_size) != SMALL.mask_token_id
    error = np.abs(out.logits[:, keep] - exact[:, keep]).max() / np.abs(exact[:, keep]).max()
    assert error < 0.05
    assert out.committed.sum() == 2


def test_write_artifacts_writes_program_listing_map_and_stats(tmp_path):
    step = compile_spec(StepSpec(Shapes(SMALL, load_npu_config("dnpu-cloud"), 16), 4, 4, "topk"))
    paths = write_artifacts(step, tmp_path, "dual.inblock")
    assert [p.name for p in paths] == ["dual.inblock.bin", "dual.inblock.s", "dual.inblock.dram_map.json",
                                       "dual.inblock.stats.json"]
    assert np.array_equal(np.fromfile(paths[0], "<u4"), step.program)


def test_blocks_longer_than_vlen_rank_across_vector_chunks():
    """A 72-position block spans two VLEN rows of confidences: vrank compares every chunk pair."""
    npu = load_npu_config("dnpu-cloud")
    config = dataclasses.replace(SMALL, n_layers=1, max_seq_len=80)
    weights = random_weights(config, seed=5)
    plan = DecodeConfig(gen_length=72, block_length=72, steps=2, cache="dual")
    got = generate(SimulatorStepper(config, weights, npu, 80, "topk"), PROMPT, plan, config.mask_token_id)
    want = generate(ReferenceStepper(config, weights, npu, 80, "topk"), PROMPT, plan, config.mask_token_id)
    assert np.array_equal(got.tokens, want.tokens)
    assert [int(r.committed.sum()) for r in got.records] == [36, 36]


@pytest.mark.parametrize("rows, accumulators", [(16 * 11, 8), (16 * 2, 4)])
def test_gemm_row_groups_decode_the_reference_bit_for_bit(rows, accumulators):
    """emit_gemm's row groups and multi-column panels (8 accumulators on dnpu-cloud: 11 blocks =
    a group of 8 and one of 3, one column per panel; 2 blocks = one group of 2 in each of the 2
    columns of one panel, one DMA per K step) give the bits of reference_gemm + mwb's rounding."""
    from npu.compiler.linear import compile_gemm, reference_gemm
    from npu.sim.functional import FunctionalSimulator

    cloud = load_npu_config("dnpu-cloud")
    npu = dataclasses.replace(cloud, formats=dataclasses.replace(cloud.formats, weights="bf16"))
    k = n = 2 * npu.mlen
    kernel = compile_gemm(npu, rows, k, n)
    rng = np.random.default_rng(7)
    sim = FunctionalSimulator(npu, dram_size=1 << 20)
    round_vector = sim.vector_sram.round
    x = round_vector(rng.normal(size=(rows, k)).astype(np.float32))
    w = round_vector((rng.normal(size=(n, k)) / 8).astype(np.float32))
    sim.dram.write(0, w, "bf16")                     # the only DRAM region: gemm.weight at 0
    sim.vector_sram.write(0, x.reshape(-1))          # x then y, as compile_gemm allocates them
    sim.load(kernel.program)
    sim.run()
    y = sim.vector_sram.read(rows * k, rows * n).reshape(rows, n)
    assert np.abs(y).min(axis=1).max() > 0           # every row written
    np.testing.assert_array_equal(y, round_vector(reference_gemm(x, w.T, npu.mlen)))
    groups = {int(line.rsplit(",", 1)[1]) for line in kernel.listing.splitlines() if line.strip().startswith("mmt")}
    assert groups == set(range(accumulators))
