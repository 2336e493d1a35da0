"""Train a tiny masked-diffusion transformer on an offline task (LLaDA / MDLM objective).

Each step draws a batch from the task, picks a mask ratio t ~ U(mask_ratio_floor, 1) per
sequence, replaces each maskable token by [MASK] with probability t, and minimises
    loss = sum over masked tokens of cross-entropy / t, divided by (batch * maskable length),
the negative ELBO of masked diffusion per token (Nie et al. 2025, LLaDA Eq. 3 / Sahoo et al. 2024).
For puzzles only the answer is maskable; for text the whole window is.

Everything is seeded: the initial weights, the data stream and the mask draws each come from their
own torch.Generator derived from TrainConfig.seed, so two runs with the same config and thread
count produce the same weights.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
import time
from dataclasses import dataclass, field, fields

import torch
import torch.nn.functional as F
from tqdm import tqdm

from npu.models.decoding import DecodeConfig
from npu.models.transformer import MaskedDiffusionTransformer, ModelConfig, build_model


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings for one training run.

    seed: initial weights, data and mask draws all derive from it.
    steps, batch_size: number of AdamW steps and sequences per step.
    lr, min_lr_ratio, warmup_steps: linear warm-up to lr, then cosine decay to lr * min_lr_ratio.
    decay_steps: the step the cosine reaches lr * min_lr_ratio, after which the rate stays there;
        0 means `steps`. With early stopping, decay_steps < steps decays on the schedule the model
        usually needs and leaves the steps after it, at the floor rate, as a margin for a slow seed.
    weight_decay: AdamW decay on matrices (not on norms, biases or embeddings).
    beta1, beta2: AdamW moments.
    grad_clip: global gradient-norm clip (0 disables).
    mask_ratio_floor: the smallest mask ratio t (the 'eps' of LLaDA), keeps 1/t bounded.
    eval_every: every this many steps (and at the end) the loss on a fixed held-out batch is
        logged; 0 logs it only at the end.
    eval_batch_size: size of that held-out batch.
    num_threads: torch.set_num_threads for the run (0 keeps the current setting).
    block_fraction, block_length: the share of sequences masked the way block-diffusion decoding
        sees them (see `block_diffusion_masks`) instead of uniformly at ratio t; 0 disables.
    stratified_t: draw the batch's mask ratios t stratified over (floor, 1) - one per equal slice,
        in a random order - rather than independently: the same expected loss with a smaller
        variance (the low-discrepancy sampler of Kingma et al. 2021, used by MDLM).
    stop_exact_match, stop_every, stop_prompts, stop_threshold: early stopping. Every stop_every
        steps the model decodes stop_prompts fixed held-out prompts in every cache mode with the
        fixed-k rule and the threshold rule (stop_threshold) - the decodings the evaluate stage
        scores - and training ends at the first check where each scores at least
        stop_exact_match; the last step is checked too, so the log says whether the target was met
        (TrainLog.target_met). 0 disables; `steps` is then the most it trains.
    ema_decay: keep an exponential moving average of the weights (decay per step, with the usual
        warm-up min(ema_decay, (1 + step) / (10 + step))) and use it for the held-out loss, the
        early-stopping checks and the returned model; 0 disables. The averaged weights do not jump
        with each noisy step, so a check that passes is not a lucky snapshot (MDLM keeps one too).
    bf16_autocast: run the forward and backward pass under torch.autocast("cpu", bfloat16) - matmuls
        in bfloat16, weights, AdamW state and the loss in float32 - about 1.6x fewer CPU seconds per
        step on CPUs with bfloat16 dot products (docs/training.md); still deterministic for a seed.
    """

    seed: int = 0
    steps: int = 1000
    batch_size: int = 128
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 50
    decay_steps: int = 0
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    mask_ratio_floor: float = 1e-3
    eval_every: int = 100
    eval_batch_size: int = 256
    num_threads: int = 2
    block_fraction: float = 0.0
    block_length: int = 0
    stratified_t: bool = False
    stop_exact_match: float = 0.0
    stop_every: int = 0
    stop_prompts: int = 512
    stop_threshold: float = 0.9
    ema_decay: float = 0.0
    bf16_autocast: bool = False

    def __post_init__(self) -> None:
        for key in ("steps", "batch_size", "eval_batch_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"training.{key} must be at least 1, got {getattr(self, key)}")
        for key in ("warmup_steps", "decay_steps", "eval_every", "num_threads"):
            if getattr(self, key) < 0:
                raise ValueError(f"training.{key} must not be negative, got {getattr(self, key)}")
        if not self.lr > 0:
            raise ValueError(f"training.lr must be positive, got {self.lr}")
        if not 0 < self.mask_ratio_floor < 1:
            raise ValueError(f"training.mask_ratio_floor must be in (0, 1), got {self.mask_ratio_floor}")
        if not 0 <= self.block_fraction <= 1:
            raise ValueError(f"training.block_fraction must be in [0, 1], got {self.block_fraction}")
        if self.block_fraction > 0 and self.block_length < 1:
            raise ValueError(f"training.block_fraction={self.block_fraction} needs training.block_length >= 1, "
                             f"got {self.block_length}")
        if not 0 <= self.stop_exact_match <= 1:
            raise ValueError(f"training.stop_exact_match must be in [0, 1], got {self.stop_exact_match}")
        if self.stop_exact_match > 0 and (self.stop_every < 1 or self.stop_prompts < 1):
            raise ValueError(f"training.stop_exact_match={self.stop_exact_match} needs training.stop_every >= 1 "
                             f"and training.stop_prompts >= 1, got {self.stop_every} and {self.stop_prompts}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"training.ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0 <= self.stop_threshold <= 1:
            raise ValueError(f"training.stop_threshold must be in [0, 1], got {self.stop_threshold}")

    @classmethod
    def from_dict(cls, values: dict, where: str = "training") -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(known)}")
        return cls(**values)


@dataclass
class TrainLog:
    """What happened during training: per-step loss and lr, periodic held-out loss, wall time."""

    losses: list[float] = field(default_factory=list)
    learning_rates: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    eval_losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    num_threads: int = 0
    stop_checks: list[dict] = field(default_factory=list)
    stopped_at_step: int | None = None  # the step early stopping ended the run at (None: it ran every step)
    target_met: bool | None = None  # whether the last check met stop_exact_match (None: no checks)

    def to_dict(self) -> dict:
        return {
            "final_loss": self.losses[-1] if self.losses else None,
            "final_eval_loss": self.eval_losses[-1] if self.eval_losses else None,
            "steps": len(self.losses),
            "stopped_at_step": self.stopped_at_step,
            "target_met": self.target_met,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "num_threads": self.num_threads,
            "eval_steps": self.eval_steps,
            "eval_losses": self.eval_losses,
            "stop_checks": self.stop_checks,
        }


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up for warmup_steps, then cosine decay to lr * min_lr_ratio at decay_steps (0: the
    last step), constant after it."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    decay_steps = max(1, (config.decay_steps or config.steps) - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / decay_steps)
    floor = config.lr * config.min_lr_ratio
    return floor + (config.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def block_diffusion_masks(masked: torch.Tensor, t: torch.Tensor, maskable: torch.Tensor, block_length: int,
                          fraction: float, generator: torch.Generator,
                          mask_ratio_floor: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace a `fraction` of the rows' masks by the pattern semi-autoregressive decoding meets:
    a random block of the maskable region masked at ratio t, every later position masked, every
    earlier one visible. Such rows' t becomes their realised mask ratio (the 1/t weight).

    Uniform masks rarely hide a whole suffix while the answer's start is half decoded, yet every
    block decode but the last begins there; without these rows a tiny sorter repeats the digit
    before a block boundary in about 1% of answers.
    """
    n_maskable = int(maskable.sum())
    if n_maskable % block_length:
        raise ValueError(f"block_length={block_length} does not divide the {n_maskable} maskable positions")
    batch = masked.shape[0]
    rank = torch.cumsum(maskable.long(), dim=0) - 1  # index within the maskable region
    chosen = torch.rand(batch, 1, generator=generator) < fraction
    start = torch.randint(0, n_maskable // block_length, (batch, 1), generator=generator) * block_length
    in_block = (rank >= start) & (rank < start + block_length)
    coin = torch.rand(masked.shape, generator=generator) < t
    block_masked = maskable & ((rank >= start + block_length) | (in_block & coin))
    ratio = (block_masked.sum(dim=1, keepdim=True) / n_maskable).clamp(min=mask_ratio_floor)
    return torch.where(chosen, block_masked, masked), torch.where(chosen, ratio, t)


def mask_ratio_draws(batch: int, generator: torch.Generator, stratified: bool = False) -> torch.Tensor:
    """Uniform draws u in [0, 1), one per row (batch, 1): independent, or stratified - row i of a
    random permutation lies in [i / batch, (i + 1) / batch) - with the same marginal distribution."""
    u = torch.rand(batch, 1, generator=generator)
    if not stratified:
        return u
    slot = torch.randperm(batch, generator=generator).unsqueeze(1)
    return (slot + u) / batch


def masked_diffusion_loss(
    model: MaskedDiffusionTransformer,
    tokens: torch.Tensor,
    maskable: torch.Tensor,
    mask_id: int,
    generator: torch.Generator,
    mask_ratio_floor: float = 1e-3,
    block_length: int = 0,
    block_fraction: float = 0.0,
    stratified_t: bool = False,
) -> torch.Tensor:
    """LLaDA / MDLM loss of one batch: masked-token cross-entropy weighted by 1/t, per maskable token."""
    n_maskable = int(maskable.sum())
    if n_maskable == 0:
        raise ValueError("masked_diffusion_loss: no position is maskable, the loss would be 0/0")
    batch = tokens.shape[0]
    t = mask_ratio_floor + (1.0 - mask_ratio_floor) * mask_ratio_draws(batch, generator, stratified_t)
    masked = (torch.rand(tokens.shape, generator=generator) < t) & maskable
    if block_fraction > 0:
        masked, t = block_diffusion_masks(masked, t, maskable, block_length, block_fraction, generator,
                                          mask_ratio_floor)
    noisy = torch.where(masked, torch.full_like(tokens, mask_id), tokens)
    logits = model(noisy)
    token_loss = F.cross_entropy(logits.transpose(1, 2).float(), tokens, reduction="none")
    weighted = (token_loss * masked / t).sum()
    return weighted / (batch * n_maskable)


def _parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Decay matrices of the linear layers; leave norms, biases and the embedding alone."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        is_matrix = param.dim() == 2 and not name.startswith("embed")
        (decay if is_matrix else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def check_model_matches_task(model_config: ModelConfig, task) -> None:
    """The model's vocabulary, mask id and context must fit the task."""
    if model_config.vocab_size != len(task.vocab):
        raise ValueError(
            f"model {model_config.name!r}: vocab_size={model_config.vocab_size} but task "
            f"{task.name!r} has {len(task.vocab)} tokens"
        )
    if model_config.mask_token_id != task.mask_id:
        raise ValueError(
            f"model {model_config.name!r}: mask_token_id={model_config.mask_token_id} but task "
            f"{task.name!r} puts [MASK] at {task.mask_id}"
        )
    if model_config.max_seq_len < task.sequence_length:
        raise ValueError(
            f"model {model_config.name!r}: max_seq_len={model_config.max_seq_len} is shorter than "
            f"task {task.name!r} sequences ({task.sequence_length})"
        )


# The held-out prompts of the early-stopping check: one fixed draw for every model and seed, apart
# from the evaluate stage's prompts (seed 1234, npu.stages.evaluate).
STOP_PROMPT_SEED = 4321


def stop_decodings(config: TrainConfig, decoding: DecodeConfig) -> list[DecodeConfig]:
    """The decodings the early-stopping check scores: every cache mode, threshold rule then fixed-k,
    the dual cache (the one that reuses the most stale K/V, the likeliest to fail) first."""
    return [dataclasses.replace(decoding, cache=cache, threshold=threshold)
            for cache in ("dual", "prefix", "none") for threshold in (config.stop_threshold, None)]


def train_model(
    model_config: ModelConfig, task, train_config: TrainConfig, progress: bool = True,
    decoding: DecodeConfig | None = None,
) -> tuple[MaskedDiffusionTransformer, TrainLog]:
    """Train a fresh model on `task`; returns it in eval mode together with its log.

    `decoding` is the model's decoding recipe, which early stopping (train_config.stop_exact_match)
    decodes the held-out prompts with."""
    check_model_matches_task(model_config, task)
    if train_config.stop_exact_match > 0:
        if decoding is None:
            raise ValueError(f"training {model_config.name!r}: stop_exact_match needs the model's decoding recipe")
        if not hasattr(task, "answer_length"):
            raise ValueError(f"training {model_config.name!r}: stop_exact_match needs a task with exact-match "
                             f"answers, not {task.name!r}")
    previous_threads = torch.get_num_threads()
    if train_config.num_threads:
        torch.set_num_threads(train_config.num_threads)
    try:
        return _train(model_config, task, train_config, progress, decoding)
    finally:
        torch.set_num_threads(previous_threads)


def _stop_check(model, task, config: TrainConfig, decoding: DecodeConfig) -> tuple[bool, dict]:
    """Exact match of the held-out prompts decoded each way, until one falls short of the target."""
    from npu.models.evaluate import evaluate_exact_match

    scores = {}
    for recipe in stop_decodings(config, decoding):
        result = evaluate_exact_match(model, task, recipe, n_samples=config.stop_prompts, seed=STOP_PROMPT_SEED,
                                      batch_size=config.stop_prompts)
        scores[f"{recipe.cache}/{result.rule}"] = result.accuracy
        if result.accuracy < config.stop_exact_match:
            return False, scores
    return True, scores


def _train(model_config, task, config: TrainConfig, progress: bool, decoding: DecodeConfig | None):
    torch.manual_seed(config.seed)
    model = build_model(model_config).init_weights(config.seed)
    model.train()
    data_generator = torch.Generator().manual_seed(config.seed + 1)
    mask_generator = torch.Generator().manual_seed(config.seed + 2)
    held_out_generator = torch.Generator().manual_seed(config.seed + 1_000_003)
    held_out_tokens, held_out_maskable = task.sample_training_batch(config.eval_batch_size, held_out_generator)
    optimizer = torch.optim.AdamW(
        _parameter_groups(model, config.weight_decay), lr=config.lr, betas=(config.beta1, config.beta2)
    )
    ema = copy.deepcopy(model).eval() if config.ema_decay > 0 else None
    scored = ema if ema is not None else model  # the weights that are checked and returned
    log = TrainLog(num_threads=torch.get_num_threads())
    bar = tqdm(total=config.steps, disable=not progress, file=sys.stderr, desc=f"train {model_config.name}")
    start, cpu_start = time.perf_counter(), time.process_time()
    for step in range(config.steps):
        lr = learning_rate(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        tokens, maskable = task.sample_training_batch(config.batch_size, data_generator)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16_autocast):
            loss = masked_diffusion_loss(model, tokens, maskable, task.mask_id, mask_generator,
                                         config.mask_ratio_floor, config.block_length, config.block_fraction,
                                         config.stratified_t)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training {model_config.name!r}: loss became {loss.item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        if ema is not None:
            with torch.no_grad():
                decay = min(config.ema_decay, (1 + step) / (10 + step))
                for averaged, current in zip(ema.parameters(), model.parameters()):
                    averaged.lerp_(current, 1.0 - decay)
        log.losses.append(loss.item())
        log.learning_rates.append(lr)
        is_last = step == config.steps - 1
        if is_last or (config.eval_every and (step + 1) % config.eval_every == 0):
            log.eval_steps.append(step + 1)
            log.eval_losses.append(_held_out_loss(scored, task, held_out_tokens, held_out_maskable, config))
            bar.set_postfix(loss=f"{log.losses[-1]:.4f}", held_out=f"{log.eval_losses[-1]:.4f}")
        bar.update(1)
        if config.stop_exact_match > 0 and (is_last or (step + 1) % config.stop_every == 0):
            passed, scores = _stop_check(scored, task, config, decoding)
            model.train()
            log.stop_checks.append({"step": step + 1, "exact_match": scores})
            log.target_met = passed
            worst = min(scores, key=scores.get)
            outcome = ("; target met" + ("" if is_last else ", stopping")) if passed else ""
            bar.write(f"train {model_config.name}: step {step + 1}: held-out exact match "
                      f"{scores[worst]:.4f} ({worst}){outcome}", file=sys.stderr)
            if passed and not is_last:
                log.stopped_at_step = step + 1
                if log.eval_steps[-1:] != [step + 1]:
                    log.eval_steps.append(step + 1)
                    log.eval_losses.append(_held_out_loss(scored, task, held_out_tokens, held_out_maskable, config))
                break
    bar.close()
    log.seconds = time.perf_counter() - start
    log.cpu_seconds = time.process_time() - cpu_start
    scored.eval()
    return scored, log


@torch.no_grad()
def _held_out_loss(model, task, tokens, maskable, config: TrainConfig) -> float:
    """Loss on a fixed batch with fixed mask draws, so successive values are comparable."""
    model.eval()
    generator = torch.Generator().manual_seed(config.seed + 2_000_003)
    loss = masked_diffusion_loss(model, tokens, maskable, task.mask_id, generator, config.mask_ratio_floor)
    model.train()
    return loss.item()
