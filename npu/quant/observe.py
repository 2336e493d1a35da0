"""Hand each layer's queries to the KV cache, for attention-aware quantization choices.

What matters in attention is the logit error q . (k - k_hat), not the key error alone: a channel
where queries are small can take a large key error. The NPU has the block's queries in vector
SRAM when it writes the block's keys (Q, K and V come from the same pass), so BAOS may weigh key
errors by per-channel query energy. The model's cache interface only passes K and V, so this
module observes the queries with forward hooks and calls `cache.observe_queries(layer, q)`
(q after RoPE, shape (batch, n_heads, tokens, head_dim)) right before that layer's `write`.
Caches without that method are left alone.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from npu.models.transformer import Attention, MaskedDiffusionTransformer, apply_rope


@dataclass
class _AttentionCall:
    """Arguments of the attention call in flight (set by the pre-hook, used by the q_proj hook)."""

    arguments: dict = field(default_factory=dict)


_ATTENTION_SIGNATURE = inspect.signature(Attention.forward)


@contextmanager
def observe_queries(model: MaskedDiffusionTransformer):
    """While active, every attention layer with a cache passes its RoPE'd queries to the cache."""
    handles = []
    for module in model.modules():
        if not isinstance(module, Attention):
            continue
        call = _AttentionCall()

        def remember(attention, args, kwargs, call=call):
            bound = _ATTENTION_SIGNATURE.bind(attention, *args, **kwargs)
            bound.apply_defaults()
            call.arguments = dict(bound.arguments)

        def hand_over(projection, inputs, output, attention=module, call=call):
            cache = call.arguments.get("cache")
            if cache is None or not hasattr(cache, "observe_queries"):
                return
            c = attention.config
            batch, length, _ = output.shape
            q = output.view(batch, length, c.n_heads, c.head_dim).transpose(1, 2)
            cache.observe_queries(call.arguments["layer"], apply_rope(q, call.arguments["cos"], call.arguments["sin"]))

        handles.append(module.register_forward_pre_hook(remember, with_kwargs=True))
        handles.append(module.q_proj.register_forward_hook(hand_over))
    try:
        yield model
    finally:
        for handle in handles:
            handle.remove()


def query_channel_energy(q: torch.Tensor, n_kv_heads: int, reduce: str = "mean") -> torch.Tensor:
    """q_c^2 per (batch, kv_head, channel) over the query rows ('mean' or 'max', the latter is
    `vamax` squared), summed over the query heads sharing a KV head."""
    batch, n_heads, tokens, head_dim = q.shape
    squared = q.detach().to(torch.float32).pow(2)
    energy = squared.mean(dim=-2) if reduce == "mean" else squared.amax(dim=-2)  # (batch, n_heads, head_dim)
    return energy.view(batch, n_kv_heads, n_heads // n_kv_heads, head_dim).sum(dim=2)
