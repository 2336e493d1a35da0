"""Specifications of the evaluation harness (exact match through the real decoder, perplexity)."""

import math

import pytest
import torch
from torch import nn

from npu.models.decoding import DecodeConfig
from npu.models.evaluate import evaluate_exact_match, evaluate_perplexity
from npu.models.tasks import CharCorpus, SortDigits
from npu.models.transformer import ModelConfig, build_model


class SortingOracle(nn.Module):
    """Knows the answer: logits favour the right sorted digit at every answer position.

    Cached decoding queries only part of the sequence after each block's full refresh, so the
    oracle remembers the prompt from the last full pass.
    """

    def __init__(self, task: SortDigits):
        super().__init__()
        self.task = task
        self.config = ModelConfig(name="oracle", vocab_size=len(task.vocab), mask_token_id=task.mask_id,
                                  n_layers=1, d_model=8, n_heads=1, n_kv_heads=1, head_dim=8, d_ff=8,
                                  max_seq_len=task.sequence_length)
        self.answers = None

    def forward(self, tokens, positions=None, cache=None):
        if positions is None or len(positions) == self.task.sequence_length:
            self.answers = tokens[:, : self.task.n_digits].sort(dim=1).values
            positions = torch.arange(tokens.shape[1])
        full = torch.zeros(tokens.shape[0], self.task.sequence_length, dtype=torch.long)
        full[:, self.task.prompt_length :] = self.answers
        return torch.nn.functional.one_hot(full[:, positions], len(self.task.vocab)).float() * 5.0


@pytest.mark.parametrize("cache", ["none", "prefix", "dual"])
@pytest.mark.parametrize("threshold", [None, 0.5])
def test_an_oracle_scores_full_exact_match_in_every_cache_mode(cache, threshold):
    task = SortDigits(n_digits=6)
    config = DecodeConfig(gen_length=6, block_length=2, steps=6, cache=cache, threshold=threshold)
    result = evaluate_exact_match(SortingOracle(task), task, config, n_samples=20, seed=0, batch_size=8)
    assert result.accuracy == 1.0 and result.n_correct == 20 and result.token_accuracy == 1.0
    assert result.cache == cache and result.rule == ("fixed-k" if threshold is None else "threshold=0.5")
    assert result.forward_passes == (3 * 6 if threshold is None else 3 * 3)  # 3 batches; threshold: 1 step/block


def test_an_untrained_model_scores_near_zero_exact_match():
    task = SortDigits(n_digits=6)
    config = ModelConfig(name="t", vocab_size=len(task.vocab), mask_token_id=task.mask_id, n_layers=1,
                         d_model=16, n_heads=2, n_kv_heads=2, head_dim=8, d_ff=32,
                         max_seq_len=task.sequence_length)
    model = build_model(config).init_weights(0)
    result = evaluate_exact_match(model, task, DecodeConfig(gen_length=6, block_length=6, steps=6), n_samples=50)
    assert result.accuracy < 0.1 and result.n_samples == 50


def test_exact_match_refuses_a_decode_length_that_is_not_the_answer_length():
    task = SortDigits(n_digits=6)
    with pytest.raises(ValueError, match="gen_length=4 but task 'sort' answers have 6 tokens"):
        evaluate_exact_match(SortingOracle(task), task, DecodeConfig(gen_length=4, block_length=4, steps=4))


def test_perplexity_result_is_consistent_and_deterministic():
    corpus = CharCorpus(window_length=16)
    config = ModelConfig(name="t", vocab_size=len(corpus.vocab), mask_token_id=corpus.mask_id, n_layers=1,
                         d_model=16, n_heads=2, n_kv_heads=2, head_dim=8, d_ff=32, max_seq_len=16)
    model = build_model(config).init_weights(0)
    first = evaluate_perplexity(model, corpus, n_windows=4, n_mask_draws=2, seed=3)
    second = evaluate_perplexity(model, corpus, n_windows=4, n_mask_draws=2, seed=3)
    assert first.perplexity == second.perplexity
    assert first.bits_per_char == pytest.approx(first.nll_per_char / math.log(2))
    assert first.perplexity == pytest.approx(math.exp(first.nll_per_char))
    with pytest.raises(ValueError, match="does not fit corpus"):
        evaluate_perplexity(model, CharCorpus(window_length=32), n_windows=1)
