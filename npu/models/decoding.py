"""Block-diffusion decoding: LLaDA's semi-autoregressive sampler with Fast-dLLM's KV caches.

The answer starts as `gen_length` [MASK] tokens after the prompt and is decoded block by block,
left to right. Inside a block, every step runs the model, proposes a token x0 for each position
and a confidence for it, and commits some still-masked positions of the block. Committed tokens
are final. How many positions a step commits is either a fixed schedule (an even split of the
block's masks over its steps, LLaDA) or a confidence threshold (Fast-dLLM; the block then takes
as many steps as it needs).

The sampling pass is four pure functions that the graph exporter and the NPU kernels reproduce
exactly: `forbid_mask_token` ([MASK]'s logit to -inf), `token_confidence` (argmax and softmax
probability of it), `commit_mask` (top-k or threshold over the eligible positions, ties to the
lowest position) and `commit_tokens` (a masked integer select). `generate` strings them
together with the model's single forward path `model(tokens_q, positions, cache)` in one of
three cache modes:

- "none":   every step is a full forward over the whole sequence;
- "prefix": each block's first step is a full forward that refreshes the whole KV cache; later
            steps query the block and the suffix (overwriting their slots) and reuse the prefix;
- "dual":   as "prefix", but later steps query only the block and also reuse the suffix slots.

This module is the one owner of that rule: the recipe (`DecodeConfig`), the query window of a
step (`query_range`), the fixed-k counts (`transfer_schedule`), the step shapes of a whole
generation (`steps_by_query_length`) and the record of a step (`StepRecord`). The NPU runtime,
the analytical model and the IR exporter's checks import them instead of restating them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from npu.models.transformer import KVCache, MaskedDiffusionTransformer, ModelConfig

CACHE_MODES = ("none", "prefix", "dual")
REMASKING_MODES = ("low_confidence", "random")

CacheFactory = Callable[[ModelConfig, int, int], KVCache]


def _check_int(field: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"DecodeConfig.{field} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"DecodeConfig.{field}={value} must be >= {minimum}")


@dataclass(frozen=True)
class DecodeConfig:
    """One decoding recipe. `steps` counts all steps over all blocks (fixed-k schedule only)."""

    gen_length: int
    block_length: int
    steps: int
    cache: str = "none"
    remasking: str = "low_confidence"
    temperature: float = 0.0
    threshold: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        _check_int("gen_length", self.gen_length, 1)
        _check_int("block_length", self.block_length, 1)
        _check_int("steps", self.steps, 1)
        _check_int("seed", self.seed, 0)
        if self.gen_length % self.block_length:
            raise ValueError(
                f"DecodeConfig.block_length={self.block_length} does not divide "
                f"gen_length={self.gen_length}"
            )
        if self.steps % self.num_blocks:
            raise ValueError(
                f"DecodeConfig.steps={self.steps} is not divisible by the number of blocks "
                f"({self.num_blocks} = gen_length {self.gen_length} / block_length {self.block_length})"
            )
        if self.steps > self.gen_length:
            raise ValueError(
                f"DecodeConfig.steps={self.steps} exceeds gen_length={self.gen_length}; "
                f"some steps would commit no token"
            )
        if self.cache not in CACHE_MODES:
            raise ValueError(f"DecodeConfig.cache={self.cache!r} is not one of {CACHE_MODES}")
        if self.remasking not in REMASKING_MODES:
            raise ValueError(
                f"DecodeConfig.remasking={self.remasking!r} is not one of {REMASKING_MODES}"
            )
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, (int, float)):
            raise ValueError(f"DecodeConfig.temperature must be a number, got {self.temperature!r}")
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise ValueError(f"DecodeConfig.temperature={self.temperature} must be finite and >= 0")
        if self.threshold is not None:
            if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)):
                raise ValueError(f"DecodeConfig.threshold must be a number or None, got {self.threshold!r}")
            if not 0.0 <= self.threshold <= 1.0:
                raise ValueError(f"DecodeConfig.threshold={self.threshold} must lie in [0, 1]")

    @property
    def num_blocks(self) -> int:
        return self.gen_length // self.block_length

    @property
    def steps_per_block(self) -> int:
        """Steps of each block under the fixed-k schedule (the threshold rule ignores it)."""
        return self.steps // self.num_blocks

    @property
    def sampling(self) -> str:
        """The commit rule as the compiler and the step shapes name it: "topk" or "threshold"."""
        return "topk" if self.threshold is None else "threshold"


def add_gumbel_noise(logits: torch.Tensor, temperature: float, generator: torch.Generator) -> torch.Tensor:
    """LLaDA's Gumbel-max perturbation exp(l) / (-log u)^T, in float64 as LLaDA does.

    Its argmax samples from softmax(l / T); low precision here is known to hurt generation.
    """
    noise = torch.rand(logits.shape, dtype=torch.float64, generator=generator, device=logits.device)
    return logits.to(torch.float64).exp() / (-torch.log(noise)) ** temperature


def gumbel_noise(shape: tuple[int, ...], generator: torch.Generator) -> np.ndarray:
    """g = -log(-log u) as fp32, from the same draws as add_gumbel_noise.

    argmax(exp(l) / (-log u)^T) = argmax(l - T log(-log u)) = argmax(l + T g): the NPU adds
    T * g to the logits instead of exponentiating them. u comes from one torch.rand call of
    this shape in float64, exactly the call add_gumbel_noise makes with the same generator.
    """
    u = torch.rand(shape, dtype=torch.float64, generator=generator)
    return (-torch.log(-torch.log(u))).numpy().astype(np.float32)


def token_confidence(
    logits: torch.Tensor, temperature: float = 0.0, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """x0 (argmax after optional Gumbel noise) and the softmax probability of x0 (float32).

    Ties in the argmax go to the lowest vocabulary id (torch.argmax returns the first maximum).
    The probability is exp(l[x0] - max l) / sum(exp(l - max l)) from the noise-free logits; when
    x0 is the argmax this is 1 / sum, which is how the NPU computes it without a vector divide.
    """
    if logits.dim() < 1 or logits.shape[-1] == 0:
        raise ValueError(
            f"token_confidence needs logits with a vocabulary axis, got shape {tuple(logits.shape)}"
        )
    if temperature < 0:
        raise ValueError(f"token_confidence: temperature={temperature} must be >= 0")
    if temperature > 0:
        if generator is None:
            raise ValueError("token_confidence: temperature > 0 needs a seeded torch.Generator")
        x0 = add_gumbel_noise(logits, temperature, generator).argmax(dim=-1)
    else:
        x0 = logits.argmax(dim=-1)
    scores = logits.to(torch.float32)
    peak = scores.amax(dim=-1, keepdim=True)
    total = (scores - peak).exp().sum(dim=-1)
    chosen = scores.gather(-1, x0.unsqueeze(-1)) - peak
    return x0, chosen.squeeze(-1).exp() / total


def transfer_schedule(mask_count: torch.Tensor, steps: int) -> torch.Tensor:
    """Tokens to commit per step (batch, steps): an even split, the remainder to the first steps.

    Same numbers as LLaDA's get_num_transfer_tokens, which takes the mask itself rather than
    its per-row count.
    """
    if mask_count.dim() != 1:
        raise ValueError(
            f"transfer_schedule: mask_count must be 1-D (batch,), got shape {tuple(mask_count.shape)}"
        )
    if steps < 1:
        raise ValueError(f"transfer_schedule: steps={steps} must be >= 1")
    mask_count = mask_count.to(torch.long)
    base = mask_count // steps
    remainder = mask_count % steps
    step_index = torch.arange(steps, device=mask_count.device)
    return base[:, None] + (step_index[None, :] < remainder[:, None]).to(torch.long)


def confidence_rank(confidence: torch.Tensor, eligible: torch.Tensor) -> torch.Tensor:
    """For each position, how many eligible positions beat it (batch, length).

    Position j beats position i when its confidence is higher, or equal and j < i. Among the
    eligible positions the ranks are therefore 0, 1, 2, ... with ties going to the lowest
    position: a total order that a comparator-based hardware top-k reproduces bit for bit.
    """
    length = confidence.shape[-1]
    index = torch.arange(length, device=confidence.device)
    mine = confidence[:, :, None]
    theirs = confidence[:, None, :]
    earlier = index[None, :] < index[:, None]  # [i, j]: j is a lower position than i
    beats = (theirs > mine) | ((theirs == mine) & earlier)
    return (beats & eligible[:, None, :]).sum(dim=-1)


def commit_mask(
    confidence: torch.Tensor,
    eligible: torch.Tensor,
    k: torch.Tensor | int | None = None,
    threshold: float | None = None,
) -> torch.Tensor:
    """Which positions to commit (batch, length), given one of k (top-k) or threshold.

    Top-k: the k[b] eligible positions of highest confidence in row b (ranked by
    `confidence_rank`, so ties go to the lowest position). Threshold (Fast-dLLM): every eligible
    position with confidence >= threshold, plus the best eligible one, so that a row with any
    eligible position commits at least one. Ineligible positions are never committed.
    """
    if (k is None) == (threshold is None):
        raise ValueError("commit_mask needs exactly one of k (top-k rule) or threshold")
    if confidence.dim() != 2 or confidence.shape != eligible.shape:
        raise ValueError(
            f"commit_mask: confidence {tuple(confidence.shape)} and eligible {tuple(eligible.shape)} "
            f"must both be (batch, length)"
        )
    if eligible.dtype != torch.bool:
        raise ValueError(f"commit_mask: eligible must be a bool tensor, got {eligible.dtype}")
    if torch.isnan(confidence[eligible]).any():
        raise ValueError("commit_mask: confidence is NaN at an eligible position")
    rank = confidence_rank(confidence, eligible)
    if threshold is not None:
        return eligible & ((confidence >= threshold) | (rank == 0))
    batch = confidence.shape[0]
    k = torch.as_tensor(k, dtype=torch.long, device=confidence.device).expand(batch)
    available = eligible.sum(dim=-1)
    if (k < 0).any() or (k > available).any():
        raise ValueError(
            f"commit_mask: k={k.tolist()} must lie between 0 and the eligible count {available.tolist()}"
        )
    return eligible & (rank < k[:, None])


def forbid_mask_token(logits: torch.Tensor, mask_token_id: int) -> torch.Tensor:
    """The logits with [MASK]'s entry at -inf, so that a step never proposes [MASK] itself.

    A trained dLLM gives [MASK] almost no probability, so this changes nothing there; an
    untrained or quantized one could, and a committed [MASK] would leave the block unfinished.
    """
    forbidden = logits.clone()
    forbidden[..., mask_token_id] = -math.inf
    return forbidden


def commit_tokens(tokens: torch.Tensor, x0: torch.Tensor, commit: torch.Tensor) -> torch.Tensor:
    """The committed positions take their proposed token x0; the rest keep theirs."""
    return torch.where(commit, x0, tokens)


@dataclass
class StepRecord:
    """What one step did, as the PyTorch decoder (`generate(record=True)`) and the NPU runtime
    (npu.runtime.generate) record it.

    The PyTorch decoder records tensors over the batch and the whole sequence: `committed` bool
    (batch, seq), `confidence` float32 (batch, seq) with -inf where ineligible, `tokens` the
    sequence after the step, `k` the top-k counts (batch,) (None under the threshold rule). The
    runtime records one sequence's block as numpy arrays: `committed` bool (block,),
    `confidence` float32 (block,) as the commit rule ranked it, `k` (0 under the threshold
    rule), the step's wall time and executed instructions; `tokens` stays None.
    """

    block: int
    step: int
    query_positions: tuple[int, int]  # [start, end) of the positions the forward pass queried
    committed: torch.Tensor | np.ndarray
    confidence: torch.Tensor | np.ndarray
    k: torch.Tensor | int | None = None
    tokens: torch.Tensor | None = None
    seconds: float = 0.0
    instructions: int = 0

    @property
    def query_length(self) -> int:
        return self.query_positions[1] - self.query_positions[0]


@dataclass
class GenerationResult:
    tokens: torch.Tensor  # long (batch, prompt_len + gen_length)
    forward_passes: int
    steps_per_block: list[int]
    records: list[StepRecord]  # empty unless generate(record=True)


def query_range(cache: str, step: int, block_start: int, block_end: int, seq_len: int) -> tuple[int, int]:
    """Positions [start, end) step `step` of a block feeds the model: everything (no cache, or the
    block's first step, which refreshes the whole cache), block + suffix (prefix), or block (dual)."""
    if cache == "none" or step == 0:
        return 0, seq_len
    if cache == "prefix":
        return block_start, seq_len
    return block_start, block_end


def steps_by_query_length(config: DecodeConfig, prompt_length: int,
                          steps_per_block: float) -> list[tuple[int, float]]:
    """(query length, how many steps query that many positions) over a whole generation, in
    first-seen order: each block's refresh step, then its later steps (query_range). Every step
    attends over the whole sequence and samples the block. `steps_per_block` is
    config.steps_per_block under the fixed-k schedule; under the threshold rule it depends on the
    model's confidences, so the caller gives it (an average; fractional allowed)."""
    seq_len = prompt_length + config.gen_length
    counts: dict[int, float] = {}

    def add(query: tuple[int, int], count: float) -> None:
        if count > 0:
            length = query[1] - query[0]
            counts[length] = counts.get(length, 0.0) + count

    for block in range(config.num_blocks):
        start = prompt_length + block * config.block_length
        end = start + config.block_length
        if config.cache == "none":  # every step is the same full pass
            add(query_range(config.cache, 0, start, end, seq_len), steps_per_block)
            continue
        add(query_range(config.cache, 0, start, end, seq_len), 1.0)
        add(query_range(config.cache, 1, start, end, seq_len), steps_per_block - 1.0)
    return list(counts.items())


def _check_prompt(prompt: torch.Tensor, model_config: ModelConfig, config: DecodeConfig) -> None:
    if not isinstance(prompt, torch.Tensor) or prompt.dim() != 2 or prompt.dtype != torch.long:
        raise ValueError("generate: prompt must be a LongTensor of shape (batch, prompt_len)")
    if prompt.shape[0] == 0:
        raise ValueError("generate: prompt has an empty batch")
    if prompt.numel() and (prompt.min() < 0 or prompt.max() >= model_config.vocab_size):
        raise ValueError(
            f"generate: prompt token ids must lie in [0, {model_config.vocab_size}) "
            f"(vocabulary of model {model_config.name!r})"
        )
    if (prompt == model_config.mask_token_id).any():
        raise ValueError(
            f"generate: prompt contains the [MASK] id {model_config.mask_token_id}; only the "
            f"generated region may be masked"
        )
    seq_len = prompt.shape[1] + config.gen_length
    if seq_len > model_config.max_seq_len:
        raise ValueError(
            f"generate: prompt_len {prompt.shape[1]} + gen_length {config.gen_length} = {seq_len} "
            f"exceeds max_seq_len={model_config.max_seq_len} of model {model_config.name!r}"
        )


def generate(
    model: MaskedDiffusionTransformer,
    prompt: torch.Tensor,
    config: DecodeConfig,
    *,
    cache_factory: CacheFactory | None = None,
    record: bool = False,
) -> GenerationResult:
    """Decode `config.gen_length` tokens after `prompt` (batch, prompt_len), block by block.

    `cache_factory(model_config, batch, seq_len)` builds the KV cache of the cached modes (one
    per call, refreshed in full at each block's first step); quantized caches plug in here.
    Random draws (Gumbel noise, then random confidences) come from one torch.Generator seeded
    with `config.seed`, and only for the block's positions, so all cache modes see the same draws.
    """
    model_config = model.config
    _check_prompt(prompt, model_config, config)
    batch, prompt_len = prompt.shape
    seq_len = prompt_len + config.gen_length
    mask_id = model_config.mask_token_id
    device = prompt.device

    tokens = torch.full((batch, seq_len), mask_id, dtype=torch.long, device=device)
    tokens[:, :prompt_len] = prompt
    generator = None
    if config.temperature > 0 or config.remasking == "random":
        generator = torch.Generator(device=device).manual_seed(config.seed)
    cache = None
    if config.cache != "none":
        if cache_factory is None:
            cache = KVCache(model_config, batch, seq_len, device=device)
        else:
            cache = cache_factory(model_config, batch, seq_len)
            if not isinstance(cache, KVCache) or cache.seq_len != seq_len:
                raise ValueError(
                    f"generate: cache_factory must return a KVCache with seq_len={seq_len}, "
                    f"got {type(cache).__name__}"
                )
    positions = torch.arange(seq_len, device=device)

    forward_passes = 0
    steps_per_block: list[int] = []
    records: list[StepRecord] = []
    with torch.no_grad():
        for block in range(config.num_blocks):
            start = prompt_len + block * config.block_length
            end = start + config.block_length
            schedule = None
            if config.threshold is None:
                mask_count = (tokens[:, start:end] == mask_id).sum(dim=-1)
                schedule = transfer_schedule(mask_count, config.steps_per_block)
            step = 0
            while (tokens[:, start:end] == mask_id).any():
                query_start, query_end = query_range(config.cache, step, start, end, seq_len)
                logits = model(tokens[:, query_start:query_end], positions[query_start:query_end], cache)
                forward_passes += 1
                block_logits = logits[:, start - query_start : end - query_start]
                block_logits = forbid_mask_token(block_logits, mask_id)

                x0, confidence = token_confidence(block_logits, config.temperature, generator)
                if config.remasking == "random":
                    confidence = torch.rand(confidence.shape, generator=generator, device=device)
                eligible = tokens[:, start:end] == mask_id
                if schedule is None:
                    commit = commit_mask(confidence, eligible, threshold=config.threshold)
                else:
                    commit = commit_mask(confidence, eligible, k=schedule[:, step])
                tokens[:, start:end] = commit_tokens(tokens[:, start:end], x0, commit)

                if record:
                    committed = torch.zeros((batch, seq_len), dtype=torch.bool, device=device)
                    committed[:, start:end] = commit
                    seen = torch.full((batch, seq_len), -math.inf, dtype=torch.float32, device=device)
                    seen[:, start:end] = torch.where(eligible, confidence.to(torch.float32), -math.inf)
                    records.append(StepRecord(
                        block, step, (query_start, query_end), committed=committed, confidence=seen,
                        k=None if schedule is None else schedule[:, step], tokens=tokens.clone()))
                step += 1
            steps_per_block.append(step)
    return GenerationResult(tokens, forward_passes, steps_per_block, records)
