"""BAOS's candidate selection (npu.quant.baos, numerics.BAOS_CRITERIA): the 'output' criterion is
the change of the block queries' attention output, "no smoothing" (the plain storage format) is
among the candidates, so on its own criterion BAOS never does worse than the format it stores in,
and the older criteria stay selectable for the ablation."""

from __future__ import annotations

import math

import pytest
import torch

from npu.hw.numerics import BAOS_CRITERIA
from npu.models.transformer import ModelConfig
from npu.quant.baos import NO_SMOOTHING, BaosKVCache, BaosOptions, output_errors
from npu.quant.kv_cache import BlockLayout
from npu.quant.methods import make_cache_factory
from npu.quant.quantizers import per_token, round_bf16

GQA = ModelConfig(name="gqa", vocab_size=12, mask_token_id=11, n_layers=1, d_model=64, n_heads=4,
                  n_kv_heads=2, head_dim=32, d_ff=128, max_seq_len=16)
LAYOUT = BlockLayout(8, 4)  # 16 positions: 8 prompt, two blocks of 4; the first refresh's block is rows 8..11


def qkv(seed: int, outliers: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """bf16-exact q (1, 4, 16, 32) and k, v (1, 2, 16, 32); channels 3 and 17 of K and 5 of V
    scaled by `outliers`, and q large on channel 3."""
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(1, n, 16, 32, generator=g) for n in (4, 2, 2))
    k[..., [3, 17]] *= outliers
    v[..., 5] *= outliers
    q[..., 3] *= 4
    return round_bf16(q), round_bf16(k), round_bf16(v)


def test_output_errors_are_the_change_of_the_block_queries_attention_output() -> None:
    q, k, v = qkv(0)
    rows, kept = slice(8, 12), slice(8, 12)
    key_error, value_error = output_errors(q, k, v, rows, kept)
    assert torch.equal(key_error(k), torch.zeros(1, 2)) and torch.equal(value_error(v), torch.zeros(1, 2))
    k_hat, v_hat = k + 0.1 * torch.randn_like(k), v + 0.1 * torch.randn_like(v)
    # by hand, query head h reads KV head h // 2, the block rows keep their exact K/V
    k_read, v_read = k_hat.clone(), v_hat.clone()
    k_read[:, :, kept], v_read[:, :, kept] = k[:, :, kept], v[:, :, kept]
    expand = lambda x: x.repeat_interleave(2, dim=1)  # noqa: E731
    attend = lambda keys, values: ((q[:, :, rows] @ expand(keys).transpose(-2, -1)) / math.sqrt(32)).softmax(-1) @ expand(values)  # noqa: E731
    exact = attend(k, v)
    by_head = lambda x: x.pow(2).sum(dim=(-2, -1)).view(1, 2, 2).sum(-1)  # noqa: E731
    assert torch.allclose(key_error(k_hat), by_head(attend(k_read, v) - exact), rtol=1e-5, atol=1e-9)
    weights = ((q[:, :, rows] @ expand(k).transpose(-2, -1)) / math.sqrt(32)).softmax(-1)
    assert torch.allclose(value_error(v_hat), by_head(weights @ expand(v_read - v)), rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("method, bits", [("baos-mxint", 4), ("baos-mxint", 3), ("baos-int", 3)])
@pytest.mark.parametrize("outliers", [1.0, 16.0])
def test_baos_never_loses_to_its_plain_format_on_the_output_criterion(method, bits, outliers) -> None:
    layout = "mxint" if method == "baos-mxint" else "int"
    for seed in range(4):
        q, k, v = qkv(seed, outliers)
        cache = make_cache_factory(method, bits, decode=LAYOUT)(GQA, 1, 16)
        cache.observe_queries(0, q)
        cache.write(0, torch.arange(16), k, v)
        key_error, value_error = output_errors(q, k, v, slice(8, 12), slice(8, 12))
        k_read, v_read = cache.read(0)
        assert (key_error(k_read) <= key_error(per_token(k, layout, bits))).all()
        assert (value_error(v_read) <= value_error(per_token(v, layout, bits))).all()


def test_the_plain_format_wins_where_smoothing_and_the_shift_only_add_error() -> None:
    """K/V already on the MXINT4 grid (every value a multiple of 1/2 of max 2): the plain format
    stores them exactly, so every (head, K/V) keeps it - a tie at worst, and ties go to it."""
    g = torch.Generator().manual_seed(3)
    k, v = (torch.randint(-4, 5, (1, 2, 16, 32), generator=g) / 2 for _ in range(2))
    k[..., 0], v[..., 0] = 2.0, -2.0  # every block reaches max |x| = 2 and is asymmetric
    cache = make_cache_factory("baos-mxint", 4, decode=LAYOUT)(GQA, 1, 16)
    cache.observe_queries(0, torch.randn(1, 4, 16, 32, generator=g))
    cache.write(0, torch.arange(16), k, v)
    assert cache.alpha_histogram() == {"key": {"none": 1.0}, "value": {"none": 1.0}}
    assert torch.equal(cache.read(0)[0], k) and torch.equal(cache.read(0)[1], v)


def test_the_plain_candidate_is_tried_once_and_also_without_alpha_0() -> None:
    """Without the shift, alpha 0 is the plain format: it is not tried twice. Without alpha 0
    among the candidates the plain format still is one."""
    _, k, _ = qkv(2)
    for alphas, expected in (((0.0, 0.5), 2), ((0.25, 0.5), 3)):
        cache = BaosKVCache(GQA, 1, 16, LAYOUT, bits=4, options=BaosOptions(storage="int", shift=False, alphas=alphas))
        tried = list(cache._candidates(k, torch.zeros(1, 2, 32), "key", plain=True))
        assert len(tried) == expected
        assert (tried[0][0] == NO_SMOOTHING) == (alphas == (0.25, 0.5))


def test_the_old_criteria_stay_selectable_and_bad_ones_are_named() -> None:
    assert BaosOptions().criterion == "output" and BaosOptions().plain_candidate
    assert BaosOptions().criterion == BAOS_CRITERIA[0]
    q, k, v = qkv(1, 16.0)
    old = BaosKVCache(GQA, 1, 16, LAYOUT, bits=4, options=BaosOptions(criterion="attention", plain_candidate=False))
    old.observe_queries(0, q)
    old.write(0, torch.arange(16), k, v)
    assert all(alpha != NO_SMOOTHING for _, alpha in old.alpha_counts)
    with pytest.raises(ValueError, match="criterion 'logit' is not one of .*'output'"):
        BaosOptions(criterion="logit")
    with pytest.raises(ValueError, match="criterion='output' needs the queries"):
        BaosKVCache(GQA, 1, 16, LAYOUT, bits=4).write(0, torch.arange(16), k, v)


def test_the_study_settings_reach_the_methods_and_the_schema_lists_the_same_names() -> None:
    from npu.config import load_schema
    from npu.hw.numerics import MX_SCALE_RULES
    from npu.quant.experiments import study_method_options

    options = study_method_options(("bf16", "int", "mxint", "static-mxint", "baos-mxint"), "attention", "no_clip")
    assert options == {"mxint": {"mx_scale": "no_clip"}, "baos-mxint": {"criterion": "attention", "mx_scale": "no_clip"}}
    with pytest.raises(ValueError, match="BAOS criterion 'logit' is not one of output, attention"):
        study_method_options(("baos-int",), "logit")
    with pytest.raises(ValueError, match="unknown MX scale rule 'round'"):
        study_method_options(("mxint",), "output", "round")
    study = load_schema("config")["properties"]["quantization"]["properties"]
    assert tuple(study["baos_criterion"]["enum"]) == BAOS_CRITERIA and study["baos_criterion"]["default"] == "output"
    assert tuple(study["mx_scale"]["enum"]) == MX_SCALE_RULES
