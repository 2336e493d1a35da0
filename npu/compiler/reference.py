"""The step under NPU arithmetic, in numpy: the same kernels as the program, op by op.

`reference_step` walks the step exactly as `lower.compile_spec` emits it, calling the
`reference_<op>` twin of each `emit_<op>`. Its state mirrors the NPU's DRAM: token ids and the
per-layer K/V slots. Weights are what the DMA delivers (`layout.reference_weights`).

Widths. The reference computes at the model's true d_model and d_ff (`layout.true_width_weights`
slices the program's zero padding off), so a ragged model (d_model 96 on MLEN 64) is checked
against the unpadded math, not against the compiler's own padding: its ragged GEMMs and row sums
are the zero-padded ones that numerics defines (`linear.reference_gemm`, `chained_row_sum`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from npu.compiler.attention_reference import reference_attention
from npu.compiler.context import StepSpec, rounder
from npu.compiler.kv_quant import reference_kv
from npu.compiler.layout import Shapes, rope_tables, true_width_weights
from npu.compiler.linear import reference_linear
from npu.compiler.sampling import check_sampling, reference_commit, reference_lm_head
from npu.compiler.vector_ops import (
    reference_add,
    reference_embedding,
    reference_rmsnorm,
    reference_rope,
    reference_silu_mul,
)
from npu.hw.numerics import round_to_format


@dataclass
class ReferenceState:
    """Token ids of the whole sequence and K/V slots (layer -> (kv_heads, kv_slots, slot))."""

    tokens: np.ndarray
    k: list[np.ndarray]
    v: list[np.ndarray]
    baos: object | None = None  # KV quantization: npu.compiler.kv_quant.BaosState, made by the first step

    @classmethod
    def start(cls, shapes: Shapes, tokens: np.ndarray) -> "ReferenceState":
        m = shapes.model
        shape = (m.n_kv_heads, shapes.kv_slots, shapes.slot)
        return cls(np.asarray(tokens, np.int32).copy(), [np.zeros(shape, np.float32) for _ in range(m.n_layers)],
                   [np.zeros(shape, np.float32) for _ in range(m.n_layers)])


@dataclass
class StepOutput:
    x0: np.ndarray
    confidence: np.ndarray
    committed: np.ndarray
    tokens: np.ndarray  # the sampled rows' tokens after the commit
    logits: np.ndarray | None = None  # reference only: the LM head tiles as the argmax saw them


def _heads(x: np.ndarray, heads: int, slot: int) -> np.ndarray:
    return x.reshape(x.shape[0], heads, slot).transpose(1, 0, 2)


def reference_step(spec: StepSpec, weights: dict[str, np.ndarray], state: ReferenceState, q0: int, s0: int,
                   k: int = 0, tau: float = 0.9, temperature: float = 0.0,
                   noise: np.ndarray | None = None) -> StepOutput:
    """One step at query positions [q0, q0 + query_length); updates `state` like the program does.

    A spec with temperature samples x0 with Gumbel noise (sample_length, vocab_size) at
    `temperature` > 0 (see sampling.reference_lm_head); greedy specs take neither.
    """
    return reference_steps(spec, weights, [state], [q0], [s0], [k], [tau], [temperature], [noise])[0]


def reference_steps(spec: StepSpec, weights: dict[str, np.ndarray], states: list[ReferenceState],
                    q0s: list[int], s0s: list[int], ks: list[int], taus: list[float],
                    temperatures: list[float] | None = None,
                    noises: list[np.ndarray | None] | None = None) -> list[StepOutput]:
    """reference_step for several generations (one state each) that run the same step spec.

    Why: `make verify` checks 50 generations per run, and the arithmetic of one step on 4-25
    query rows is mostly per-call overhead. Every operation of the step but attention and the LM
    head's sampling treats each query row on its own (the GEMMs sum each output over k in the
    matrix unit's order; norms, RoPE, SiLU and the adds are row-wise), so the generations' rows
    are stacked and each operation runs once; attention (each generation's own K/V) and the LM
    head and commit (each its own window, temperature and noise) run per generation. Each
    generation's result is bit for bit its reference_step's (tests/test_lockstep_sim.py).
    """
    spec.check()  # the compiler's own check: refuse what compile_spec refuses, before any arithmetic
    count = len(states)
    if not (len(q0s) == len(s0s) == len(ks) == len(taus) == count):
        raise ValueError(f"reference_steps: {count} states but {len(q0s)} q0, {len(s0s)} s0, {len(ks)} k, "
                         f"{len(taus)} tau")
    temperatures = [0.0] * count if temperatures is None else list(temperatures)
    noises = [None] * count if noises is None else list(noises)
    noises = [check_sampling(spec, t, noise) for t, noise in zip(temperatures, noises)]
    npu, sh, m = spec.npu, spec.shapes, spec.model
    weights = true_width_weights(weights, sh)
    rnd, mlen, vlen = rounder(npu), npu.mlen, npu.vlen
    lq, hd, slot = spec.query_length, m.head_dim, sh.slot
    group = m.n_heads // m.n_kv_heads
    rows = [slice(i * lq, (i + 1) * lq) for i in range(count)]  # generation i's query rows
    cos_table, sin_table = (rnd(t) for t in rope_tables(sh))
    cos = np.concatenate([cos_table[q0:q0 + lq, :hd] for q0 in q0s])
    sin = np.concatenate([sin_table[q0:q0 + lq, :hd] for q0 in q0s])
    tokens = np.concatenate([state.tokens[q0:q0 + lq] for state, q0 in zip(states, q0s)])
    x = reference_embedding(tokens, weights["embed.weight"])
    for layer in range(m.n_layers):
        p = f"blocks.{layer}."
        hn = reference_rmsnorm(x, weights[p + "attn_norm.weight"], m.norm_eps, rnd, vlen)
        proj = {}
        for name in ("q", "k", "v"):
            bias = weights.get(p + f"attn.{name}_proj.bias")
            proj[name] = reference_linear(hn, weights[p + f"attn.{name}_proj.weight"], bias, rnd, mlen)
        q = _heads(proj["q"], m.n_heads, slot)
        kk = _heads(proj["k"], m.n_kv_heads, slot)
        q[..., :hd] = reference_rope(q[..., :hd], cos, sin, rnd)
        kk[..., :hd] = reference_rope(kk[..., :hd], cos, sin, rnd)
        vv = _heads(proj["v"], m.n_kv_heads, slot)
        attn = np.empty((m.n_heads, count * lq, slot), np.float32)
        for i, (state, q0, s0) in enumerate(zip(states, q0s, s0s)):
            attn[:, rows[i]] = _attention(spec, state, layer, q[:, rows[i]], kk[:, rows[i]], vv[:, rows[i]], q0, s0)
        attn = attn.transpose(1, 0, 2).reshape(count * lq, m.n_heads * slot)
        x = reference_add(x, reference_linear(attn, weights[p + "attn.o_proj.weight"], None, rnd, mlen), rnd)
        hn = reference_rmsnorm(x, weights[p + "mlp_norm.weight"], m.norm_eps, rnd, vlen)
        gate = reference_linear(hn, weights[p + "mlp.gate_proj.weight"], None, rnd, mlen)
        up = reference_linear(hn, weights[p + "mlp.up_proj.weight"], None, rnd, mlen)
        down = reference_linear(reference_silu_mul(gate, up, rnd), weights[p + "mlp.down_proj.weight"], None, rnd, mlen)
        x = reference_add(x, down, rnd)
    ls = spec.sample_length
    sampled = np.concatenate([x[i * lq + s0:i * lq + s0 + ls] for i, s0 in enumerate(s0s)])
    h = reference_rmsnorm(sampled, weights["final_norm.weight"], m.norm_eps, rnd, vlen)
    outputs = []
    for i, state in enumerate(states):
        x0, confidence, logits = reference_lm_head(h[i * ls:(i + 1) * ls], weights["lm_head.weight"], m.vocab_size,
                                                   m.mask_token_id, rnd, mlen, vlen, temperatures[i], noises[i])
        start = q0s[i] + s0s[i]
        committed, tokens = reference_commit(confidence, x0, state.tokens[start:start + ls], m.mask_token_id,
                                             spec.sampling, ks[i], taus[i], rnd)
        state.tokens[start:start + ls] = tokens
        outputs.append(StepOutput(x0, confidence, committed, tokens, logits[:, :m.vocab_size]))
    return outputs


def _attention(spec: StepSpec, state: ReferenceState, layer: int, q: np.ndarray, kk: np.ndarray, vv: np.ndarray,
               q0: int, s0: int) -> np.ndarray:
    """One generation's attention of a layer (H, Lq, slot): its K/V slots written, then read."""
    npu, sh, m = spec.npu, spec.shapes, spec.model
    rnd, mlen, vlen, lq = rounder(npu), npu.mlen, npu.vlen, spec.query_length
    group = m.n_heads // m.n_kv_heads
    if sh.kv_quant is None:
        kv_fmt = npu.formats.kv_cache
        state.k[layer][:, q0:q0 + lq] = round_to_format(kk, kv_fmt)
        state.v[layer][:, q0:q0 + lq] = round_to_format(vv, kv_fmt)
        keys = np.repeat(round_to_format(state.k[layer], "bf16"), group, axis=0)
        values = np.repeat(round_to_format(state.v[layer], "bf16"), group, axis=0)
    else:
        keys, values, v_shift = reference_kv(spec, state, layer, kk, vv, q0, s0, q)
        keys, values = np.repeat(keys, group, axis=0), np.repeat(values, group, axis=0)
    scale = np.float32(1.0 / math.sqrt(m.head_dim))
    attn = reference_attention(q, keys, values, sh.seq_len, scale, rnd, mlen, vlen)
    if sh.kv_quant is not None:
        attn = rnd(attn + np.repeat(v_shift, group, axis=0)[:, None, :])
    return attn
