"""Temperature (Gumbel-max) sampling in the compiled step programs: the simulator decodes exactly
what the NPU-arithmetic reference decodes, the noise really steers x0, and greedy is untouched."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from npu.compiler import StepSpec, compile_spec, reference_step
from npu.compiler.layout import Shapes, pack_weights, reference_weights
from npu.compiler.reference import ReferenceState
from npu.compiler.sampling import noise_image, vocab_bias
from npu.hw.config import load_npu_config
from npu.kernels.reference import confidence_reference
from npu.models.decoding import gumbel_noise
from npu.runtime import ReferenceStepper, SimulatorStepper, generate, generation_difference
from npu.ir import random_weights
from npu.models.decoding import DecodeConfig
from npu.models.transformer import ModelConfig
from npu.runtime.generate import GumbelNoise

# 300 tokens: 3 vocabulary tiles on dnpu-cloud / ar-npu (MLEN 128), 5 on dnpu-edge (MLEN 64), so
# the running argmax of logits + T * g and x0's logit are carried across tiles.
VOCAB = ModelConfig("test-vocab300", vocab_size=300, mask_token_id=299, n_layers=1, d_model=128, n_heads=4,
                    n_kv_heads=4, head_dim=32, d_ff=256, max_seq_len=16)
PROMPT = [3, 1, 4, 1, 5, 9, 2, 6]
SEQ = len(PROMPT) + 8


def decode(stepper_class, npu_name: str, plan: DecodeConfig, config=VOCAB, seed: int = 0):
    stepper = stepper_class(config, random_weights(config, seed), load_npu_config(npu_name), SEQ, plan.sampling)
    return generate(stepper, PROMPT, plan, config.mask_token_id)


@pytest.mark.parametrize("npu_name, cache, threshold", [
    ("dnpu-cloud", "dual", None),
    ("dnpu-cloud", "none", 0.2),
    ("dnpu-edge", "prefix", None),
    ("dnpu-edge", "dual", 0.2),
    ("ar-npu", "dual", None),
    ("ar-npu", "prefix", 0.2),
])
def test_sampled_generation_equals_reference_bit_for_bit(npu_name, cache, threshold):
    plan = DecodeConfig(gen_length=8, block_length=4, steps=8, cache=cache, threshold=threshold,
                      temperature=0.5, seed=7)
    sim = decode(SimulatorStepper, npu_name, plan)
    ref = decode(ReferenceStepper, npu_name, plan)
    assert generation_difference(sim, ref) is None
    assert len(sim.records) >= 2
    assert not (sim.tokens == VOCAB.mask_token_id).any()
    greedy = decode(ReferenceStepper, npu_name, dataclasses.replace(plan, temperature=0.0))
    assert not np.array_equal(sim.tokens, greedy.tokens)  # the noise reached x0


def test_same_seed_same_tokens_other_seed_other_tokens():
    plan = DecodeConfig(gen_length=8, block_length=4, steps=8, cache="dual", temperature=1.0, seed=1)
    first = decode(ReferenceStepper, "dnpu-edge", plan).tokens
    assert np.array_equal(first, decode(ReferenceStepper, "dnpu-edge", plan).tokens)
    assert not np.array_equal(first, decode(ReferenceStepper, "dnpu-edge", dataclasses.replace(plan, seed=2)).tokens)


def _one_step(npu_name: str, temperature: float, noise: np.ndarray | None):
    npu = load_npu_config(npu_name)
    shapes = Shapes(VOCAB, npu, SEQ)
    weights = reference_weights(pack_weights(random_weights(VOCAB), shapes), npu)
    tokens = np.array(PROMPT + [VOCAB.mask_token_id] * 8, np.int32)
    spec = StepSpec(shapes, SEQ, 8, "topk", temperature=temperature > 0)
    return reference_step(spec, weights, ReferenceState.start(shapes, tokens), 0, len(PROMPT), k=2,
                          temperature=temperature, noise=noise)


def test_high_temperature_follows_the_noise_and_confidence_stays_the_logits_softmax():
    noise = gumbel_noise((8, VOCAB.vocab_size), torch.Generator().manual_seed(3))
    greedy = _one_step("dnpu-cloud", 0.0, None)
    hot = _one_step("dnpu-cloud", 1000.0, noise)
    allowed = np.arange(VOCAB.vocab_size) != VOCAB.mask_token_id
    noise_pick = np.where(allowed, noise, -np.inf).argmax(axis=1)
    assert (hot.x0 != greedy.x0).sum() >= 6
    assert (hot.x0 == noise_pick).sum() >= 6  # bf16 rounding of T * g may tie a few rows
    logits = hot.logits.astype(np.float64)
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    expected = softmax[np.arange(8), hot.x0]
    assert np.allclose(hot.confidence, expected, rtol=0.03)
    assert (hot.confidence <= greedy.confidence * 1.0001).all()  # x0 is no longer the argmax


@pytest.mark.parametrize("npu_name", ["dnpu-cloud", "dnpu-edge"])
def test_lm_head_reference_equals_the_standalone_sampling_kernel_reference(npu_name):
    """The fused LM-head epilogue computes what kernels.reference.confidence_reference defines."""
    npu = load_npu_config(npu_name)
    noise = gumbel_noise((8, VOCAB.vocab_size), torch.Generator().manual_seed(4))
    out = _one_step(npu_name, 0.8, noise)
    vocab_pad = Shapes(VOCAB, npu, SEQ).vocab_pad
    padded = np.full((8, vocab_pad), -np.inf, np.float32)
    padded[:, :VOCAB.vocab_size] = out.logits
    padded += vocab_bias(VOCAB.vocab_size, vocab_pad, VOCAB.mask_token_id)
    x0, confidence = confidence_reference(padded, npu, npu.mlen // npu.vlen, 0.8, noise_image(noise, vocab_pad))
    assert np.array_equal(out.x0, x0)
    assert np.array_equal(out.confidence.view(np.uint32), confidence.view(np.uint32))


def test_greedy_programs_are_unchanged_by_the_temperature_option():
    shapes = Shapes(VOCAB, load_npu_config("dnpu-cloud"), SEQ)
    plain = compile_spec(StepSpec(shapes, SEQ, 4, "topk"))
    greedy = compile_spec(StepSpec(shapes, SEQ, 4, "topk", temperature=False))
    sampled = compile_spec(StepSpec(shapes, SEQ, 4, "topk", temperature=True))
    assert np.array_equal(plain.program, greedy.program) and plain.constants == greedy.constants
    assert "noise" not in plain.dram_map and "noise" in sampled.dram_map
    for name, region in plain.dram_map.items():  # the noise region comes last: nothing moved
        assert sampled.dram_map[name] == region
    plan = DecodeConfig(gen_length=8, block_length=4, steps=8, cache="prefix")
    assert plan.temperature == 0.0
    assert np.array_equal(decode(SimulatorStepper, "ar-npu", plan).tokens,
                          decode(ReferenceStepper, "ar-npu", plan).tokens)


def test_statistics_predict_a_sampled_step():
    npu = load_npu_config("ar-npu")
    stepper = SimulatorStepper(VOCAB, random_weights(VOCAB), npu, SEQ, "threshold")
    stepper.start(np.array(PROMPT + [VOCAB.mask_token_id] * 8, np.int32))
    noise = GumbelNoise(0).draw(4, VOCAB.vocab_size)
    stepper.step(SEQ, 4, 0, 8, 0, 0.9, temperature=0.5, noise=noise)
    stats, predicted = stepper.last_stats, stepper.program(SEQ, 4, True).stats
    assert predicted["executed_total"] == stats.instructions
    assert predicted["executed_by_class"] == stats.by_latency_class
    assert predicted["dram_read_bytes"] == stats.bytes_moved["dram_read"]


def test_bad_temperature_or_noise_is_rejected_with_a_clear_error():
    with pytest.raises(ValueError, match="temperature"):
        DecodeConfig(gen_length=8, block_length=4, steps=8, temperature=-0.5)
    with pytest.raises(ValueError, match="temperature"):
        DecodeConfig(gen_length=8, block_length=4, steps=8, temperature=float("nan"))
    with pytest.raises(ValueError, match=r"shape \(sample_length, vocab_size\) = \(8, 300\)"):
        _one_step("dnpu-cloud", 1.0, np.zeros((8, 299), np.float32))
    with pytest.raises(ValueError, match="needs Gumbel noise"):
        _one_step("dnpu-cloud", 1.0, None)
    with pytest.raises(ValueError, match=">= 0"):
        _one_step("dnpu-cloud", -1.0, None)
    npu = load_npu_config("dnpu-edge")
    stepper = SimulatorStepper(VOCAB, random_weights(VOCAB), npu, SEQ, "topk")
    stepper.start(np.array(PROMPT + [VOCAB.mask_token_id] * 8, np.int32))
    with pytest.raises(ValueError, match=r"\(4, 300\)"):
        stepper.step(SEQ, 4, 0, 8, 1, 0.9, temperature=1.0, noise=np.zeros((4, 64), np.float32))
    with pytest.raises(ValueError, match="greedy step"):
        stepper.step(SEQ, 4, 0, 8, 1, 0.9, temperature=0.0, noise=np.zeros((4, 300), np.float32))
    with pytest.raises(ValueError, match="greedy plan"):
        generate(stepper, PROMPT, DecodeConfig(8, 4, 8), VOCAB.mask_token_id, noise=GumbelNoise(0))
