"""Accuracy of trained tiny models: exact match on puzzles, perplexity on text.

Exact match decodes fresh prompts from a seeded generator with `npu.models.decoding.generate`
(so every cache mode and commit rule is scored on the same prompts) and counts the rows whose
whole answer is right. Perplexity is the masked-diffusion bound of `CharCorpus.perplexity`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch

from npu.models.decoding import DecodeConfig, generate
from npu.models.tasks import CharCorpus
from npu.models.transformer import MaskedDiffusionTransformer


@dataclass(frozen=True)
class ExactMatchResult:
    """Exact match of one decoding recipe on n_samples prompts."""

    task: str
    cache: str
    rule: str  # "fixed-k" or "threshold=<tau>"
    accuracy: float
    n_samples: int
    n_correct: int
    token_accuracy: float  # fraction of answer tokens right, a finer signal than exact match
    forward_passes: int  # summed over batches
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PerplexityResult:
    """Validation perplexity per character (an upper bound, see CharCorpus.perplexity)."""

    perplexity: float
    nll_per_char: float
    bits_per_char: float
    n_windows: int
    window_length: int
    n_mask_draws: int
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def _rule_name(config: DecodeConfig) -> str:
    return "fixed-k" if config.threshold is None else f"threshold={config.threshold:g}"


def evaluate_exact_match(
    model: MaskedDiffusionTransformer,
    task,
    decode_config: DecodeConfig,
    n_samples: int = 500,
    seed: int = 1234,
    batch_size: int = 250,
) -> ExactMatchResult:
    """Decode n_samples prompts of `task` (drawn with `seed`) and score the answers by exact match."""
    if n_samples < 1 or batch_size < 1:
        raise ValueError(f"evaluate_exact_match: n_samples={n_samples} and batch_size={batch_size} must be >= 1")
    if decode_config.gen_length != task.answer_length:
        raise ValueError(
            f"evaluate_exact_match: decoding gen_length={decode_config.gen_length} but task "
            f"{task.name!r} answers have {task.answer_length} tokens"
        )
    if model.config.mask_token_id != task.mask_id or model.config.vocab_size != len(task.vocab):
        raise ValueError(
            f"evaluate_exact_match: model {model.config.name!r} (vocab {model.config.vocab_size}, "
            f"mask {model.config.mask_token_id}) does not match task {task.name!r} "
            f"(vocab {len(task.vocab)}, mask {task.mask_id})"
        )
    prompts, answers = task.sample(n_samples, torch.Generator().manual_seed(seed))
    was_training = model.training
    model.eval()
    predictions, forward_passes = [], 0
    start = time.perf_counter()
    for first in range(0, n_samples, batch_size):
        result = generate(model, prompts[first : first + batch_size], decode_config)
        predictions.append(result.tokens[:, task.prompt_length :])
        forward_passes += result.forward_passes
    seconds = time.perf_counter() - start
    model.train(was_training)
    predicted = torch.cat(predictions)
    correct_rows = (predicted == answers).all(dim=1)
    return ExactMatchResult(
        task=task.name,
        cache=decode_config.cache,
        rule=_rule_name(decode_config),
        accuracy=task.exact_match(predicted, answers),
        n_samples=n_samples,
        n_correct=int(correct_rows.sum()),
        token_accuracy=(predicted == answers).float().mean().item(),
        forward_passes=forward_passes,
        seconds=seconds,
    )


def evaluate_perplexity(
    model: MaskedDiffusionTransformer,
    corpus: CharCorpus,
    n_windows: int = 64,
    n_mask_draws: int = 8,
    seed: int = 0,
    batch_size: int = 64,
) -> PerplexityResult:
    """Validation perplexity of a model trained on `corpus` (fixed-seed Monte-Carlo bound)."""
    if n_windows < 1 or n_mask_draws < 1 or batch_size < 1:
        raise ValueError(
            f"evaluate_perplexity: n_windows={n_windows}, n_mask_draws={n_mask_draws} and "
            f"batch_size={batch_size} must all be >= 1"
        )
    if model.config.vocab_size != len(corpus.vocab) or model.config.max_seq_len < corpus.window_length:
        raise ValueError(
            f"evaluate_perplexity: model {model.config.name!r} (vocab {model.config.vocab_size}, "
            f"max_seq_len {model.config.max_seq_len}) does not fit corpus (vocab {len(corpus.vocab)}, "
            f"window {corpus.window_length})"
        )
    start = time.perf_counter()
    perplexity, nll = corpus.perplexity(model, n_windows, n_mask_draws, seed, batch_size)
    return PerplexityResult(
        perplexity=perplexity,
        nll_per_char=nll,
        bits_per_char=nll / math.log(2),
        n_windows=n_windows,
        window_length=corpus.window_length,
        n_mask_draws=n_mask_draws,
        seconds=time.perf_counter() - start,
    )
