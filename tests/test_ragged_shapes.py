"""Any shape compiles: model widths that are not multiples of the NPU's MLEN (d_model, d_ff, the
vocabulary) are zero-padded by the compiler (npu.compiler.layout), and the compiled program decodes
exactly what the NPU-arithmetic reference decodes at the model's true, unpadded widths.

The reference's ragged arithmetic is defined once: a K that is not a multiple of MLEN is the
zero-padded tile sum (`linear.reference_gemm`), a row not a multiple of VLEN the zero-padded tree
sum (`numerics.chained_row_sum`); the tests below pin both to the unpadded math."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from npu.compiler import CompileError, StepSpec, compile_spec, reference_step
from npu.compiler.kv_quant import KVQuant
from npu.compiler.layout import Shapes, pack_weights, reference_weights, true_width_weights
from npu.compiler.linear import reference_gemm
from npu.compiler.reference import ReferenceState
from npu.hw.config import load_npu_config
from npu.hw.numerics import chained_row_sum, hw_matmul_accumulate
from npu.ir import weights_from_model
from npu.models.decoding import DecodeConfig
from npu.models.transformer import ModelConfig, build_model
from npu.runtime import ReferenceStepper, SimulatorStepper, generate, generation_difference
from npu.runtime.lowering import step_program
from npu.sim.analytical.operators import StepShape
from npu.sim.analytical.program import estimate_program
from npu.sim.analytical.static import estimate_static

from test_compiler import PROMPT, SMALL, decode_both, random_weights
from test_compiler_temperature import decode as decode_sampled

PRESETS = ["dnpu-edge", "dnpu-cloud", "ar-npu"]
# 3 layers; d_model 96 (MLEN 64 and 128 both leave a remainder, and so does VLEN 64); 6 heads of
# head_dim 16 sharing 2 KV heads (GQA); d_ff 160; a vocabulary of 150 (2 LM-head tiles on MLEN 128,
# 3 on MLEN 64, the last partly padding).
RAGGED = ModelConfig("test-ragged", vocab_size=150, mask_token_id=149, n_layers=3, d_model=96, n_heads=6,
                     n_kv_heads=2, head_dim=16, d_ff=160, max_seq_len=16)
# BAOS KV needs head_dim to fill MX blocks (32) and a head slot of one MLEN tile.
RAGGED_BAOS = dataclasses.replace(RAGGED, name="test-ragged-baos", head_dim=32, qkv_bias=True)


@pytest.mark.parametrize("threshold", [None, 0.2], ids=["topk", "threshold"])
@pytest.mark.parametrize("cache", ["none", "prefix", "dual"])
@pytest.mark.parametrize("npu_name", PRESETS)
def test_ragged_model_decodes_exactly_on_every_preset(npu_name, cache, threshold):
    sim, ref = decode_both(RAGGED, npu_name, cache, threshold)
    assert generation_difference(sim, ref) is None
    assert len(sim.records) >= 2
    generated = sim.tokens[len(PROMPT):]
    assert (generated < RAGGED.vocab_size).all() and (generated != RAGGED.mask_token_id).all()


@pytest.mark.parametrize("npu_name", PRESETS)
def test_widths_the_mx_blocks_do_not_divide_decode_exactly(npu_name):
    """d_model 100 / d_ff 200: the last MX block of a weight row (32 values) mixes real values and
    padding zeros, and the last VLEN row of RMSNorm's sum holds 36 real squares."""
    config = dataclasses.replace(RAGGED, name="test-ragged-100", d_model=100, d_ff=200, n_layers=2)
    sim, ref = decode_both(config, npu_name, "dual", 0.2)
    assert generation_difference(sim, ref) is None


@pytest.mark.parametrize("npu_name", PRESETS)
def test_ragged_model_samples_with_temperature_exactly(npu_name):
    plan = DecodeConfig(gen_length=8, block_length=4, steps=8, cache="dual", temperature=0.5, seed=7)
    sim = decode_sampled(SimulatorStepper, npu_name, plan, config=RAGGED)
    ref = decode_sampled(ReferenceStepper, npu_name, plan, config=RAGGED)
    assert generation_difference(sim, ref) is None
    assert (sim.tokens < RAGGED.vocab_size).all()


@pytest.mark.parametrize("npu_name, threshold, kv", [
    ("dnpu-cloud", None, KVQuant(4, 0.5)),
    ("dnpu-edge", 0.2, KVQuant(4, (0.0, 0.25, 0.5, 0.75))),
])
def test_ragged_model_with_baos_kv_decodes_exactly(npu_name, threshold, kv):
    npu = load_npu_config(npu_name)
    weights = random_weights(RAGGED_BAOS)
    plan = DecodeConfig(gen_length=8, block_length=4, steps=8, cache="dual", threshold=threshold)
    seq_len = len(PROMPT) + plan.gen_length
    sim = generate(SimulatorStepper(RAGGED_BAOS, weights, npu, seq_len, plan.sampling, kv), PROMPT, plan,
                   RAGGED_BAOS.mask_token_id)
    ref = generate(ReferenceStepper(RAGGED_BAOS, weights, npu, seq_len, plan.sampling, kv), PROMPT, plan,
                   RAGGED_BAOS.mask_token_id)
    assert generation_difference(sim, ref) is None


def test_ragged_reference_is_the_unpadded_model_in_npu_arithmetic():
    """The reference at true widths stays within 2 % of the float32 PyTorch model (bf16 weights:
    measured 0.7-0.8 %; an RMSNorm dividing by the padded 128 instead of 96 is 19-23 % off), so
    exact agreement with it means the program computes the unpadded model."""
    cloud = load_npu_config("dnpu-cloud")
    npu = dataclasses.replace(cloud, formats=dataclasses.replace(cloud.formats, weights="bf16"))
    model = build_model(RAGGED).init_weights(3)
    seq = np.array(PROMPT + [RAGGED.mask_token_id] * 8, np.int32)
    shapes = Shapes(RAGGED, npu, 16)
    weights = reference_weights(pack_weights(weights_from_model(model), shapes), npu)
    out = reference_step(StepSpec(shapes, 16, 8, "topk"), weights, ReferenceState.start(shapes, seq), 0, 8, k=2)
    with torch.no_grad():
        exact = model(torch.as_tensor(seq[None], dtype=torch.long))[0, 8:].numpy()
    keep = np.arange(RAGGED.vocab_size) != RAGGED.mask_token_id
    error = np.abs(out.logits[:, keep] - exact[:, keep]).max() / np.abs(exact[:, keep]).max()
    assert error < 0.02


@pytest.mark.parametrize("npu_name", PRESETS)
def test_ragged_widths_are_zero_padded_to_mlen_and_sliced_off_for_the_reference(npu_name):
    npu = load_npu_config(npu_name)
    shapes = Shapes(RAGGED, npu, 16)
    d, f = shapes.d_model_pad, shapes.d_ff_pad
    assert (d % npu.mlen, f % npu.mlen, d - 96 < npu.mlen, f - 160 < npu.mlen) == (0, 0, True, True)
    weights = random_weights(RAGGED)
    packed = pack_weights(weights, shapes)
    assert packed["blocks.0.mlp.gate_proj.weight"].shape == (f, d)
    assert packed["blocks.0.mlp.down_proj.weight"].shape == (d, f)
    assert packed["blocks.0.attn.o_proj.weight"].shape == (d, shapes.q_width)
    assert packed["embed.weight"].shape == (RAGGED.vocab_size, d)
    assert packed["lm_head.weight"].shape == (shapes.vocab_pad, d)
    assert not packed["blocks.0.mlp.down_proj.weight"][96:].any()
    assert not packed["blocks.0.mlp.down_proj.weight"][:, 160:].any()
    assert not packed["final_norm.weight"][96:].any()
    true = true_width_weights(packed, shapes)
    for name in ("embed.weight", "final_norm.weight", "blocks.2.mlp.up_proj.weight", "blocks.1.mlp.down_proj.weight"):
        np.testing.assert_array_equal(true[name], weights[name])
    step = compile_spec(StepSpec(shapes, 4, 4, "topk"))
    assert step.dram_map["blocks.0.mlp.up_proj.weight"]["shape"] == [f, d]


def test_padding_is_a_no_op_for_widths_that_are_multiples_of_mlen():
    """SMALL's widths are MLEN multiples on every preset: nothing is padded, so its programs are
    the ones compiled before ragged shapes existed."""
    for npu_name in PRESETS:
        shapes = Shapes(SMALL, load_npu_config(npu_name), 16)
        assert (shapes.d_model_pad, shapes.d_ff_pad) == (SMALL.d_model, SMALL.d_ff)
        weights = random_weights(SMALL)
        packed = pack_weights(weights, shapes)
        for name in ("embed.weight", "blocks.0.mlp.gate_proj.weight", "blocks.1.mlp.down_proj.weight"):
            np.testing.assert_array_equal(packed[name], weights[name])


def test_ragged_k_gemm_equals_the_unpadded_column_sums_bit_for_bit():
    """reference_gemm's zero-padded last K tile equals that tile's real products alone (the same
    chain without the appended zeros), signed zeros included."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(16, 96)).astype(np.float32)
    a[:, 5] = 0.0
    w = rng.normal(size=(96, 8)).astype(np.float32)
    w[:, 3] = 0.0      # a column of zero weights: its products are +0 and -0 (a < 0)
    w[:64, 4] = 0.0    # a column whose last, ragged tile carries all its value
    unpadded = hw_matmul_accumulate(hw_matmul_accumulate(np.zeros((16, 8), np.float32), a[:, :64], w[:64]),
                                    a[:, 64:], w[64:])
    got = reference_gemm(a, w, 64)
    np.testing.assert_array_equal(got.view(np.uint32), unpadded.view(np.uint32))
    padded = reference_gemm(np.pad(a, ((0, 0), (0, 160))), np.pad(w, ((0, 160), (0, 0))), 128)
    np.testing.assert_array_equal(padded.view(np.uint32), reference_gemm(a, w, 128).view(np.uint32))


def test_ragged_row_sum_is_the_zero_padded_row_however_far_it_is_padded():
    """RMSNorm's sum of squares over d_model 96 (VLEN 64): the same total over 96, 128 or 256 columns."""
    rng = np.random.default_rng(1)
    squares = (rng.normal(size=(8, 96)).astype(np.float32)) ** 2
    total = chained_row_sum(squares, 64)
    for width in (128, 256):
        padded = np.pad(squares, ((0, 0), (0, width - 96)))
        np.testing.assert_array_equal(chained_row_sum(padded, 64).view(np.uint32), total.view(np.uint32))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # timing mode: FP registers hold no data
@pytest.mark.parametrize("npu_name", PRESETS)
def test_ragged_step_is_costed_on_its_padded_program(npu_name):
    """The analytical model costs the compiled (padded) program: static walk = dynamic trace, and
    the MACs are those of the padded widths, which the simulator executes.

    (4 heads on 2 KV heads here: with GQA groups of 3 heads the static walk counts 60 instructions
    fewer than the trace on dnpu-edge and dnpu-cloud, for unpadded models too; a separate issue.)"""
    config = load_npu_config(npu_name)
    shape = StepShape("dual", 4, 16, 4, "topk")
    program = step_program(config, dataclasses.replace(RAGGED, n_heads=4), shape)
    static, dynamic = estimate_static(program, config), estimate_program(program, config)
    assert static.instructions == dynamic.instructions
    assert static.cycles == pytest.approx(dynamic.cycles, rel=1e-5)
    weights = random_weights(RAGGED)
    stepper = SimulatorStepper(RAGGED, weights, config, 16, "topk")
    stepper.start(np.array(PROMPT + [RAGGED.mask_token_id] * 8, np.int32))
    stepper.step(16, 4, 0, 8, 1, 0.9)
    stats, predicted = stepper.last_stats, stepper.program(16, 4).stats
    assert predicted["macs"] == stats.macs
    assert predicted["executed_total"] == stats.instructions
    shapes = stepper.shapes
    rows = -(-16 // config.blen) * config.blen
    mlp = 3 * rows * shapes.d_model_pad * shapes.d_ff_pad * RAGGED.n_layers
    assert stats.macs > mlp  # gate, up and down at padded widths, plus attention and the LM head


@pytest.mark.parametrize("npu_name", PRESETS)
def test_a_head_dim_rope_cannot_rotate_is_still_refused_naming_preset_and_model(npu_name):
    odd = dataclasses.replace(RAGGED, name="test-ragged-hd24", head_dim=24)
    with pytest.raises(CompileError) as info:
        compile_spec(StepSpec(Shapes(odd, load_npu_config(npu_name), 16), 16, 4, "topk"))
    for part in (npu_name, "test-ragged-hd24", "head_dim=24"):
        assert part in str(info.value)
