"""Offline calibration of static key smoothing (SmoothAttention / QServe) on calibration prompts.

The calibration run decodes (puzzles) or reads (text) sequences drawn with a seed different from
the evaluation seed, records max|K_c| per layer, KV head and channel over every K/V the cache
receives (all refreshes and steps of the dual cache), shares it over RoPE pairs, and turns it
into lambda_c = max|K_c|^alpha. The factors are fixed from then on, for every block and prompt.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from npu.models.decoding import DecodeConfig, generate
from npu.models.tasks import CharCorpus
from npu.models.transformer import KVCache, MaskedDiffusionTransformer, ModelConfig
from npu.quant.smoothing import StaticSmoothing, channel_absmax, static_factors_from_absmax

CALIBRATION_SEED = 777  # differs from the accuracy simulator's evaluation seed (1234)


class AbsmaxRecordingCache(KVCache):
    """A plain cache that also keeps the running max|K| per (layer, kv_head, channel)."""

    def __init__(self, config: ModelConfig, batch: int, seq_len: int, absmax: list[torch.Tensor]):
        super().__init__(config, batch, seq_len)
        self.absmax = absmax

    def write(self, layer, positions, k, v):
        stats = channel_absmax(k, rope_paired=True).amax(dim=0)
        self.absmax[layer] = torch.maximum(self.absmax[layer], stats)
        super().write(layer, positions, k, v)


def calibrate_static_smoothing(
    model: MaskedDiffusionTransformer,
    task,
    decode: DecodeConfig | None = None,
    n_sequences: int = 64,
    seed: int = CALIBRATION_SEED,
    alpha: float = 0.5,
) -> StaticSmoothing:
    """Per-layer static key-smoothing factors from `n_sequences` calibration sequences.

    Puzzles need `decode` (its cache mode is forced to 'dual' so that every step's K is seen);
    the text corpus uses training windows in one full forward each.
    """
    if n_sequences < 1:
        raise ValueError(f"calibrate_static_smoothing: n_sequences={n_sequences} must be >= 1")
    c = model.config
    absmax = [torch.zeros(c.n_kv_heads, c.head_dim) for _ in range(c.n_layers)]
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if isinstance(task, CharCorpus):
            windows = task.sample_windows(n_sequences, task.window_length, generator, split="train")
            cache = AbsmaxRecordingCache(c, n_sequences, task.window_length, absmax)
            model(windows, torch.arange(task.window_length), cache)
        else:
            if decode is None:
                raise ValueError(f"calibrate_static_smoothing: task {task.name!r} needs a DecodeConfig")
            prompts, _ = task.sample(n_sequences, generator)
            dual = replace(decode, cache="dual")
            generate(model, prompts, dual, cache_factory=lambda cfg, b, n: AbsmaxRecordingCache(cfg, b, n, absmax))
    return static_factors_from_absmax(absmax, alpha, c.name, n_sequences)
