"""Quantized KV caches that run inside the dLLM cache loop of `npu.models.decoding.generate`.

Every method is a `KVCache` subclass whose `write` quantizes the K/V of the positions a forward
pass names and stores the values the hardware would read back (fake quantization: quantize,
dequantize, undo any smoothing or rotation). Storing the read-back values is exact for every
method here, because each stored slot is decoded with the metadata it was written with; it
also keeps `read` free.

The dLLM loop writes in three patterns, all contiguous position ranges:
- a full refresh (every position) at each block's first step - this is how a cache learns that
  a new block began (`block_index` counts the refreshes of layer 0);
- the block plus the suffix (prefix cache) or the block alone (dual cache) at later steps,
  overwriting those slots in place.
A cache that needs to know where the current block lies gets a `BlockLayout` (gen_length,
block_length) from the decoding recipe. Without one (a single full forward, e.g. the perplexity
bench) there is no current block.

The block window (`window="block"`, every method's default): the current block's rows are kept
in bf16 and never quantized. This is the dLLM's dataflow, not a trick of one method: the block's
K/V are recomputed by every step of the block and consumed by the same pass, so they never need
to travel through DRAM - a block of 32 tokens of LLaDA-8B is 512 KiB per layer, held in vector
SRAM. (The prefix cache also recomputes the suffix every step; the suffix is still quantized
here, the conservative choice, because its rows are as many as the whole generation.) It is the
dLLM form of KIVI's full-precision window of recent tokens. `window="none"` quantizes every
write, as an AR quantizer run unchanged in the dLLM loop would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from npu.hw import numerics
from npu.models.decoding import DecodeConfig
from npu.models.transformer import KVCache, ModelConfig
from npu.quant import quantizers
from npu.quant.quantizers import DEFAULT_GROUP, check_bits, round_bf16
from npu.quant.smoothing import StaticSmoothing

WINDOWS = ("block", "none")


@dataclass(frozen=True)
class BlockLayout:
    """Where the generated blocks lie: the last `gen_length` positions, in blocks of `block_length`."""

    gen_length: int
    block_length: int

    def __post_init__(self) -> None:
        if self.gen_length < 1 or self.block_length < 1 or self.gen_length % self.block_length:
            raise ValueError(
                f"BlockLayout: block_length={self.block_length} must divide gen_length={self.gen_length} (both >= 1)"
            )

    @classmethod
    def from_decode(cls, config: DecodeConfig) -> "BlockLayout":
        return cls(config.gen_length, config.block_length)

    @property
    def num_blocks(self) -> int:
        return self.gen_length // self.block_length


def contiguous_span(positions: torch.Tensor) -> tuple[int, int]:
    """[start, end) of a write; the dLLM loop only ever writes contiguous ranges."""
    if positions.dim() != 1 or positions.numel() == 0:
        raise ValueError(f"KV cache write needs a non-empty 1-D positions tensor, got shape {tuple(positions.shape)}")
    start, end = int(positions[0]), int(positions[-1]) + 1
    if end - start != positions.numel() or not torch.equal(
        positions.cpu(), torch.arange(start, end, dtype=positions.dtype)
    ):
        raise ValueError("quantized KV caches need contiguous, increasing write positions")
    return start, end


class BlockAwareKVCache(KVCache):
    """A KVCache that knows each write's span, whether it is a full refresh, and the current block.

    Subclasses override `store(layer, start, end, k, v)` to return the values to keep.
    """

    def __init__(self, config: ModelConfig, batch: int, seq_len: int, layout: BlockLayout | None = None,
                 window: str = "block"):
        super().__init__(config, batch, seq_len)
        if layout is not None and layout.gen_length > seq_len:
            raise ValueError(f"BlockLayout gen_length={layout.gen_length} exceeds the cache's seq_len={seq_len}")
        if window not in WINDOWS:
            raise ValueError(f"KV cache window {window!r} is not one of {WINDOWS}")
        self.model_config = config
        self.layout = layout
        self.window = window
        self.block_index = -1  # no refresh seen yet

    def write(self, layer: int, positions: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        start, end = contiguous_span(positions)
        if self.is_full(start, end) and layer == 0:
            self.block_index += 1
            if self.layout is not None and self.block_index >= self.layout.num_blocks:
                raise ValueError(
                    f"KV cache saw refresh {self.block_index + 1} but the layout has {self.layout.num_blocks} "
                    f"blocks; use one cache per generate call"
                )
        if self.block_index < 0:
            raise ValueError("the first write to a quantized KV cache must be a full refresh (all positions)")
        k, v = k.to(torch.float32), v.to(torch.float32)
        k_stored, v_stored = self.store(layer, start, end, k, v)
        kept = self.window_rows(start, end)
        if kept is not None:
            k_stored[:, :, kept], v_stored[:, :, kept] = round_bf16(k[:, :, kept]), round_bf16(v[:, :, kept])
        super().write(layer, positions, k_stored, v_stored)

    def window_rows(self, start: int, end: int) -> slice | None:
        """Rows of a write [start, end) that lie in the bf16 block window (None: no such rows)."""
        block = self.current_block() if self.window == "block" else None
        if block is None:
            return None
        first, last = max(start, block[0]), min(end, block[1])
        return slice(first - start, last - start) if first < last else None

    def is_full(self, start: int, end: int) -> bool:
        return start == 0 and end == self.seq_len

    def current_block(self) -> tuple[int, int] | None:
        """[start, end) of the block being decoded, or None without a layout."""
        if self.layout is None or self.block_index < 0:
            return None
        first = self.seq_len - self.layout.gen_length + self.block_index * self.layout.block_length
        return first, first + self.layout.block_length

    def store(self, layer: int, start: int, end: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return k, v

    def clone(self) -> KVCache:
        """A plain copy of the stored (already read-back) values."""
        return KVCache.clone(self)


class Bf16KVCache(BlockAwareKVCache):
    """The 16-bit baseline: K/V stored as bf16, the NPU's activation format."""

    def store(self, layer, start, end, k, v):
        return round_bf16(k), round_bf16(v)


class TokenIntKVCache(BlockAwareKVCache):
    """Per-token asymmetric INT for K and V, one (scale, zero) per `group` channels of a token."""

    def __init__(self, config, batch, seq_len, layout=None, *, bits: int, group: int = DEFAULT_GROUP,
                 window: str = "block"):
        super().__init__(config, batch, seq_len, layout, window)
        check_bits("int", bits)
        self.bits, self.group = bits, group

    def store(self, layer, start, end, k, v):
        return (
            quantizers.token_int(round_bf16(k), self.bits, self.group),
            quantizers.token_int(round_bf16(v), self.bits, self.group),
        )


class MXKVCache(BlockAwareKVCache):
    """Plain MX block formats for K and V (the reference design's accuracy simulator)."""

    def __init__(self, config, batch, seq_len, layout=None, *, bits: int, mx_layout: str = "mxint",
                 group: int = DEFAULT_GROUP, window: str = "block", mx_scale: str = "ocp"):
        super().__init__(config, batch, seq_len, layout, window)
        quantizers.mx_format(mx_layout, bits)
        numerics.check_scale_rule(mx_scale)
        self.bits, self.mx_layout, self.group, self.mx_scale = bits, mx_layout, group, mx_scale

    def store(self, layer, start, end, k, v):
        return (
            quantizers.mx(round_bf16(k), self.mx_layout, self.bits, self.group, self.mx_scale),
            quantizers.mx(round_bf16(v), self.mx_layout, self.bits, self.group, self.mx_scale),
        )


class KiviKVCache(BlockAwareKVCache):
    """KIVI: keys per channel (groups of `group` tokens), values per token (groups of `group`
    channels), asymmetric INT, and a full-precision (bf16) window of recent tokens.

    "Recent" in a dLLM = the block being decoded (the shared block window, see the module
    docstring): its slots are rewritten every step, the way KIVI's residual holds the newest
    tokens of an AR model until a group fills. At the next block's refresh the finished block is
    quantized with the prefix. Key groups are counted from the first token of each quantized
    segment of a write (the rows before the window, and the rows after it).
    """

    def __init__(self, config, batch, seq_len, layout=None, *, bits: int, group: int = DEFAULT_GROUP,
                 window: str = "block"):
        super().__init__(config, batch, seq_len, layout, window)
        check_bits("int", bits)
        self.bits, self.group = bits, group

    def store(self, layer, start, end, k, v):
        k, v = round_bf16(k), round_bf16(v)
        k_out, v_out = k.clone(), v.clone()
        kept = self.window_rows(start, end) or slice(0, 0)
        for rows in (slice(0, kept.start), slice(kept.stop, end - start)):
            if rows.start >= rows.stop:
                continue
            k_out[:, :, rows] = quantizers.channel_int(k[:, :, rows], self.bits, self.group)
            v_out[:, :, rows] = quantizers.token_int(v[:, :, rows], self.bits, self.group)
        return k_out, v_out


class StaticSmoothKVCache(BlockAwareKVCache):
    """SmoothAttention-style static key smoothing (lambda calibrated offline, folded into Q and
    K), then a per-token layout. Values are stored unsmoothed, as in QServe."""

    def __init__(self, config, batch, seq_len, layout=None, *, bits: int, smoothing: StaticSmoothing,
                 storage: str = "int", group: int = DEFAULT_GROUP, window: str = "block"):
        super().__init__(config, batch, seq_len, layout, window)
        check_bits(storage, bits)
        if not isinstance(smoothing, StaticSmoothing):
            raise ValueError("static smoothing needs `smoothing=` factors from calibrate_static_smoothing")
        smoothing.check_fits(config.n_layers, config.n_kv_heads, config.head_dim)
        self.bits, self.storage, self.group, self.smoothing = bits, storage, group, smoothing

    def store(self, layer, start, end, k, v):
        factors = self.smoothing.factors[layer].to(k.device)[None, :, None, :]
        k_hat = quantizers.per_token(round_bf16(k) / factors, self.storage, self.bits, self.group) * factors
        return k_hat, quantizers.per_token(round_bf16(v), self.storage, self.bits, self.group)


def hadamard_matrix(n: int) -> torch.Tensor:
    """Orthonormal Sylvester Hadamard matrix H / sqrt(n) (symmetric, so it is its own inverse)."""
    if n < 1 or n & (n - 1):
        raise ValueError(f"Hadamard rotation needs a power-of-two head_dim, got {n}")
    h = torch.ones(1, 1)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h / math.sqrt(n)


class HadamardKVCache(BlockAwareKVCache):
    """QuaRot-style rotation: K and V of each head times an orthonormal Hadamard matrix H before
    quantization (Q is rotated the same way, Q K^T = (Q H)(K H)^T; V's H folds into o_proj), so
    channel outliers are spread over the whole head."""

    def __init__(self, config, batch, seq_len, layout=None, *, bits: int, storage: str = "int",
                 group: int = DEFAULT_GROUP, window: str = "block"):
        super().__init__(config, batch, seq_len, layout, window)
        check_bits(storage, bits)
        self.bits, self.storage, self.group = bits, storage, group
        self.rotation = hadamard_matrix(config.head_dim)

    def _round_trip(self, x: torch.Tensor) -> torch.Tensor:
        h = self.rotation.to(x.device)
        rotated = round_bf16(round_bf16(x) @ h)
        return quantizers.per_token(rotated, self.storage, self.bits, self.group) @ h

    def store(self, layer, start, end, k, v):
        return self._round_trip(k), self._round_trip(v)
