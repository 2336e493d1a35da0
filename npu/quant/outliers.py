"""Give a tiny model LLM-like K/V outlier channels without changing what it computes.

Large LLMs (LLaMA, and LLaDA which shares its recipe) have a few key channels far larger than the
rest - the reason smoothing and rotation exist - while 1M-parameter models trained for minutes
have mild channels. This reparametrisation adds such channels exactly: for chosen RoPE pairs
(i, i + head_dim/2) of each KV head, the key projection rows are multiplied by `key_gain` and the
query rows of every query head reading that KV head by 1 / key_gain (q . k is unchanged, and a
factor shared by a RoPE pair commutes with RoPE); for chosen value channels, the value rows are
multiplied by `value_gain` and the matching o_proj input columns by 1 / value_gain. In exact
arithmetic the logits are identical; only quantization sees the difference.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from npu.models.transformer import MaskedDiffusionTransformer


@dataclass(frozen=True)
class OutlierSpec:
    """How many channels per KV head become outliers, by how much, chosen with which seed."""

    key_pairs: int = 2
    key_gain: float = 16.0
    value_channels: int = 2
    value_gain: float = 8.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.key_pairs < 0 or self.value_channels < 0:
            raise ValueError("OutlierSpec: channel counts must be >= 0")
        if not (self.key_gain > 0 and self.value_gain > 0):
            raise ValueError("OutlierSpec: gains must be positive")


def inject_kv_outliers(model: MaskedDiffusionTransformer, spec: OutlierSpec = OutlierSpec()) -> MaskedDiffusionTransformer:
    """A copy of `model` with outlier K/V channels; its float32 outputs match the original's."""
    c = model.config
    half = c.head_dim // 2
    if spec.key_pairs > half or spec.value_channels > c.head_dim:
        raise ValueError(f"OutlierSpec asks for more channels than head_dim={c.head_dim} has")
    out = copy.deepcopy(model).eval()
    generator = torch.Generator().manual_seed(spec.seed)
    group = c.n_heads // c.n_kv_heads
    with torch.no_grad():
        for block in out.blocks:
            attn = block.attn
            for kv_head in range(c.n_kv_heads):
                pairs = torch.randperm(half, generator=generator)[: spec.key_pairs]
                key_channels = torch.cat([pairs, pairs + half])
                value_channels = torch.randperm(c.head_dim, generator=generator)[: spec.value_channels]
                k_rows = kv_head * c.head_dim + key_channels
                v_rows = kv_head * c.head_dim + value_channels
                attn.k_proj.weight[k_rows] *= spec.key_gain
                attn.v_proj.weight[v_rows] *= spec.value_gain
                if attn.k_proj.bias is not None:
                    attn.k_proj.bias[k_rows] *= spec.key_gain
                    attn.v_proj.bias[v_rows] *= spec.value_gain
                for q_head in range(kv_head * group, (kv_head + 1) * group):
                    q_rows = q_head * c.head_dim + key_channels
                    attn.q_proj.weight[q_rows] /= spec.key_gain
                    if attn.q_proj.bias is not None:
                        attn.q_proj.bias[q_rows] /= spec.key_gain
                    attn.o_proj.weight[:, q_head * c.head_dim + value_channels] /= spec.value_gain
    return out
