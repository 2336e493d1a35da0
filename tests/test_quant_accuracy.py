"""The accuracy simulator: NPU arithmetic, perplexity with a KV cache, the grid, outliers, calibration."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from npu.hw.config import load_npu_config
from npu.hw.rows import dequantized_weights
from npu.models.decoding import DecodeConfig
from npu.models.tasks import CharCorpus, SortDigits
from npu.models.transformer import KVCache, ModelConfig, build_model
from npu.quant.accuracy import SampleSizes, kv_perplexity, prepare_model, run_accuracy_grid
from npu.quant.calibration import calibrate_static_smoothing
from npu.quant.methods import make_cache_factory
from npu.quant.npu_numerics import with_npu_numerics
from npu.quant.observe import observe_queries
from npu.quant.outliers import OutlierSpec, inject_kv_outliers

SORT = SortDigits(n_digits=4)
SORT_MODEL = ModelConfig(name="tiny-sort4", vocab_size=12, mask_token_id=11, n_layers=2, d_model=64, n_heads=2,
                         n_kv_heads=2, head_dim=32, d_ff=128, max_seq_len=9)
DECODE = DecodeConfig(gen_length=4, block_length=2, steps=4)
SIZES = SampleSizes(exact_match_prompts=16, perplexity_windows=4, perplexity_mask_draws=2, batch_size=16)


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def corpus() -> CharCorpus:
    return CharCorpus(window_length=16)


def sort_model(seed: int = 0):
    return build_model(SORT_MODEL).init_weights(seed).eval()


def text_model(corpus: CharCorpus):
    config = ModelConfig(name="tiny-text16", vocab_size=len(corpus.vocab), mask_token_id=corpus.mask_id, n_layers=2,
                         d_model=64, n_heads=2, n_kv_heads=2, head_dim=32, d_ff=128, max_seq_len=16)
    return build_model(config).init_weights(0).eval()


def test_npu_numerics_copy_holds_the_dma_weights_and_leaves_the_original_alone() -> None:
    model = sort_model()
    npu = load_npu_config("dnpu-cloud")
    copy = with_npu_numerics(model, npu)
    w = model.blocks[0].attn.q_proj.weight.detach()
    expected = dequantized_weights(w.T.contiguous().numpy(), npu).T
    assert np.array_equal(copy.blocks[0].attn.q_proj.weight.detach().numpy(), expected)
    assert not torch.equal(copy.lm_head.weight, model.lm_head.weight)  # padded 12-row vocab still quantized
    tokens = torch.randint(0, 11, (2, 9), generator=torch.Generator().manual_seed(1))
    logits, reference = copy(tokens), model(tokens)
    assert torch.equal(logits, logits.to(torch.bfloat16).float())  # outputs are bf16 values
    assert (logits - reference).abs().max() < 0.1 * reference.abs().max()
    assert all(isinstance(m, nn.Module) for m in model.modules()) and not model.lm_head._forward_hooks


def test_perplexity_without_a_cache_is_the_corpus_estimator(corpus) -> None:
    model = text_model(corpus)
    ours = kv_perplexity(model, corpus, None, n_windows=4, n_mask_draws=2, seed=3)
    theirs, _ = corpus.perplexity(model, n_windows=4, n_mask_draws=2, seed=3)
    assert ours["perplexity"] == pytest.approx(theirs, rel=1e-6)
    plain_cache = kv_perplexity(model, corpus, lambda c, b, n: KVCache(c, b, n), 4, 2, 3)
    assert plain_cache["perplexity"] == pytest.approx(theirs, rel=1e-5)
    two_bit = kv_perplexity(model, corpus, make_cache_factory("int", 2), 4, 2, 3)
    assert two_bit["perplexity"] != pytest.approx(theirs, rel=1e-6)


def test_the_grid_has_one_row_per_method_bits_and_mode_with_na_rows(corpus) -> None:
    npu = load_npu_config("dnpu-cloud")
    sort_entry = prepare_model("sort", sort_model(), SORT, DECODE, npu)
    text_entry = prepare_model("text", text_model(corpus), corpus, None, npu)
    rows = run_accuracy_grid([sort_entry, text_entry], methods=("bf16", "int", "mxfp", "baos-mxint"),
                             bits=(16, 4, 3), cache_modes=("prefix", "dual"), sizes=SIZES)
    # per puzzle mode: bf16 16; int 4, 3; mxfp 4, 3(n/a); baos-mxint 4, 3 -> 7 rows; text: one mode
    assert len(rows) == 7 * 2 + 7
    na = [r for r in rows if r["status"] != "ok"]
    assert {(r["method"], r["bits"]) for r in na} == {("mxfp", 3)} and all(r["value"] is None for r in na)
    ok = [r for r in rows if r["status"] == "ok"]
    assert all(0.0 <= r["value"] <= 1.0 for r in ok if r["metric"] == "exact_match")
    assert all(r["value"] > 1.0 for r in ok if r["metric"] == "perplexity")
    assert {r["cache"] for r in rows if r["task"] == "text"} == {"full"}
    assert all(r["bytes_per_token"] > 0 for r in ok)
    with pytest.raises(ValueError, match="unknown KV-cache method"):
        run_accuracy_grid([sort_entry], methods=("nope",))


def test_outlier_injection_keeps_the_logits_and_inflates_key_channels() -> None:
    model = sort_model(2)
    spec = OutlierSpec(key_pairs=1, key_gain=16.0, value_channels=1, value_gain=8.0, seed=0)
    outliers = inject_kv_outliers(model, spec)
    tokens = torch.randint(0, 11, (3, 9), generator=torch.Generator().manual_seed(3))
    assert torch.allclose(outliers(tokens), model(tokens), atol=1e-4)
    plain_cache, outlier_cache = KVCache(SORT_MODEL, 3, 9), KVCache(SORT_MODEL, 3, 9)
    positions = torch.arange(9)
    model(tokens, positions, plain_cache)
    outliers(tokens, positions, outlier_cache)
    k_plain, k_out = plain_cache.read(0)[0], outlier_cache.read(0)[0]
    ratio = k_out.abs().amax(dim=(0, 2)) / k_plain.abs().amax(dim=(0, 2))
    assert torch.isclose(ratio.max(), torch.tensor(16.0)) and (ratio > 15).sum() == 2 * 2  # one pair per head
    with pytest.raises(ValueError, match="more channels than head_dim"):
        inject_kv_outliers(model, OutlierSpec(key_pairs=17))


def test_static_calibration_gives_positive_rope_paired_factors(corpus) -> None:
    smoothing = calibrate_static_smoothing(sort_model(), SORT, DECODE, n_sequences=8)
    assert len(smoothing.factors) == 2 and smoothing.factors[0].shape == (2, 32)
    for f in smoothing.factors:
        assert (f > 0).all() and torch.equal(f[:, :16], f[:, 16:])
    text = calibrate_static_smoothing(text_model(corpus), corpus, n_sequences=4)
    assert text.factors[1].shape == (2, 32)
    with pytest.raises(ValueError, match="needs a DecodeConfig"):
        calibrate_static_smoothing(sort_model(), SORT)


def test_queries_reach_the_cache_only_inside_the_observer() -> None:
    seen = []

    class Watching(KVCache):
        def observe_queries(self, layer, q):
            seen.append((layer, tuple(q.shape)))

    model = sort_model()
    tokens = torch.randint(0, 11, (2, 9), generator=torch.Generator().manual_seed(4))
    with observe_queries(model):
        model(tokens, torch.arange(9), Watching(SORT_MODEL, 2, 9))
    assert seen == [(0, (2, 2, 9, 32)), (1, (2, 2, 9, 32))]
    model(tokens, torch.arange(9), Watching(SORT_MODEL, 2, 9))
    assert len(seen) == 2
