"""Specifications of the offline workloads: puzzles are correct, the corpus split is clean."""

import math

import pytest
import torch

from npu.models.tasks import AddNumbers, CharCorpus, SortDigits, get_task
from npu.models.transformer import ModelConfig, build_model


@pytest.fixture(scope="module")
def corpus() -> CharCorpus:
    return CharCorpus(window_length=32)


def test_sort_answers_are_the_sorted_prompt_digits():
    task = SortDigits(n_digits=12)
    prompts, answers = task.sample(200, torch.Generator().manual_seed(0))
    assert prompts.shape == (200, task.prompt_length) and answers.shape == (200, task.answer_length)
    assert (prompts[:, -1] == task.vocab.index("=")).all()
    digits = prompts[:, :12]
    assert (answers[:, 1:] >= answers[:, :-1]).all()
    for d in range(10):  # same multiset of digits
        assert ((digits == d).sum(1) == (answers == d).sum(1)).all()
    assert not (prompts == task.mask_id).any() and not (answers == task.mask_id).any()


def test_mask_id_is_the_index_of_the_mask_token():
    for task in (SortDigits(), AddNumbers(n_digits=3)):
        assert task.vocab[task.mask_id] == "[MASK]"


def test_addition_answers_equal_the_integer_sum():
    task = AddNumbers(n_digits=7)
    prompts, answers = task.sample(300, torch.Generator().manual_seed(1))
    assert answers.shape == (300, 8) and prompts.shape == (300, 16)
    a = task.to_int(prompts[:, :7])
    b = task.to_int(prompts[:, 8:15])
    assert (prompts[:, 7] == task.vocab.index("+")).all() and (prompts[:, 15] == task.vocab.index("=")).all()
    assert task.to_int(answers) == [x + y for x, y in zip(a, b)]
    assert any(s >= 10**7 for s in task.to_int(answers))  # the carry digit is exercised


def test_sampling_is_deterministic_for_a_seed():
    task = AddNumbers(n_digits=4)
    first = task.sample(10, torch.Generator().manual_seed(5))
    second = task.sample(10, torch.Generator().manual_seed(5))
    assert all(torch.equal(x, y) for x, y in zip(first, second))


def test_exact_match_counts_whole_rows():
    task = SortDigits(n_digits=4)
    _, answers = task.sample(4, torch.Generator().manual_seed(0))
    assert task.exact_match(answers, answers) == 1.0
    wrong = answers.clone()
    wrong[0, 2] = (wrong[0, 2] + 1) % 10
    assert task.exact_match(wrong, answers) == 0.75
    with pytest.raises(ValueError, match="shape"):
        task.exact_match(answers[:, :3], answers)


def test_decode_shows_tokens_and_masks():
    task = AddNumbers(n_digits=2)
    assert task.decode([1, 2, 10, 3, 4, 11, task.mask_id]) == "12+34=_"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        task.decode([99])


def test_corpus_split_is_deterministic_and_disjoint(corpus):
    again = CharCorpus(window_length=32)
    assert torch.equal(corpus.train_ids, again.train_ids)
    assert torch.equal(corpus.validation_ids, again.validation_ids)
    assert corpus.validation_topics and not set(corpus.validation_topics) & set(corpus.train_topics)
    total = len(corpus.train_ids) + len(corpus.validation_ids)
    assert 400_000 < total < 500_000 and 0.03 < len(corpus.validation_ids) / total < 0.2


def test_corpus_vocabulary_round_trips_ascii_and_maps_the_rest_to_unknown(corpus):
    text = "def f(x):\n    return x ~ 1"
    assert corpus.decode(corpus.encode(text)) == text
    assert corpus.encode("\u2019").tolist() == [corpus.unknown_id]
    assert corpus.vocab[corpus.mask_id] == "[MASK]"
    assert not (corpus.train_ids == corpus.mask_id).any()


def test_corpus_windows_are_contiguous_slices_of_their_split(corpus):
    windows = corpus.sample_windows(5, 20, torch.Generator().manual_seed(3), split="validation")
    text = corpus.decode(corpus.validation_ids)
    assert windows.shape == (5, 20)
    assert all(corpus.decode(w) in text for w in windows)
    with pytest.raises(ValueError, match="split"):
        corpus.sample_windows(1, 8, torch.Generator(), split="test")


def test_perplexity_of_an_untrained_model_is_near_the_vocabulary_size(corpus):
    config = ModelConfig(name="t", vocab_size=len(corpus.vocab), mask_token_id=corpus.mask_id, n_layers=1,
                         d_model=16, n_heads=2, n_kv_heads=2, head_dim=8, d_ff=32, max_seq_len=32)
    model = build_model(config).init_weights(0)
    perplexity, nll = corpus.perplexity(model, n_windows=4, n_mask_draws=2, seed=0)
    assert math.isclose(perplexity, math.exp(nll))
    assert 0.8 * len(corpus.vocab) < perplexity < 1.2 * len(corpus.vocab)
    assert corpus.perplexity(model, n_windows=4, n_mask_draws=2, seed=0)[0] == perplexity


def test_get_task_builds_tasks_and_rejects_bad_specs():
    assert get_task({"name": "sort", "n_digits": 5}).answer_length == 5
    assert get_task({"name": "add", "n_digits": 3}).answer_length == 4
    with pytest.raises(ValueError, match="unknown task 'sorting'"):
        get_task({"name": "sorting"})
    with pytest.raises(ValueError, match="unknown parameter"):
        get_task({"name": "sort", "digits": 5})
    with pytest.raises(ValueError, match="n_digits must be a positive integer"):
        get_task({"name": "add", "n_digits": 0})
    with pytest.raises(ValueError, match="'name'"):
        get_task({"n_digits": 3})
