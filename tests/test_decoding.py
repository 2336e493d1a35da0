"""Block-diffusion decoding: the sampling pass, the schedules and the three cache modes."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from npu.models.decoding import (
    DecodeConfig,
    GenerationResult,
    add_gumbel_noise,
    commit_mask,
    commit_tokens,
    forbid_mask_token,
    generate,
    token_confidence,
    transfer_schedule,
)
from npu.models.transformer import KVCache, ModelConfig, build_model

TINY = ModelConfig(
    name="tiny-decode",
    vocab_size=24,
    mask_token_id=23,
    n_layers=2,
    d_model=32,
    n_heads=4,
    n_kv_heads=2,
    head_dim=8,
    d_ff=64,
    max_seq_len=64,
)
PROMPT_LEN = 6


@pytest.fixture(scope="module")
def model():
    """Random weights, scaled so logits are peaky (lm_head) and depend on the context
    (sharper attention, stronger residual branches): decoding is then not degenerate."""
    net = build_model(TINY).init_weights(seed=0)
    with torch.no_grad():
        net.lm_head.weight.mul_(40.0)
        for block in net.blocks:
            block.attn.q_proj.weight.mul_(16.0)
            block.attn.k_proj.weight.mul_(16.0)
            block.attn.o_proj.weight.mul_(20.0)
            block.mlp.down_proj.weight.mul_(20.0)
    return net.eval()


@pytest.fixture(scope="module")
def prompt():
    generator = torch.Generator().manual_seed(1)
    return torch.randint(0, TINY.mask_token_id, (2, PROMPT_LEN), generator=generator)


def llada_get_num_transfer_tokens(mask_index: torch.Tensor, steps: int) -> torch.Tensor:
    """LLaDA's generate.py schedule, written out as there (per-row loop)."""
    mask_num = mask_index.sum(dim=1, keepdim=True)
    base = mask_num // steps
    remainder = mask_num % steps
    num = torch.zeros(mask_num.size(0), steps, dtype=torch.int64) + base
    for i in range(mask_num.size(0)):
        num[i, : remainder[i]] += 1
    return num


def state_before(result: GenerationResult, index: int, initial: torch.Tensor) -> torch.Tensor:
    return initial if index == 0 else result.records[index - 1].tokens


def initial_tokens(prompt: torch.Tensor, config: DecodeConfig) -> torch.Tensor:
    masks = torch.full((prompt.shape[0], config.gen_length), TINY.mask_token_id)
    return torch.cat([prompt, masks], dim=1)


# --- schedule and sampling pass -------------------------------------------------------------


def test_transfer_schedule_matches_llada_get_num_transfer_tokens():
    assert transfer_schedule(torch.tensor([10]), 4).tolist() == [[3, 3, 2, 2]]
    assert transfer_schedule(torch.tensor([8, 5]), 3).tolist() == [[3, 3, 2], [2, 2, 1]]
    assert transfer_schedule(torch.tensor([2]), 4).tolist() == [[1, 1, 0, 0]]
    for length in range(1, 20):
        for steps in range(1, 9):
            counts = torch.arange(length + 1)
            mask_index = torch.arange(length)[None, :] < counts[:, None]
            expected = llada_get_num_transfer_tokens(mask_index, steps)
            assert torch.equal(transfer_schedule(counts, steps), expected)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_top_k_commits_the_k_best_eligible_positions_ties_to_lowest_position(data):
    length = data.draw(st.integers(1, 12))
    levels = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])  # few values: many ties
    confidence = torch.tensor([data.draw(st.lists(levels, min_size=length, max_size=length))])
    eligible = torch.tensor([data.draw(st.lists(st.booleans(), min_size=length, max_size=length))])
    k = data.draw(st.integers(0, int(eligible.sum())))
    commit = commit_mask(confidence, eligible, k=torch.tensor([k]))
    # Reference: order eligible positions by (confidence descending, position ascending).
    order = sorted((i for i in range(length) if eligible[0, i]), key=lambda i: (-confidence[0, i].item(), i))
    expected = torch.zeros(1, length, dtype=torch.bool)
    expected[0, order[:k]] = True
    assert torch.equal(commit, expected)


def test_top_k_breaks_ties_by_lowest_position():
    confidence = torch.tensor([[0.5, 0.9, 0.5, 0.5, 0.9], [0.2, 0.2, 0.2, 0.2, 0.2]])
    eligible = torch.tensor([[True, False, True, True, True], [False, True, True, True, True]])
    commit = commit_mask(confidence, eligible, k=torch.tensor([3, 2]))
    assert commit.tolist() == [
        [True, False, True, False, True],
        [False, True, True, False, False],
    ]


def test_threshold_rule_commits_all_confident_and_at_least_the_best():
    confidence = torch.tensor([[0.95, 0.3, 0.91, 0.99], [0.4, 0.6, 0.6, 0.1], [0.99, 0.99, 0.2, 0.3]])
    eligible = torch.tensor([[True, True, True, False], [True, True, True, True], [False, False, True, True]])
    commit = commit_mask(confidence, eligible, threshold=0.9)
    assert commit.tolist() == [
        [True, False, True, False],  # all eligible >= 0.9; the ineligible 0.99 stays
        [False, True, False, False],  # none passes: only the best, lowest position on the tie
        [False, False, False, True],  # none passes: best eligible even if ineligible ones are higher
    ]
    nothing = commit_mask(confidence, torch.zeros_like(eligible), threshold=0.9)
    assert not nothing.any()


def test_commit_mask_rejects_bad_arguments():
    confidence = torch.rand(2, 4)
    eligible = torch.tensor([[True, True, False, False], [True, True, True, True]])
    with pytest.raises(ValueError, match="exactly one of k"):
        commit_mask(confidence, eligible)
    with pytest.raises(ValueError, match="exactly one of k"):
        commit_mask(confidence, eligible, k=torch.tensor([1, 1]), threshold=0.5)
    with pytest.raises(ValueError, match="eligible count"):
        commit_mask(confidence, eligible, k=torch.tensor([3, 1]))
    with pytest.raises(ValueError, match="NaN"):
        commit_mask(torch.full((2, 4), math.nan), eligible, k=1)


def test_mask_token_is_never_proposed(prompt):
    logits = torch.zeros(1, 3, 24)
    logits[..., TINY.mask_token_id] = 5.0
    x0, confidence = token_confidence(forbid_mask_token(logits, TINY.mask_token_id))
    assert x0.tolist() == [[0, 0, 0]]  # the tie among the rest goes to the lowest id
    torch.testing.assert_close(confidence, torch.full((1, 3), 1 / 23))
    assert logits[0, 0, TINY.mask_token_id] == 5.0  # the input is left alone

    # A model that prefers [MASK] everywhere still fills the whole answer.
    stubborn = build_model(TINY).init_weights(seed=0)
    with torch.no_grad():
        stubborn.lm_head.weight.zero_()
        stubborn.lm_head.weight[TINY.mask_token_id] = 1.0
    result = generate(stubborn, prompt, DecodeConfig(8, 4, 4, cache="dual"))
    assert not (result.tokens == TINY.mask_token_id).any()


def test_commit_tokens_is_a_masked_select():
    tokens = torch.tensor([[5, 23, 23, 7]])
    x0 = torch.tensor([[1, 2, 3, 4]])
    commit = torch.tensor([[False, True, False, False]])
    assert commit_tokens(tokens, x0, commit).tolist() == [[5, 2, 23, 7]]


def test_token_confidence_is_the_softmax_probability_of_the_argmax():
    logits = torch.randn(3, 5, 24, generator=torch.Generator().manual_seed(0)) * 4
    logits[0, 0] = -50.0  # all-negative row: confidence still 1 / vocab
    x0, confidence = token_confidence(logits)
    assert torch.equal(x0, logits.argmax(dim=-1))
    expected = logits.softmax(dim=-1).gather(-1, x0[..., None]).squeeze(-1)
    assert confidence.dtype == torch.float32
    torch.testing.assert_close(confidence, expected, rtol=1e-6, atol=0)
    assert confidence[0, 0].item() == pytest.approx(1 / 24)


def test_token_confidence_with_temperature_is_llada_gumbel_argmax():
    logits = torch.randn(2, 7, 24, generator=torch.Generator().manual_seed(0))
    x0, confidence = token_confidence(logits, 1.5, torch.Generator().manual_seed(9))
    noise = torch.rand(logits.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    expected = (logits.double().exp() / (-torch.log(noise)) ** 1.5).argmax(dim=-1)
    assert torch.equal(x0, expected)
    assert not torch.equal(x0, logits.argmax(dim=-1))  # the noise does change choices here
    torch.testing.assert_close(confidence, logits.softmax(-1).gather(-1, x0[..., None]).squeeze(-1))
    noisy = add_gumbel_noise(logits, 1.5, torch.Generator().manual_seed(9))
    assert noisy.dtype == torch.float64
    with pytest.raises(ValueError, match="Generator"):
        token_confidence(logits, 1.0)


# --- generate: invariants of every mode ------------------------------------------------------

MODES = ["none", "prefix", "dual"]


@pytest.mark.parametrize("cache", MODES)
@pytest.mark.parametrize("remasking", ["low_confidence", "random"])
def test_fixed_k_decoding_invariants(model, prompt, cache, remasking):
    config = DecodeConfig(gen_length=16, block_length=8, steps=6, cache=cache, remasking=remasking)
    result = generate(model, prompt, config, record=True)
    mask = TINY.mask_token_id
    seq_len = PROMPT_LEN + config.gen_length

    assert result.tokens.shape == (2, seq_len)
    assert torch.equal(result.tokens[:, :PROMPT_LEN], prompt)
    assert not (result.tokens == mask).any()
    assert len(set(result.tokens[:, PROMPT_LEN:].flatten().tolist())) > 3  # not degenerate
    assert result.steps_per_block == [3, 3]
    assert result.forward_passes == 6 == len(result.records)

    schedule = transfer_schedule(torch.tensor([8, 8]), 3)
    before = initial_tokens(prompt, config)
    ever_committed = torch.zeros(2, seq_len, dtype=torch.bool)
    for record in result.records:
        start = PROMPT_LEN + record.block * config.block_length
        end = start + config.block_length
        outside = torch.ones(seq_len, dtype=torch.bool)
        outside[start:end] = False
        assert not record.committed[:, outside].any()
        assert record.committed.sum(dim=1).tolist() == schedule[:, record.step].tolist()
        assert (before[record.committed] == mask).all()  # only [MASK]s get committed
        assert not (ever_committed & record.committed).any()
        ever_committed |= record.committed
        assert torch.equal(record.tokens[~record.committed], before[~record.committed])
        assert torch.equal(record.tokens[ever_committed], result.tokens[ever_committed])  # final
        expected_query = query_for(cache, record.step, start, end, seq_len)
        assert record.query_positions == expected_query
        before = record.tokens
    assert ever_committed[:, PROMPT_LEN:].all() and not ever_committed[:, :PROMPT_LEN].any()


def query_for(cache, step, start, end, seq_len):
    if cache == "none" or step == 0:
        return (0, seq_len)
    return (start, seq_len) if cache == "prefix" else (start, end)


@pytest.mark.parametrize("cache", MODES)
def test_low_confidence_commits_the_most_confident_masked_positions(model, prompt, cache):
    config = DecodeConfig(gen_length=16, block_length=8, steps=8, cache=cache)
    result = generate(model, prompt, config, record=True)
    for record in result.records:
        seen = record.confidence
        for row in range(2):
            committed = seen[row][record.committed[row]]
            waiting = seen[row][~record.committed[row] & torch.isfinite(seen[row])]
            if waiting.numel():
                assert committed.min() >= waiting.max()


# --- generate: cache refresh and cache-mode equivalences ------------------------------------


class RefreshSnapshotCache(KVCache):
    """A KVCache that keeps a copy of itself after every full refresh (a write of all slots)."""

    def __init__(self, config, batch, seq_len):
        super().__init__(config, batch, seq_len)
        self.n_layers = config.n_layers
        self.snapshots = []
        self.writes = []

    def write(self, layer, positions, k, v):
        super().write(layer, positions, k, v)
        if layer == 0:
            self.writes.append((int(positions[0]), int(positions[-1]) + 1))
        if layer == self.n_layers - 1 and positions.numel() == self.seq_len:
            self.snapshots.append(self.clone())


@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_cache_after_block_refresh_equals_full_recomputation(model, prompt, cache):
    config = DecodeConfig(gen_length=24, block_length=8, steps=12, cache=cache)
    made = []

    def factory(model_config, batch, seq_len):
        made.append(RefreshSnapshotCache(model_config, batch, seq_len))
        return made[0]

    result = generate(model, prompt, config, cache_factory=factory, record=True)
    assert len(made) == 1
    snapshots = made[0].snapshots
    assert len(snapshots) == config.num_blocks
    block_starts = [i for i, r in enumerate(result.records) if r.step == 0]
    for snapshot, index in zip(snapshots, block_starts):
        tokens = state_before(result, index, initial_tokens(prompt, config))
        fresh = KVCache(TINY, tokens.shape[0], tokens.shape[1])
        with torch.no_grad():
            model(tokens, torch.arange(tokens.shape[1]), fresh)
        for layer in range(TINY.n_layers):
            assert torch.equal(snapshot.k[layer], fresh.k[layer])
            assert torch.equal(snapshot.v[layer], fresh.v[layer])
    assert made[0].writes == [r.query_positions for r in result.records]


@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_one_step_per_block_cached_equals_no_cache(model, prompt, cache):
    for gen_length, block_length in [(16, 4), (16, 16), (12, 6)]:
        steps = gen_length // block_length
        plain = generate(model, prompt, DecodeConfig(gen_length, block_length, steps))
        cached = generate(model, prompt, DecodeConfig(gen_length, block_length, steps, cache=cache))
        assert torch.equal(plain.tokens, cached.tokens)
        assert plain.forward_passes == cached.forward_passes == steps


def test_dual_cache_over_one_block_in_one_step_equals_no_cache(model, prompt):
    plain = generate(model, prompt, DecodeConfig(gen_length=16, block_length=16, steps=1))
    dual = generate(model, prompt, DecodeConfig(gen_length=16, block_length=16, steps=1, cache="dual"))
    assert torch.equal(plain.tokens, dual.tokens)


def test_cached_steps_reuse_the_cache_and_can_change_the_answer(model, prompt):
    """Prefix and dual caches are approximations: with several steps per block they need not
    match the no-cache answer, while every mode still fills the whole answer."""
    answers = {
        cache: generate(model, prompt, DecodeConfig(16, 8, 16, cache=cache)).tokens for cache in MODES
    }
    assert not torch.equal(answers["none"], answers["dual"])
    assert not torch.equal(answers["none"], answers["prefix"])
    for tokens in answers.values():
        assert not (tokens == TINY.mask_token_id).any()


@pytest.mark.parametrize("cache", MODES)
def test_batch_rows_decode_independently(model, prompt, cache):
    config = DecodeConfig(gen_length=16, block_length=8, steps=8, cache=cache)
    both = generate(model, prompt, config).tokens
    for row in range(prompt.shape[0]):
        alone = generate(model, prompt[row : row + 1], config).tokens
        assert torch.equal(both[row : row + 1], alone)


# --- threshold rule, temperature, random remasking ------------------------------------------


@pytest.mark.parametrize("cache", MODES)
def test_threshold_rule_commits_confident_positions_and_blocks_take_variable_steps(model, prompt, cache):
    threshold = 0.9
    config = DecodeConfig(gen_length=32, block_length=8, steps=4, cache=cache, threshold=threshold)
    result = generate(model, prompt, config, record=True)
    assert not (result.tokens == TINY.mask_token_id).any()
    assert sum(result.steps_per_block) == result.forward_passes == len(result.records)
    assert all(1 <= steps <= config.block_length for steps in result.steps_per_block)
    assert len(set(result.steps_per_block)) > 1
    for record in result.records:
        for row in range(2):
            eligible = torch.isfinite(record.confidence[row])
            committed = record.confidence[row][record.committed[row]]
            if not eligible.any():
                assert committed.numel() == 0
                continue
            assert committed.numel() >= 1
            if (committed < threshold).any():  # only the forced best when nothing passes
                assert committed.numel() == 1
                assert committed.item() == record.confidence[row][eligible].max().item()
                assert (record.confidence[row][eligible] < threshold).all()


@pytest.mark.parametrize("cache", MODES)
def test_temperature_sampling_is_reproducible_per_seed(model, prompt, cache):
    def run(seed, temperature=1.0):
        config = DecodeConfig(16, 8, 8, cache=cache, temperature=temperature, seed=seed)
        return generate(model, prompt, config).tokens

    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))
    assert not torch.equal(run(0), run(0, temperature=0.0))


def test_random_remasking_is_reproducible_per_seed(model, prompt):
    def run(seed):
        config = DecodeConfig(16, 8, 8, remasking="random", seed=seed)
        return generate(model, prompt, config, record=True)

    first, again, other = run(3), run(3), run(4)
    assert torch.equal(first.tokens, again.tokens)
    commits = lambda result: torch.stack([r.committed for r in result.records])  # noqa: E731
    assert torch.equal(commits(first), commits(again))
    assert not torch.equal(commits(first), commits(other))


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"gen_length": 0}, "gen_length"),
        ({"block_length": 5}, "block_length"),
        ({"steps": 3}, "steps"),
        ({"steps": 64}, "steps"),
        ({"steps": 2.0}, "steps"),
        ({"cache": "full"}, "cache"),
        ({"remasking": "entropy"}, "remasking"),
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": math.inf}, "temperature"),
        ({"threshold": 1.5}, "threshold"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_config_raises_naming_the_field(overrides, field):
    fields = {"gen_length": 32, "block_length": 8, "steps": 8, **overrides}
    with pytest.raises(ValueError, match=rf"DecodeConfig\.{field}"):
        DecodeConfig(**fields)


def test_bad_prompt_raises_a_clear_error(model, prompt):
    config = DecodeConfig(16, 8, 8)
    with pytest.raises(ValueError, match=r"\[MASK\]"):
        generate(model, torch.full((1, 3), TINY.mask_token_id), config)
    with pytest.raises(ValueError, match="max_seq_len"):
        generate(model, prompt, DecodeConfig(64, 8, 8))
    with pytest.raises(ValueError, match="LongTensor"):
        generate(model, prompt.float(), config)
    with pytest.raises(ValueError, match="vocabulary"):
        generate(model, torch.tensor([[TINY.vocab_size]]), config)
