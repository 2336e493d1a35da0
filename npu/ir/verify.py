"""Checking an exported step graph against the PyTorch model it came from.

The numpy interpreter runs the graph on the same inputs as one step of `npu.models.decoding`;
logits and caches are compared by max |a - b| / max |b|, sampled tokens and commits exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from npu.ir.export import export_step
from npu.ir.graph import Graph
from npu.ir.interpret import run_graph, weights_from_model
from npu.models.decoding import commit_mask, commit_tokens, forbid_mask_token, query_range, token_confidence
from npu.models.transformer import KVCache, MaskedDiffusionTransformer


@dataclass(frozen=True)
class StepState:
    """A mid-generation step: the sequence, the cache from a full pass over it, and what runs."""

    tokens: torch.Tensor  # (batch, seq) with some [MASK] left in the current block
    cache: KVCache | None  # None for cache mode "none"
    query: tuple[int, int]  # [start, stop) of the positions the step computes
    block: tuple[int, int]  # [start, stop) of the current block (absolute positions)

    @property
    def sample(self) -> tuple[int, int]:
        """The block as a range inside the query."""
        return self.block[0] - self.query[0], self.block[1] - self.query[0]


def step_state(model: MaskedDiffusionTransformer, tokens: torch.Tensor, block: tuple[int, int], cache_mode: str) -> StepState:
    """Build the state of a step on `tokens`; cached modes get the cache of a full forward pass."""
    seq_len = tokens.shape[1]
    cache = None
    if cache_mode != "none":
        cache = KVCache(model.config, tokens.shape[0], seq_len)
        with torch.no_grad():
            model(tokens, torch.arange(seq_len), cache)
    in_block_step = 1  # a step after the block's refresh: what the cached modes reuse the cache for
    return StepState(tokens, cache, query_range(cache_mode, in_block_step, *block, seq_len), block)


def reference_step(model: MaskedDiffusionTransformer, state: StepState, k=None, threshold=None) -> dict:
    """One step as `npu.models.decoding` computes it, on PyTorch."""
    cache = state.cache.clone() if state.cache is not None else None
    query, sample = state.query, state.sample
    with torch.no_grad():
        logits = model(state.tokens[:, query[0]:query[1]], torch.arange(*query), cache)
    block_logits = forbid_mask_token(logits[:, sample[0]:sample[1]], model.config.mask_token_id)
    x0, confidence = token_confidence(block_logits)
    eligible = state.tokens[:, state.block[0]:state.block[1]] == model.config.mask_token_id
    commit = commit_mask(confidence, eligible, k=k, threshold=threshold)
    block_tokens = state.tokens[:, state.block[0]:state.block[1]]
    return {"logits": logits, "x0": x0, "confidence": confidence, "committed": commit,
            "tokens_out": commit_tokens(block_tokens, x0, commit), "cache": cache}


def graph_inputs(graph: Graph, state: StepState, mask_id: int, k=None, threshold=None) -> dict:
    """The interpreter inputs of `graph` for `state`."""
    query = state.query
    inputs = {
        "tokens": state.tokens[:, query[0]:query[1]],
        "positions": np.arange(*query),
        "eligible": state.tokens[:, state.block[0]:state.block[1]] == mask_id,
    }
    inputs.update({"k": k} if k is not None else {"threshold": np.float32(threshold)})
    if graph.metadata["cache_mode"] != "none":
        for layer in range(len(state.cache.k)):
            inputs[f"cache_k.{layer}"], inputs[f"cache_v.{layer}"] = state.cache.k[layer], state.cache.v[layer]
    return inputs


def relative_error(actual: np.ndarray, expected: torch.Tensor | np.ndarray) -> float:
    """max |a - b| / max |b|: the error measure of logits and caches."""
    expected = expected.numpy() if isinstance(expected, torch.Tensor) else expected
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


@dataclass(frozen=True)
class StepCheck:
    """How closely the interpreted graph reproduces PyTorch on one step."""

    logits_max_rel_error: float
    cache_max_rel_error: float  # 0 for cache mode "none"
    x0_equal: bool
    committed_equal: bool
    tokens_equal: bool

    @property
    def passed(self) -> bool:
        return self.x0_equal and self.committed_equal and self.tokens_equal


def check_step(model: MaskedDiffusionTransformer, state: StepState, cache_mode: str, k: int = 1) -> tuple[Graph, StepCheck]:
    """Export the step `state` describes, run it in numpy, and compare with PyTorch."""
    batch = state.tokens.shape[0]
    graph = export_step(model, cache_mode=cache_mode, query_length=state.query[1] - state.query[0],
                        kv_length=state.tokens.shape[1], batch=batch, sample_range=state.sample)
    k_rows = torch.full((batch,), k, dtype=torch.long)
    expected = reference_step(model, state, k=k_rows)
    out = run_graph(graph, weights_from_model(model),
                    graph_inputs(graph, state, model.config.mask_token_id, k=k_rows.numpy().astype(np.int32)))
    cache_error = 0.0
    if cache_mode != "none":
        cache_error = max(
            relative_error(out[f"cache_{kind}.{layer}.out"], getattr(expected["cache"], kind)[layer])
            for layer in range(model.config.n_layers) for kind in ("k", "v")
        )
    return graph, StepCheck(
        logits_max_rel_error=relative_error(out["logits"], expected["logits"]),
        cache_max_rel_error=cache_error,
        x0_equal=bool(np.array_equal(out["x0"], expected["x0"].numpy())),
        committed_equal=bool(np.array_equal(out["committed"], expected["committed"].numpy())),
        tokens_equal=bool(np.array_equal(out["tokens_out"], expected["tokens_out"].numpy())),
    )
