"""The masked-diffusion transformer that every other stage reasons about.

One definition serves LLaDA-8B, Dream-7B and the tiny models trained here: pre-norm blocks with
RMSNorm, rotary position embeddings, bidirectional (unmasked) attention with optional grouped
KV heads and QKV bias, and a SwiGLU MLP. Nothing is causal: a dLLM sees the whole sequence.

A single forward path covers every cache mode. The caller names the absolute positions of the
query tokens; each layer writes their K/V into those slots of the cache (in place) and attends
over every slot of the cache. A full refresh passes all positions, Fast-dLLM's prefix cache
passes the block and the suffix, the dual cache passes only the block. Keys are cached after
RoPE, so a cached slot needs no further work when it is read.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    """Shape and numerics of one masked-diffusion transformer."""

    name: str
    vocab_size: int
    mask_token_id: int
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    d_ff: int
    max_seq_len: int
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    qkv_bias: bool = False

    def __post_init__(self) -> None:
        if self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"model {self.name!r}: n_heads={self.n_heads} is not a multiple of "
                f"n_kv_heads={self.n_kv_heads}"
            )
        if self.head_dim % 2:
            raise ValueError(f"model {self.name!r}: head_dim={self.head_dim} must be even for RoPE")
        if not 0 <= self.mask_token_id < self.vocab_size:
            raise ValueError(
                f"model {self.name!r}: mask_token_id={self.mask_token_id} is outside the "
                f"vocabulary of {self.vocab_size}"
            )

    @property
    def kv_bytes_per_token_bf16(self) -> int:
        """K and V of one position over all layers, 2 bytes per element."""
        return 2 * self.n_layers * self.n_kv_heads * self.head_dim * 2

    def to_dict(self) -> dict:
        return asdict(self)


class KVCache:
    """Per-layer K/V slots for every position of the sequence (batch, kv_heads, seq, head_dim).

    Slots are overwritten in place by each forward pass that names their positions, which is
    how dLLM caches are refreshed: block-wise, not append-only. Quantized caches subclass this
    and override `write` (quantize on store) and/or `read` (dequantize on load).
    """

    def __init__(self, config: ModelConfig, batch: int, seq_len: int, dtype=torch.float32, device=None):
        shape = (batch, config.n_kv_heads, seq_len, config.head_dim)
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(config.n_layers)]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(config.n_layers)]
        self.seq_len = seq_len

    def write(self, layer: int, positions: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store the K/V of the query positions into their slots (in place)."""
        self.k[layer][:, :, positions] = k.to(self.k[layer].dtype)
        self.v[layer][:, :, positions] = v.to(self.v[layer].dtype)

    def read(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """K and V of every slot, as attention sees them."""
        return self.k[layer], self.v[layer]

    def clone(self) -> "KVCache":
        copy = object.__new__(KVCache)
        copy.k = [t.clone() for t in self.k]
        copy.v = [t.clone() for t in self.v]
        copy.seq_len = self.seq_len
        return copy


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables (len(positions), head_dim) for the rotate-half RoPE layout of Llama/LLaDA."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    angles = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().to(torch.float32), angles.sin().to(torch.float32)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return x * cos + rotate_half(x) * sin


class Attention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config
        self.q_proj = nn.Linear(c.d_model, c.n_heads * c.head_dim, bias=c.qkv_bias)
        self.k_proj = nn.Linear(c.d_model, c.n_kv_heads * c.head_dim, bias=c.qkv_bias)
        self.v_proj = nn.Linear(c.d_model, c.n_kv_heads * c.head_dim, bias=c.qkv_bias)
        self.o_proj = nn.Linear(c.n_heads * c.head_dim, c.d_model, bias=False)

    def forward(self, x, cos, sin, positions, cache=None, layer=0):
        c = self.config
        batch, length, _ = x.shape
        q = self.q_proj(x).view(batch, length, c.n_heads, c.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(batch, length, c.n_kv_heads, c.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(batch, length, c.n_kv_heads, c.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            cache.write(layer, positions, k, v)
            k, v = (t.to(q.dtype) for t in cache.read(layer))
        group = c.n_heads // c.n_kv_heads
        if group > 1:
            k = k.repeat_interleave(group, dim=1)
            v = v.repeat_interleave(group, dim=1)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(c.head_dim)
        out = scores.softmax(dim=-1) @ v
        return self.o_proj(out.transpose(1, 2).reshape(batch, length, c.n_heads * c.head_dim))


class SwiGLU(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.gate_proj = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.up_proj = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.down_proj = nn.Linear(config.d_ff, config.d_model, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.attn_norm = RMSNorm(config.d_model, config.norm_eps)
        self.attn = Attention(config)
        self.mlp_norm = RMSNorm(config.d_model, config.norm_eps)
        self.mlp = SwiGLU(config)

    def forward(self, x, cos, sin, positions, cache=None, layer=0):
        x = x + self.attn(self.attn_norm(x), cos, sin, positions, cache, layer)
        return x + self.mlp(self.mlp_norm(x))


class MaskedDiffusionTransformer(nn.Module):
    """Token ids in, per-position vocabulary logits out; bidirectional, no causal mask."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.final_norm = RMSNorm(config.d_model, config.norm_eps)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)

    def init_weights(self, seed: int) -> "MaskedDiffusionTransformer":
        """Deterministic GPT-style initialisation (normal 0.02, zero biases, unit norms)."""
        generator = torch.Generator().manual_seed(seed)
        for name, param in self.named_parameters():
            with torch.no_grad():
                if name.endswith("norm.weight"):
                    param.fill_(1.0)
                elif name.endswith("bias"):
                    param.zero_()
                else:
                    param.copy_(torch.randn(param.shape, generator=generator) * 0.02)
        return self

    def forward(
        self,
        tokens: torch.Tensor,
        positions: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """Logits (batch, len(positions), vocab) for the query tokens at `positions`.

        Without a cache the tokens are the whole sequence. With a cache, the query tokens' K/V
        overwrite their slots and attention runs over all `cache.seq_len` slots.
        """
        if positions is None:
            positions = torch.arange(tokens.shape[1], device=tokens.device)
        if tokens.shape[1] != positions.shape[0]:
            raise ValueError(f"{tokens.shape[1]} query tokens but {positions.shape[0]} positions")
        cos, sin = rope_cos_sin(positions, self.config.head_dim, self.config.rope_theta)
        x = self.embed(tokens)
        cos, sin = cos.to(x.device, x.dtype), sin.to(x.device, x.dtype)
        for layer, block in enumerate(self.blocks):
            x = block(x, cos, sin, positions, cache, layer)
        return self.lm_head(self.final_norm(x))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def build_model(config: ModelConfig, device: str | torch.device = "cpu") -> MaskedDiffusionTransformer:
    """Instantiate a model; on device 'meta' no weight memory is allocated (shape-only work)."""
    with torch.device(device):
        return MaskedDiffusionTransformer(config)
