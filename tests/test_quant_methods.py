"""KV-cache quantization methods: registry, quantizers, caches in the dLLM loop, BAOS, storage."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from npu.hw import numerics
from npu.models.decoding import DecodeConfig, generate
from npu.models.transformer import KVCache, ModelConfig, build_model
from npu.quant import quantizers
from npu.quant.baos import BaosKVCache, BaosOptions
from npu.quant.kv_cache import BlockLayout, HadamardKVCache, KiviKVCache, hadamard_matrix
from npu.quant.methods import METHODS, make_cache_factory
from npu.quant.observe import observe_queries
from npu.quant.smoothing import StaticSmoothing, channel_absmax, channel_midrange, smoothing_factors
from npu.quant.storage import kv_bytes_per_token, kv_cache_bytes
from npu.hw.numerics import smoothing_factor

TINY = ModelConfig(
    name="tiny-quant", vocab_size=12, mask_token_id=11, n_layers=2, d_model=64, n_heads=2,
    n_kv_heads=2, head_dim=32, d_ff=128, max_seq_len=16,
)
LLADA_8B = ModelConfig(
    name="llada-8b", vocab_size=126464, mask_token_id=126336, n_layers=32, d_model=4096, n_heads=32,
    n_kv_heads=32, head_dim=128, d_ff=12288, max_seq_len=4096,
)
DECODE = DecodeConfig(gen_length=8, block_length=4, steps=8, cache="dual")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread is faster than two threads fighting other jobs for the cores."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_model(seed: int = 0):
    return build_model(TINY).init_weights(seed).eval()


def prompts(n: int = 3, length: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 11, (n, length), generator=torch.Generator().manual_seed(seed))


def ones_smoothing(config: ModelConfig = TINY) -> StaticSmoothing:
    return StaticSmoothing(tuple(torch.ones(config.n_kv_heads, config.head_dim) for _ in range(config.n_layers)),
                           0.5, config.name, 1)


def method_options(method: str) -> dict:
    return {"smoothing": ones_smoothing()} if method.startswith("static") else {}


# ---- registry and errors -----------------------------------------------------------------------


def test_unknown_method_is_named_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown KV-cache method 'fp8kv'.*baos-mxint"):
        make_cache_factory("fp8kv", 4)


@pytest.mark.parametrize("method, bits", [("mxfp", 3), ("mxfp", 2), ("baos-mxfp", 2), ("bf16", 4), ("int", 16), ("int", 5)])
def test_a_bit_width_the_layout_cannot_hold_is_a_clear_error(method: str, bits: int) -> None:
    with pytest.raises(quantizers.UnsupportedBitsError, match=f"{bits}"):
        make_cache_factory(method, bits)
    assert not METHODS[method].supports(bits)


def test_unknown_option_is_an_error_naming_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="does not take option.*'alpha'"):
        make_cache_factory("int", 4, alpha=0.5)
    with pytest.raises(ValueError, match="statistics 'always'"):
        make_cache_factory("baos-int", 4, statistics="always")


def test_static_smoothing_needs_factors_that_fit_the_model(tmp_path) -> None:
    with pytest.raises(ValueError, match="needs smoothing="):
        make_cache_factory("static-int", 4)
    wrong = StaticSmoothing((torch.ones(3, 32),), 0.5, "other", 1)
    factory = make_cache_factory("static-int", 4, smoothing=wrong)
    with pytest.raises(ValueError, match="do not fit 2 layers"):
        factory(TINY, 1, 16)
    with pytest.raises(FileNotFoundError, match="static smoothing factors not found"):
        make_cache_factory("static-int", 4, smoothing=tmp_path / "missing.json")


def test_static_smoothing_survives_a_json_round_trip_and_rejects_a_truncated_file(tmp_path) -> None:
    generator = torch.Generator().manual_seed(9)
    factors = StaticSmoothing(tuple(torch.rand(2, 32, generator=generator) + 0.5 for _ in range(2)), 0.5, "m", 7)
    path = factors.save(tmp_path / "factors.json")
    again = StaticSmoothing.load(path)
    assert all(torch.equal(a, b) for a, b in zip(factors.factors, again.factors))
    assert again.n_calibration_sequences == 7
    path.write_text(path.read_text()[:50])
    with pytest.raises(ValueError, match="not valid JSON"):
        StaticSmoothing.load(path)


# ---- quantizers use the shared arithmetic ------------------------------------------------------


def test_torch_bf16_cast_equals_the_hardware_bf16_rounding() -> None:
    x = torch.randn(4096, generator=torch.Generator().manual_seed(1)) * 10.0 ** torch.randint(-6, 6, (4096,))
    assert np.array_equal(quantizers.round_bf16(x).numpy(), numerics.round_to_format(x.numpy(), "bf16"))


def test_per_token_quantizers_match_numerics_bit_for_bit() -> None:
    x = torch.randn(2, 3, 5, 64, generator=torch.Generator().manual_seed(2))
    q = numerics.quantize_asymmetric(x.numpy(), 3, group_size=32, axis=-1)
    assert np.array_equal(quantizers.token_int(x, 3).numpy(), numerics.dequantize_groups(q))
    assert np.array_equal(quantizers.mx(x, "mxint", 4).numpy(), numerics.mx_round(x.numpy(), "mxint4", 32, axis=-1))
    assert np.array_equal(quantizers.mx(x, "mxfp", 8).numpy(), numerics.mx_round(x.numpy(), "mxfp8_e4m3", 32))
    no_clip = numerics.mx_round(x.numpy(), "mxfp4", 32, scale_rule="no_clip")
    assert np.array_equal(quantizers.mx(x, "mxfp", 4, mx_scale="no_clip").numpy(), no_clip)
    assert not np.array_equal(no_clip, numerics.mx_round(x.numpy(), "mxfp4", 32))


@pytest.mark.parametrize("method", ["mxint", "mxfp", "baos-mxint", "baos-mxfp"])
def test_mx_methods_take_the_mx_scale_rule_as_an_option(method: str) -> None:
    cache = make_cache_factory(method, 4, mx_scale="no_clip")(TINY, 1, 16)
    assert (cache.mx_scale if hasattr(cache, "mx_scale") else cache.options.mx_scale) == "no_clip"
    with pytest.raises(ValueError, match="unknown MX scale rule 'floor'"):
        make_cache_factory(method, 4, mx_scale="floor")(TINY, 1, 16)


def test_per_channel_groups_restart_every_group_of_tokens() -> None:
    x = torch.randn(1, 1, 40, 4, generator=torch.Generator().manual_seed(3))
    out = quantizers.channel_int(x, 2, group=32)
    for rows in (slice(0, 32), slice(32, 40)):
        q = numerics.quantize_asymmetric(x[:, :, rows].numpy(), 2, group_size=None, axis=-2)
        assert np.array_equal(out[:, :, rows].numpy(), numerics.dequantize_groups(q))


def test_mxint3_and_mxint2_follow_the_mx_integer_rule() -> None:
    assert numerics.get_format("mxint3").max_value == 1.5 and numerics.get_format("mxint2").max_value == 1.0
    x = np.array([[1.9, -0.7, 0.2, 1.2]], np.float32)
    assert numerics.mx_round(x, "mxint3", 4).tolist() == [[1.5, -0.5, 0.0, 1.0]]
    assert numerics.mx_round(x, "mxint2", 4).tolist() == [[1.0, -1.0, 0.0, 1.0]]


# ---- smoothing factors --------------------------------------------------------------------------


def test_pow2_factors_are_the_vsmscale_instruction() -> None:
    stats = torch.tensor([[[0.0, 0.3, 1.0, 3.0, 17.0, 300.0]]])
    for alpha, mode in ((0.25, "p2a25"), (0.5, "p2a50"), (0.75, "p2a75"), (1.0, "p2a100")):
        expected = smoothing_factor(stats.numpy(), mode)
        assert np.array_equal(smoothing_factors(stats, alpha, "pow2").numpy(), expected)
    assert torch.equal(smoothing_factors(stats, 0.0, "pow2"), torch.ones_like(stats))
    with pytest.raises(ValueError, match="alpha must be one of"):
        smoothing_factors(stats, 0.3, "pow2")


def test_fp_factors_are_built_from_the_vector_units_rsqrt() -> None:
    stats = torch.tensor([[[0.0, 0.3, 1.0, 3.0, 17.0, 300.0]]])
    root = smoothing_factors(stats, 0.5, "fp")
    assert np.array_equal(root.numpy(), smoothing_factor(stats.numpy(), "sqrt"))
    for alpha in (0.25, 0.5, 0.75, 1.0):
        expected = torch.where(stats > 0, stats.double() ** alpha, torch.ones_like(stats.double()))
        assert torch.allclose(smoothing_factors(stats, alpha, "fp").double(), expected, rtol=1e-6)


def test_rope_pairs_share_one_key_statistic() -> None:
    x = torch.zeros(1, 1, 2, 8)
    x[0, 0, 0, 1], x[0, 0, 1, 5] = 3.0, -7.0
    stats = channel_absmax(x, rope_paired=True)[0, 0]
    assert stats[1] == stats[5] == 7.0 and stats[0] == stats[4] == 0.0
    assert channel_midrange(x)[0, 0, 5] == -3.5


# ---- caches in the dLLM loop -------------------------------------------------------------------


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_decodes_in_both_cache_modes(method: str) -> None:
    model = tiny_model()
    for cache_mode in ("prefix", "dual"):
        decode = DecodeConfig(8, 4, 8, cache=cache_mode)
        bits = 16 if method == "bf16" else 4
        factory = make_cache_factory(method, bits, decode=decode, **method_options(method))
        with observe_queries(model):
            out = generate(model, prompts(2), decode, cache_factory=factory)
        assert out.tokens.shape == (2, 16) and not (out.tokens == TINY.mask_token_id).any()


def test_eight_bit_caches_read_back_within_a_few_percent() -> None:
    k = torch.randn(1, 2, 16, 32, generator=torch.Generator().manual_seed(4))
    for method in METHODS:
        if method == "bf16" or not METHODS[method].supports(8):
            continue
        options = {"criterion": "mse"} if method.startswith("baos") else method_options(method)
        cache = make_cache_factory(method, 8, **options)(TINY, 1, 16)
        cache.write(0, torch.arange(16), k, k)
        stored_k, stored_v = cache.read(0)
        for stored in (stored_k, stored_v):
            assert (stored - k).norm() < 0.05 * k.norm(), method  # E4M3 clips block maxima by <= 12.5%


def _written(cache, layer: int = 0):
    k, v = torch.randn(2, 2, 16, 32, generator=torch.Generator().manual_seed(5)).unbind(0)
    return k[None], v[None]


def test_the_current_block_stays_bf16_and_the_rest_is_quantized() -> None:
    layout = BlockLayout(gen_length=8, block_length=4)  # seq 16: prompt 8, blocks [8,12) [12,16)
    cache = make_cache_factory("int", 2, decode=layout)(TINY, 1, 16)
    k, v = _written(cache)
    cache.write(0, torch.arange(16), k, v)
    stored, _ = cache.read(0)
    assert torch.equal(stored[:, :, 8:12], quantizers.round_bf16(k[:, :, 8:12]))
    assert not torch.equal(stored[:, :, :8], quantizers.round_bf16(k[:, :, :8]))
    assert torch.equal(stored[:, :, 12:], quantizers.token_int(quantizers.round_bf16(k[:, :, 12:]), 2))
    cache.write(0, torch.arange(16), k, v)  # the second refresh: block [12, 16) is the window
    stored, _ = cache.read(0)
    assert torch.equal(stored[:, :, 12:], quantizers.round_bf16(k[:, :, 12:]))
    assert torch.equal(stored[:, :, 8:12], quantizers.token_int(quantizers.round_bf16(k[:, :, 8:12]), 2))


def test_without_a_window_every_written_row_is_quantized() -> None:
    cache = make_cache_factory("int", 2, decode=BlockLayout(8, 4), window="none")(TINY, 1, 16)
    k, v = _written(cache)
    cache.write(0, torch.arange(16), k, v)
    assert torch.equal(cache.read(0)[0], quantizers.token_int(quantizers.round_bf16(k), 2))


def test_kivi_groups_keys_per_channel_around_the_window() -> None:
    cache = KiviKVCache(TINY, 1, 16, BlockLayout(8, 4), bits=2)
    k, v = _written(cache)
    cache.write(0, torch.arange(16), k, v)
    stored_k, stored_v = cache.read(0)
    kb = quantizers.round_bf16(k)
    assert torch.equal(stored_k[:, :, :8], quantizers.channel_int(kb[:, :, :8], 2))
    assert torch.equal(stored_k[:, :, 12:], quantizers.channel_int(kb[:, :, 12:], 2))
    assert torch.equal(stored_v[:, :, :8], quantizers.token_int(quantizers.round_bf16(v[:, :, :8]), 2))


def test_caches_need_a_refresh_first_and_one_cache_per_generation() -> None:
    cache = make_cache_factory("int", 4, decode=BlockLayout(8, 4))(TINY, 1, 16)
    k, v = _written(cache)
    with pytest.raises(ValueError, match="must be a full refresh"):
        cache.write(0, torch.arange(8, 12), k[:, :, :4], v[:, :, :4])
    for _ in range(2):
        cache.write(0, torch.arange(16), k, v)
    with pytest.raises(ValueError, match="one cache per generate call"):
        cache.write(0, torch.arange(16), k, v)


def test_hadamard_rotation_is_orthonormal_and_lossless_at_high_precision() -> None:
    h = hadamard_matrix(32)
    assert torch.allclose(h @ h.T, torch.eye(32), atol=1e-6)
    with pytest.raises(ValueError, match="power-of-two head_dim"):
        hadamard_matrix(24)
    cache = HadamardKVCache(TINY, 1, 16, None, bits=8)
    k, v = _written(cache)
    cache.write(0, torch.arange(16), k, v)
    assert (cache.read(0)[0] - k).abs().max() < 0.05 * k.abs().max()


# ---- BAOS ----------------------------------------------------------------------------------------


def outlier_keys(seed: int = 6) -> torch.Tensor:
    k = torch.randn(1, 2, 16, 32, generator=torch.Generator().manual_seed(seed))
    k[..., 3] *= 40.0
    k[..., 19] *= 40.0  # channel 3's RoPE partner
    return k


def test_baos_picks_the_alpha_with_the_smallest_error_and_beats_no_smoothing() -> None:
    k = outlier_keys()
    errors = {}
    for alphas in ((0.0,), (0.25,), (0.5,), (0.75,), (0.0, 0.25, 0.5, 0.75)):
        cache = BaosKVCache(TINY, 1, 16, None, bits=3,
                            options=BaosOptions(storage="int", alphas=alphas, criterion="mse", shift=False))
        cache.write(0, torch.arange(16), k, k)
        errors[alphas] = (cache.read(0)[0] - k).pow(2).sum().item()
    assert errors[(0.0, 0.25, 0.5, 0.75)] <= min(errors[(a,)] for a in (0.0, 0.25, 0.5, 0.75)) + 1e-6
    assert errors[(0.0, 0.25, 0.5, 0.75)] < 0.5 * errors[(0.0,)]


def test_baos_attention_criterion_needs_queries() -> None:
    cache = BaosKVCache(TINY, 1, 16, None, bits=4, options=BaosOptions(storage="int"))
    k = outlier_keys()
    with pytest.raises(ValueError, match="observe_queries"):
        cache.write(0, torch.arange(16), k, k)
    cache.observe_queries(0, torch.randn(1, 2, 16, 32, generator=torch.Generator().manual_seed(8)))
    cache.write(0, torch.arange(16), k, k)


def test_baos_refresh_statistics_are_reused_by_later_steps_and_renewed_per_block() -> None:
    options = BaosOptions(storage="int", criterion="mse")
    cache = BaosKVCache(TINY, 1, 16, BlockLayout(8, 4), bits=4, options=options, window="none")
    k = outlier_keys()
    cache.write(0, torch.arange(16), k, k)
    first = cache.transforms["key"][0]
    cache.write(0, torch.arange(8, 12), k[:, :, 8:12] * 3, k[:, :, 8:12])
    assert cache.transforms["key"][0] is first
    cache.write(0, torch.arange(16), k * 2, k)
    assert cache.transforms["key"][0] is not first
    frozen = BaosKVCache(TINY, 1, 16, BlockLayout(8, 4), bits=4, window="none",
                         options=BaosOptions(storage="int", criterion="mse", adaptation="first"))
    frozen.write(0, torch.arange(16), k, k)
    kept = frozen.transforms["key"][0]
    frozen.write(0, torch.arange(16), k * 2, k)
    assert frozen.transforms["key"][0] is kept


def test_the_key_shift_leaves_attention_unchanged() -> None:
    """softmax(q . (k - z)) == softmax(q . k): the shift needs no correction for keys."""
    q = torch.randn(4, 32, generator=torch.Generator().manual_seed(7), dtype=torch.float64) / 10
    k = outlier_keys()[0, 0].double()
    z = channel_midrange(k[None, None])[0, 0]
    assert torch.allclose((q @ (k - z).T).softmax(-1), (q @ k.T).softmax(-1), atol=1e-12)


# ---- storage ------------------------------------------------------------------------------------


def test_kv_bytes_per_token_of_llada_8b() -> None:
    assert kv_bytes_per_token("bf16", 16, LLADA_8B) == 512 * 1024
    assert kv_bytes_per_token("mxint", 4, LLADA_8B) == 2 * 32 * 32 * 128 * 4.25 / 8
    assert kv_bytes_per_token("baos-mxint", 4, LLADA_8B) == kv_bytes_per_token("mxint", 4, LLADA_8B)
    assert kv_bytes_per_token("int", 2, LLADA_8B) == 2 * 32 * 32 * 128 * 3 / 8
    assert kv_bytes_per_token("kivi", 3, LLADA_8B) == kv_bytes_per_token("int", 3, LLADA_8B)
    extra = 32 * (512 * 1024 - kv_bytes_per_token("kivi", 4, LLADA_8B))
    assert math.isclose(kv_cache_bytes("kivi", 4, LLADA_8B, 1024, 32),
                        1024 * kv_bytes_per_token("kivi", 4, LLADA_8B) + extra)
    with pytest.raises(ValueError, match="cannot store 3-bit"):
        kv_bytes_per_token("mxfp", 3, LLADA_8B)


def test_a_plain_kv_cache_and_the_bf16_method_agree_on_a_trained_shape() -> None:
    model, p = tiny_model(1), prompts(4)
    plain = generate(model, p, DECODE, cache_factory=lambda c, b, n: KVCache(c, b, n)).tokens
    bf16 = generate(model, p, DECODE, cache_factory=make_cache_factory("bf16", 16, decode=DECODE)).tokens
    assert torch.equal(plain, bf16)
