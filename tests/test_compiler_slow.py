"""Long verification of the compiler (`make test-slow`): a trained tiny model over 50 prompts on
every machine, cache mode and commit rule, and one full-size LLaDA layer on the simulator."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from npu.compiler import StepSpec, compile_spec
from npu.compiler.layout import Shapes
from npu.hw.config import load_npu_config
from npu.models.presets import load_model_spec
from npu.runtime import ReferenceStepper, SimulatorStepper

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sort_checkpoint(tmp_path_factory):
    """DNPU_SORT_CHECKPOINT names a trained tiny-sort checkpoint; otherwise one is trained here."""
    given = os.environ.get("DNPU_SORT_CHECKPOINT")
    if given:
        return given
    from npu.stages.train import train_stage

    return str(train_stage("tiny-sort", tmp_path_factory.mktemp("ckpt-sort"), threads=2))


@pytest.mark.parametrize("npu_name", ["dnpu-cloud", "dnpu-edge", "ar-npu"])
def test_trained_tiny_sort_decodes_exactly_the_reference_on_50_prompts(sort_checkpoint, npu_name):
    from npu.check.verify import verify

    report = verify(sort_checkpoint, [npu_name], ["none", "prefix", "dual"], ["topk", "threshold"], 50,
                    log=lambda line: None)
    # dnpu-edge stores weights in MXINT4: on the 3000-step tiny-sort the logits error reaches 0.45 of
    # the largest logit and exact match 86-92% (measured 2026-11-30); the MXFP8 machines lose nothing.
    edge = npu_name == "dnpu-edge"
    for run in report["runs"]:
        assert run["exact_match_vs_reference"] == run["prompts"] == 50, run
        assert run["task_accuracy"] >= (0.8 if edge else 0.9), run
        assert run["logits_max_rel_error"] < (0.6 if edge else 0.1), run


def test_llada_8b_step_compiles_on_cloud_and_ar_npu():
    llada = load_model_spec("llada-8b").architecture
    for npu_name in ("dnpu-cloud", "ar-npu"):
        step = compile_spec(StepSpec(Shapes(llada, load_npu_config(npu_name), 1024), 32, 32, "topk"))
        assert step.stats["macs"] > 2.4e11
        assert step.stats["program_words"] < 40_000


def test_one_full_size_llada_layer_matches_the_reference_on_the_simulator():
    """LLaDA-8B dimensions (d 4096, 32 heads of 128, SwiGLU 12288), one layer, 4096-token vocab."""
    base = load_model_spec("llada-8b").architecture
    layer = dataclasses.replace(base, name="llada-8b-layer", n_layers=1, vocab_size=4096, mask_token_id=4000,
                                max_seq_len=64)
    rng = np.random.default_rng(0)
    weights = {}
    from npu.models.transformer import build_model

    for name, p in build_model(layer, "meta").named_parameters():
        scale = 1.0 if name.endswith("norm.weight") else 0.02
        weights[name] = (1.0 if name.endswith("norm.weight") else 0.0) + scale * rng.standard_normal(p.shape).astype(np.float32)
    npu = load_npu_config("dnpu-cloud")
    seq = np.concatenate([rng.integers(0, 4000, 32), np.full(32, 4000)]).astype(np.int32)
    sim, ref = SimulatorStepper(layer, weights, npu, 64, "topk"), ReferenceStepper(layer, weights, npu, 64, "topk")
    for stepper in (sim, ref):
        stepper.start(seq)
    for query_length, q0, s0, k in ((64, 0, 32, 4), (32, 32, 0, 4)):  # refresh pass, then a dual-cache step
        got, _ = sim.step(query_length, 32, q0, s0, k, 0.9)
        want, _ = ref.step(query_length, 32, q0, s0, k, 0.9)
        assert np.array_equal(got.x0, want.x0)
        assert np.array_equal(got.confidence.view(np.uint32), want.confidence.view(np.uint32))
        assert np.array_equal(got.tokens, want.tokens)
