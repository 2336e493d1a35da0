"""The hand-written kernels compute exactly what the compiler computes and closely the model's maths.

Every kernel runs on the functional simulator (strict mode: no read of unwritten SRAM) on all
three presets. "Bit-exact" compares GEMM and RMSNorm with the compiler's references
(npu.compiler.linear.reference_gemm, npu.compiler.vector_ops.reference_rmsnorm: what the compiled
programs compute bit for bit, tests/test_compiler.py), softmax and the sampling pass with
npu.kernels.reference (which the compiler's LM-head epilogue must also equal,
tests/test_compiler_temperature.py); "close" compares with float64 / torch with first-order error
bounds in the bf16 unit roundoff U = 2^-8 (vector SRAM holds bf16 on every preset).
The sampling pass is checked against npu.models.decoding: x0 against torch.argmax, the
confidence against token_confidence, commits and tokens against commit_mask + commit_tokens.
"""

import math

import numpy as np
import pytest
import torch

from npu.compiler.linear import reference_gemm
from npu.compiler.vector_ops import reference_rmsnorm
from npu.hw import numerics
from npu.hw.config import load_npu_config
from npu.hw.rows import dequantized_weights
from npu.isa.encoding import decode
from npu.kernels import reference
from npu.kernels.dense import run_gemm, run_rmsnorm, run_softmax
from npu.kernels.sampling import run_sampling_pass, run_token_confidence, sampling_layout, sampling_program
from npu.models.decoding import (
    commit_mask,
    commit_tokens,
    forbid_mask_token,
    gumbel_noise,
    token_confidence,
    transfer_schedule,
)
from npu.models.transformer import RMSNorm

PRESETS = ("dnpu-cloud", "dnpu-edge", "ar-npu")
CONFIGS = {name: load_npu_config(name) for name in PRESETS}
U = 2.0**-8          # bf16 unit roundoff (8 significant bits)
FP32_EPS = 2.0**-24  # fp32 unit roundoff
LLADA_VOCAB, LLADA_MASK = 126464, 126336
SMALL_VOCAB = 1024   # reduced vocabulary of the default tests (16 chunks of 64)
DLLM_MNEMONICS = {"vargmax", "vrank", "vtopk", "vthresh", "vsel", "vseli"}


def bf16(x) -> np.ndarray:
    return numerics.round_to_format(np.asarray(x, dtype=np.float32), "bf16")


def peaked_logits(rng: np.random.Generator, positions: int, vocab: int) -> np.ndarray:
    """bf16 logits with one peak per position, its height set for a chosen confidence.

    Background N(-4, 1); the target confidences are spread log-uniformly over [0.01, 0.95] and
    shuffled, so ranking them means something and few of them crowd near 1.
    """
    logits = rng.standard_normal((positions, vocab)) - 4.0
    rows, peaks = np.arange(positions), rng.integers(0, vocab, positions)
    rest = np.exp(logits).sum(axis=1) - np.exp(logits[rows, peaks])
    target = rng.permutation(np.geomspace(0.01, 0.95, positions))
    logits[rows, peaks] = np.log(target / (1 - target) * rest)
    return bf16(logits)


def confidence_error_bound(logits: np.ndarray, vlen: int) -> np.ndarray:
    """First-order relative error of the kernel's confidence, per row.

    Each exp(l - M) is off by U (output rounding) plus U * |l - M| (its input rounded to bf16);
    weighted by the softmax that is U * (1 + E_p|l - M|). The fp32 sums add one rounding per
    chunk and per tree level, the scalar exp / reciprocal a few fp32 ulps.
    """
    x = logits.astype(np.float64)
    finite = np.isfinite(x)
    peak = np.where(finite, x, -np.inf).max(axis=1, keepdims=True)
    weights = np.where(finite, np.exp(np.where(finite, x - peak, 0.0)), 0.0)
    spread = (weights * np.where(finite, peak - x, 0.0)).sum(axis=1) / weights.sum(axis=1)
    chunks = x.shape[1] // vlen
    return U * (1 + spread) + (chunks + math.log2(vlen) + 8) * FP32_EPS


# ---- GEMM --------------------------------------------------------------------------------------

def loaded(x: np.ndarray, config) -> np.ndarray:
    """Activations as a kernel reads them: stored in DRAM's activation format, loaded into vector SRAM."""
    return reference.round_vector(reference.activations_in_dram(x, config), config)


def stored(y: np.ndarray, config) -> np.ndarray:
    """A vector-SRAM result as the kernel stores it to DRAM."""
    return reference.activations_in_dram(reference.round_vector(y, config), config)


@pytest.mark.parametrize("preset", PRESETS)
def test_gemm_is_bit_exact_with_the_tiled_reference_and_close_to_float64(preset):
    config = CONFIGS[preset]
    rng = np.random.default_rng(1)
    m, k, n = 2 * config.blen, 3 * config.mlen, 2 * config.mlen
    x = bf16(rng.standard_normal((m, k)))
    w = (rng.standard_normal((k, n)) * 0.05).astype(np.float32)
    result = run_gemm(config, x, w)
    expected = stored(reference_gemm(loaded(x, config), dequantized_weights(w, config), config.mlen), config)
    assert np.array_equal(result.output, expected)
    # float64 product of the same operands (weights as the DMA dequantised them):
    # the output rounding U plus fp32 accumulation over k products and k / MLEN tile sums
    wq = dequantized_weights(w, config).astype(np.float64)
    exact = x.astype(np.float64) @ wq
    magnitude = np.abs(x.astype(np.float64)) @ np.abs(wq)
    bound = U * np.abs(exact) + (k + k // config.mlen + 2) * FP32_EPS * magnitude * (1 + U)
    assert (np.abs(result.output - exact) <= bound).all()
    assert result.run.stats.macs == (m // config.blen) * (n // config.mlen) * (k // config.mlen) \
        * config.blen * config.mlen * config.mlen


def test_gemm_rejects_shapes_off_the_tile_grid():
    config = CONFIGS["dnpu-edge"]
    with pytest.raises(ValueError, match=f"M % {config.blen} == 0 and K, N % {config.mlen} == 0"):
        run_gemm(config, np.zeros((config.blen, 96)), np.zeros((96, config.mlen)))


# ---- softmax and RMSNorm -----------------------------------------------------------------------

@pytest.mark.parametrize("preset", PRESETS)
def test_softmax_rows_are_bit_exact_and_within_first_order_error_of_torch(preset):
    config = CONFIGS[preset]
    rng = np.random.default_rng(2)
    x = bf16(np.concatenate([rng.standard_normal((3, 512)) * 3,
                             rng.standard_normal((1, 512)) - 200.0]))  # all-negative row
    result = run_softmax(config, x)
    assert np.array_equal(result.output, reference.softmax_reference(x, config))
    exact = torch.softmax(torch.from_numpy(x).double(), dim=-1).numpy()
    gap = x.max(axis=1, keepdims=True) - x.astype(np.float64)
    mean_gap = (exact * gap).sum(axis=1, keepdims=True)
    # exp input and output, the final scale and the sum: U * (3 + |x - m| + E_p|x - m|)
    bound = (U * (3 + gap + mean_gap) + 16 * FP32_EPS) * exact
    assert (np.abs(result.output - exact) <= bound).all()
    assert (np.abs(result.output - exact) <= 2**-7 * exact.max(axis=1, keepdims=True)).all()


@pytest.mark.parametrize("preset", PRESETS)
def test_rmsnorm_rows_are_bit_exact_and_within_two_roundings_of_the_model(preset):
    config = CONFIGS[preset]
    rng = np.random.default_rng(3)
    x = bf16(rng.standard_normal((4, 256)) * 2)
    weight = bf16(1 + 0.1 * rng.standard_normal(256))
    result = run_rmsnorm(config, x, weight, eps=1e-5)
    vector = lambda v: reference.round_vector(v, config)  # noqa: E731 - the vector unit's rounding
    expected = reference.activations_in_dram(
        reference_rmsnorm(loaded(x, config), loaded(weight, config), 1e-5, vector, config.vlen), config)
    assert np.array_equal(result.output, expected)
    norm = RMSNorm(256, eps=1e-5)
    norm.weight.data = torch.from_numpy(weight)
    model = norm(torch.from_numpy(x)).detach().numpy()
    # (x * r) and (.. * w) are rounded to bf16; r inherits half the error of the bf16 squares
    bound = (2.5 * U + 256 * FP32_EPS + 2**-21) * np.abs(model)
    assert (np.abs(result.output - model) <= bound).all()


# ---- argmax + confidence ------------------------------------------------------------------------

def special_rows(vocab: int) -> np.ndarray:
    """Rows that break naive argmax kernels: all negative, tied maxima, maximum in the last lane."""
    rows = bf16(np.random.default_rng(4).standard_normal((4, vocab)))
    rows[0] -= 50.0                                  # every logit negative: the max must start at -inf
    rows[1, [vocab - 1, 700, 70, vocab // 2]] = 9.0  # ties across tiles: the lowest index wins
    rows[2, 63] = rows[2, 64] = 7.5                  # tie across a chunk border
    rows[3, vocab - 1] = 6.0                         # maximum in the very last lane
    return bf16(rows)


@pytest.mark.parametrize("preset", PRESETS)
def test_confidence_equals_torch_argmax_and_is_within_error_of_token_confidence(preset):
    config = CONFIGS[preset]
    logits = np.concatenate([special_rows(SMALL_VOCAB), peaked_logits(np.random.default_rng(5), 4, SMALL_VOCAB)])
    result = run_token_confidence(config, logits, tile_chunks=4)
    x0, confidence = reference.confidence_reference(logits, config, tile_chunks=4)
    assert np.array_equal(result.x0, x0) and np.array_equal(result.confidence, confidence)
    torch_x0, torch_confidence = token_confidence(torch.from_numpy(logits))
    assert result.x0.tolist() == torch_x0.tolist()
    assert result.x0[1] == 70 and result.x0[2] == 63
    relative = np.abs(result.confidence / torch_confidence.numpy() - 1)
    assert (relative <= confidence_error_bound(logits, config.vlen)).all()


@pytest.mark.parametrize("preset", PRESETS)
def test_full_vocabulary_confidence_streams_the_logits_once_and_never_proposes_mask(preset):
    config = CONFIGS[preset]
    rng = np.random.default_rng(6)
    logits = bf16(rng.standard_normal((1, LLADA_VOCAB)) * 3)
    logits[0, LLADA_MASK] = 40.0  # the largest logit, but [MASK] is forbidden
    result = run_token_confidence(config, logits, forbid_id=LLADA_MASK)
    x0, confidence = reference.confidence_reference(logits, config, tile_chunks=52, forbid_id=LLADA_MASK)
    assert np.array_equal(result.x0, x0) and np.array_equal(result.confidence, confidence)
    forbidden = forbid_mask_token(torch.from_numpy(logits), LLADA_MASK)
    torch_x0, torch_confidence = token_confidence(forbidden)
    assert result.x0.tolist() == torch_x0.tolist() and result.x0[0] != LLADA_MASK
    bound = confidence_error_bound(forbidden.numpy(), config.vlen)
    assert abs(result.confidence[0] / torch_confidence[0].item() - 1) <= bound[0]
    # one pass: every logit crosses the DRAM interface exactly once
    assert result.run.stats.bytes_moved["dram_read"] == LLADA_VOCAB * 2


def gumbel_case(positions: int, vocab: int, seed: int, temperature: float):
    """Logits, Gumbel noise from a seeded generator, and torch's token_confidence on the same draws."""
    logits = peaked_logits(np.random.default_rng(seed), positions, vocab) * np.float32(0.5)
    noise = gumbel_noise(logits.shape, torch.Generator().manual_seed(seed))
    torch_x0, torch_confidence = token_confidence(torch.from_numpy(logits), temperature,
                                                  torch.Generator().manual_seed(seed))
    return logits, noise, torch_x0.numpy(), torch_confidence.numpy()


def robust_positions(logits, noise, temperature) -> np.ndarray:
    """Positions whose float64 Gumbel winner beats every rival by more than both rounding errors.

    On chip l + T * g is formed in bf16 (g, T * g and the sum each rounded), so a value is off
    by at most U * (2 |T g| + |l + T g|); where the winner's margin exceeds the two errors, the
    chip must pick the same token as LLaDA's float64 computation.
    """
    scaled = temperature * noise.astype(np.float64)
    exact = logits.astype(np.float64) + scaled
    error = np.where(np.isfinite(exact), U * (2 * np.abs(scaled) + np.abs(exact)) * (1 + 2 * U), 0.0)
    winner = exact.argmax(axis=1)
    rows = np.arange(len(exact))
    margin = exact[rows, winner][:, None] - exact - error[rows, winner][:, None] - error
    margin[rows, winner] = np.inf
    return (margin > 0).all(axis=1)


@pytest.mark.parametrize("preset", PRESETS)
def test_temperature_sampling_adds_gumbel_noise_before_the_argmax(preset):
    config = CONFIGS[preset]
    temperature = 0.8
    logits, noise, torch_x0, torch_confidence = gumbel_case(16, SMALL_VOCAB, seed=7, temperature=temperature)
    result = run_token_confidence(config, logits, temperature=temperature, noise=noise, tile_chunks=4)
    x0, confidence = reference.confidence_reference(logits, config, 4, temperature, noise)
    assert np.array_equal(result.x0, x0) and np.array_equal(result.confidence, confidence)
    robust = robust_positions(logits, noise, temperature)
    assert robust.sum() >= 8
    assert (result.x0[robust] == torch_x0[robust]).all()
    assert (result.x0 != logits.argmax(axis=1)).any()  # the noise did change some proposals
    agree = result.x0 == torch_x0
    relative = np.abs(result.confidence[agree] / torch_confidence[agree] - 1)
    assert (relative <= confidence_error_bound(logits[agree], config.vlen)).all()


# ---- the sampling pass: argmax + confidence, then commit ----------------------------------------

def block_tokens(rng: np.random.Generator, positions: int, mask_id: int, masked_fraction: float) -> np.ndarray:
    """A block where some positions are already decoded (ids < mask_id) and the rest are [MASK]."""
    tokens = rng.integers(0, mask_id, positions)
    tokens[rng.random(positions) < masked_fraction] = mask_id
    return tokens


def expected_commit(confidence, tokens, x0, mask_id, k=None, threshold=None):
    """commit_mask + commit_tokens of the PyTorch reference on one block."""
    eligible = torch.from_numpy(tokens == mask_id)[None]
    commit = commit_mask(torch.from_numpy(np.asarray(confidence, dtype=np.float32))[None], eligible,
                         k=k, threshold=threshold)
    new_tokens = commit_tokens(torch.from_numpy(tokens)[None], torch.from_numpy(x0)[None], commit)
    return commit[0].numpy(), new_tokens[0].numpy()


def order_survives_rounding(confidence, kernel_confidence, eligible, k=None, threshold=None) -> bool:
    """Whether ranking the kernel's bf16 confidences must reproduce the order torch's fp32 ones give.

    Rounding is monotonic, so two confidences keep their order unless they come within one bf16
    ulp (relative 2U) plus the kernel's own error of each other. Only the order across the
    top-k boundary (or against the threshold) decides the commit.
    """
    error = float(np.max(np.abs(kernel_confidence / confidence - 1)))
    ranked = np.sort(confidence[eligible])[::-1]
    if threshold is not None:
        return bool((np.abs(ranked / threshold - 1) > U + error).all())
    if k == 0 or k >= len(ranked):
        return True
    return bool((ranked[k - 1] - ranked[k]) / ranked[k - 1] > 2 * U + 2 * error)


@pytest.mark.parametrize("positions", [32, 128])
@pytest.mark.parametrize("preset", PRESETS)
def test_top_k_sampling_pass_commits_exactly_what_commit_mask_commits(preset, positions):
    config = CONFIGS[preset]
    rng = np.random.default_rng(positions)
    mask_id = SMALL_VOCAB - 1
    logits = peaked_logits(rng, positions, SMALL_VOCAB)
    tokens = block_tokens(rng, positions, mask_id, masked_fraction=0.75)
    masks = int((tokens == mask_id).sum())
    k = int(transfer_schedule(torch.tensor([masks]), steps=4)[0, 0])
    result = run_sampling_pass(config, logits, tokens, mask_id, k=k, forbid_id=mask_id, tile_chunks=4)

    forbidden = forbid_mask_token(torch.from_numpy(logits), mask_id)
    torch_x0, torch_confidence = token_confidence(forbidden)
    assert result.x0.tolist() == torch_x0.tolist()
    commit, new_tokens = expected_commit(result.rule_confidence, tokens, result.x0, mask_id, k=k)
    assert result.commit.tolist() == commit.tolist() and result.tokens.tolist() == new_tokens.tolist()
    assert result.commit.sum() == k
    # with torch's own confidences: the same commits wherever rounding cannot reorder the boundary
    assert order_survives_rounding(torch_confidence.numpy(), result.confidence, tokens == mask_id, k=k)
    commit, new_tokens = expected_commit(torch_confidence.numpy(), tokens, torch_x0.numpy(), mask_id, k=k)
    assert result.commit.tolist() == commit.tolist() and result.tokens.tolist() == new_tokens.tolist()


@pytest.mark.parametrize("positions", [32, 128])
@pytest.mark.parametrize("preset", PRESETS)
def test_threshold_sampling_pass_commits_confident_positions_and_at_least_one(preset, positions):
    config = CONFIGS[preset]
    rng = np.random.default_rng(100 + positions)
    mask_id = SMALL_VOCAB - 1
    logits = peaked_logits(rng, positions, SMALL_VOCAB)
    tokens = block_tokens(rng, positions, mask_id, masked_fraction=0.6)
    for tau in (0.9, 0.9999):  # some positions pass; none passes (the best one commits alone)
        result = run_sampling_pass(config, logits, tokens, mask_id, threshold=tau, tile_chunks=4)
        commit, new_tokens = expected_commit(result.rule_confidence, tokens, result.x0, mask_id, threshold=tau)
        assert result.commit.tolist() == commit.tolist() and result.tokens.tolist() == new_tokens.tolist()
        torch_x0, torch_confidence = token_confidence(torch.from_numpy(logits))
        eligible_confidence = torch_confidence.numpy()[tokens == mask_id]
        assert order_survives_rounding(torch_confidence.numpy(), result.confidence, tokens == mask_id,
                                       threshold=tau)
        commit, new_tokens = expected_commit(torch_confidence.numpy(), tokens, torch_x0.numpy(), mask_id,
                                             threshold=tau)
        assert result.commit.tolist() == commit.tolist() and result.tokens.tolist() == new_tokens.tolist()
        assert result.commit.sum() == max(1, (eligible_confidence >= tau).sum())
    assert (eligible_confidence >= 0.9).any()  # the first threshold did let several through


@pytest.mark.parametrize("preset", PRESETS)
def test_equal_confidences_commit_the_lowest_positions_first(preset):
    config = CONFIGS[preset]
    rng = np.random.default_rng(9)
    mask_id = SMALL_VOCAB - 1
    logits = peaked_logits(rng, 32, SMALL_VOCAB)
    strong = bf16(rng.standard_normal(SMALL_VOCAB))
    strong[17] = 14.0                    # confidence 0.999, above every other row's
    logits[[5, 9, 20, 30]] = strong      # four identical rows, the most confident of the block
    tokens = np.full(32, mask_id)
    tokens[9] = 3                        # already decoded: not eligible
    result = run_sampling_pass(config, logits, tokens, mask_id, k=2, tile_chunks=4)
    assert result.commit.nonzero()[0].tolist() == [5, 20]
    assert result.tokens[[5, 20]].tolist() == [17, 17]
    torch_x0, torch_confidence = token_confidence(torch.from_numpy(logits))
    commit, new_tokens = expected_commit(torch_confidence.numpy(), tokens, torch_x0.numpy(), mask_id, k=2)
    assert result.commit.tolist() == commit.tolist() and result.tokens.tolist() == new_tokens.tolist()


@pytest.mark.parametrize("preset", PRESETS)
def test_sampling_pass_with_temperature_commits_like_the_reference(preset):
    config = CONFIGS[preset]
    temperature = 0.7
    mask_id = SMALL_VOCAB - 1
    logits, noise, torch_x0, _ = gumbel_case(32, SMALL_VOCAB, seed=11, temperature=temperature)
    tokens = block_tokens(np.random.default_rng(11), 32, mask_id, masked_fraction=0.8)
    result = run_sampling_pass(config, logits, tokens, mask_id, k=5, temperature=temperature, noise=noise,
                               forbid_id=mask_id, tile_chunks=4)
    x0, confidence = reference.confidence_reference(logits, config, 4, temperature, noise, forbid_id=mask_id)
    assert np.array_equal(result.x0, x0) and np.array_equal(result.confidence, confidence)
    commit, new_tokens = expected_commit(result.rule_confidence, tokens, result.x0, mask_id, k=5)
    assert result.commit.tolist() == commit.tolist() and result.tokens.tolist() == new_tokens.tolist()
    robust = robust_positions(np.asarray(forbid_mask_token(torch.from_numpy(logits), mask_id)), noise, temperature)
    assert robust.sum() >= 16 and (result.x0[robust] == torch_x0[robust]).all()


def test_dllm_and_generic_lowerings_give_identical_results():
    """dnpu-cloud and ar-npu are one machine with and without the dLLM instructions (the
    reductions' order follows VLEN, so machines of other widths may round differently)."""
    rng = np.random.default_rng(12)
    mask_id = SMALL_VOCAB - 1
    logits = peaked_logits(rng, 96, SMALL_VOCAB)
    tokens = block_tokens(rng, 96, mask_id, masked_fraction=0.5)
    runs = {name: run_sampling_pass(CONFIGS[name], logits, tokens, mask_id, threshold=0.6, tile_chunks=8)
            for name in ("dnpu-cloud", "ar-npu")}
    first = runs["dnpu-cloud"]
    for result in runs.values():
        assert np.array_equal(result.x0, first.x0) and np.array_equal(result.confidence, first.confidence)
        assert np.array_equal(result.commit, first.commit) and np.array_equal(result.tokens, first.tokens)


@pytest.mark.parametrize("preset", PRESETS)
def test_sampling_program_uses_dllm_instructions_only_where_the_machine_has_them(preset):
    config = CONFIGS[preset]
    for positions in (32, 128):
        program = sampling_program(config, sampling_layout(config, positions, LLADA_VOCAB, temperature=1.0,
                                                           commit=True, threshold=0.9))
        listed = {decode(int(word)).mnemonic for word in program.words}
        if config.dllm_instructions:
            assert DLLM_MNEMONICS <= listed
        else:
            assert not listed & DLLM_MNEMONICS


def test_sampling_pass_needs_exactly_one_rule():
    config = CONFIGS["dnpu-edge"]
    with pytest.raises(ValueError, match="exactly one"):
        run_sampling_pass(config, np.zeros((2, 64)), np.zeros(2), 63, k=1, threshold=0.5)


# ---- full vocabulary, whole blocks (slow) --------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_full_vocabulary_sampling_pass_of_a_32_position_block(preset):
    config = CONFIGS[preset]
    rng = np.random.default_rng(14)
    logits = peaked_logits(rng, 32, LLADA_VOCAB)
    logits[3, LLADA_MASK] = 30.0
    tokens = block_tokens(rng, 32, LLADA_MASK, masked_fraction=0.75)
    k = int(transfer_schedule(torch.tensor([int((tokens == LLADA_MASK).sum())]), steps=4)[0, 0])
    result = run_sampling_pass(config, logits, tokens, LLADA_MASK, k=k, forbid_id=LLADA_MASK)
    x0, confidence = reference.confidence_reference(logits, config, 52, forbid_id=LLADA_MASK)
    assert np.array_equal(result.x0, x0) and np.array_equal(result.confidence, confidence)
    forbidden = forbid_mask_token(torch.from_numpy(logits), LLADA_MASK)
    torch_x0, torch_confidence = token_confidence(forbidden)
    assert result.x0.tolist() == torch_x0.tolist()
    relative = np.abs(result.confidence / torch_confidence.numpy() - 1)
    assert (relative <= confidence_error_bound(forbidden.numpy(), config.vlen)).all()
    commit, new_tokens = expected_commit(result.rule_confidence, tokens, result.x0, LLADA_MASK, k=k)
    assert result.commit.tolist() == commit.tolist() and result.tokens.tolist() == new_tokens.tolist()
    commit, new_tokens = expected_commit(torch_confidence.numpy(), tokens, torch_x0.numpy(), LLADA_MASK, k=k)
    assert result.commit.tolist() == commit.tolist() and result.tokens.tolist() == new_tokens.tolist()
    assert result.run.stats.bytes_moved["dram_read"] == 32 * LLADA_VOCAB * 2 + 32 * 4


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_full_vocabulary_sampling_pass_with_temperature(preset):
    config = CONFIGS[preset]
    temperature = 1.0
    logits, noise, torch_x0, _ = gumbel_case(32, LLADA_VOCAB, seed=15, temperature=temperature)
    tokens = np.full(32, LLADA_MASK)
    result = run_sampling_pass(config, logits, tokens, LLADA_MASK, k=4, temperature=temperature, noise=noise)
    x0, confidence = reference.confidence_reference(logits, config, 52, temperature, noise)
    assert np.array_equal(result.x0, x0) and np.array_equal(result.confidence, confidence)
    robust = robust_positions(logits, noise, temperature)
    assert robust.sum() >= 16 and (result.x0[robust] == torch_x0[robust]).all()
    commit, new_tokens = expected_commit(result.rule_confidence, tokens, result.x0, LLADA_MASK, k=4)
    assert result.commit.tolist() == commit.tolist() and result.tokens.tolist() == new_tokens.tolist()


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["dnpu-cloud", "ar-npu"])
def test_full_vocabulary_sampling_pass_of_a_128_position_block(preset):
    config = CONFIGS[preset]
    rng = np.random.default_rng(16)
    logits = peaked_logits(rng, 128, LLADA_VOCAB)
    tokens = block_tokens(rng, 128, LLADA_MASK, masked_fraction=0.9)
    result = run_sampling_pass(config, logits, tokens, LLADA_MASK, threshold=0.9, forbid_id=LLADA_MASK)
    forbidden = forbid_mask_token(torch.from_numpy(logits), LLADA_MASK)
    torch_x0, _ = token_confidence(forbidden)
    assert result.x0.tolist() == torch_x0.tolist()
    commit, new_tokens = expected_commit(result.rule_confidence, tokens, result.x0, LLADA_MASK, threshold=0.9)
    assert result.commit.tolist() == commit.tolist() and result.tokens.tolist() == new_tokens.tolist()
