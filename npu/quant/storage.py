"""KV-cache bytes per token of each method, for the performance simulators.

Counts what DRAM holds for one cached position (K and V, every layer and KV head), including
per-group scales and zero points:
- bf16: 16 bits per element.
- per-token INT ('int', static-int, hadamard-int, baos-int): b bits + an fp16 scale and an fp16
  zero point per group of 32 channels (b + 1 bits per element).
- MX ('mxint', 'mxfp', and the smoothed / rotated MX variants): b bits + one E8M0 byte per block
  of 32 channels (b + 0.25 bits per element).
- KIVI: keys per channel (b bits + fp16 scale and zero per 32 tokens of a channel) and values
  per token (b + 1 bits): b + 1 bits per element; its full-precision window (the current block)
  adds `block_length` positions at 16 bits, counted by `kv_cache_bytes`, not per token.
Smoothing factors (static, or BAOS's per-block rows: one byte per channel with pow2 scales)
live in on-chip FP SRAM, not in the cache; `baos_factor_bytes` gives their size per block.
Element bits are those of the storage layout, so a method's bytes depend only on its layout.
"""

from __future__ import annotations

from npu.models.transformer import ModelConfig
from npu.quant.methods import get_method
from npu.quant.quantizers import DEFAULT_GROUP, channel_group, element_bits


def kv_element_bits(method: str, bits: int, group: int = DEFAULT_GROUP) -> float:
    """Stored bits per K/V element of `method` at `bits`, metadata included."""
    spec = get_method(method)
    if not spec.supports(bits):
        raise ValueError(f"KV-cache method {method!r} cannot store {bits}-bit values")
    if spec.storage == "bf16":
        return 16.0
    if spec.storage == "kivi":
        return element_bits("int", bits, group)  # per-channel groups of 32 tokens cost the same
    return element_bits(spec.storage, bits, group)


def kv_bytes_per_token(method: str, bits: int, model_config: ModelConfig, group: int = DEFAULT_GROUP) -> float:
    """Bytes one cached position takes: K and V over all layers and KV heads (channel groups
    of `group`, or the whole head when head_dim is smaller)."""
    elements = 2 * model_config.n_layers * model_config.n_kv_heads * model_config.head_dim
    return elements * kv_element_bits(method, bits, channel_group(model_config.head_dim, group)) / 8


def kv_cache_bytes(method: str, bits: int, model_config: ModelConfig, seq_len: int, block_length: int,
                   group: int = DEFAULT_GROUP) -> float:
    """Bytes of a whole cache of `seq_len` positions, KIVI's bf16 window (one block) included."""
    if seq_len < 1 or block_length < 1:
        raise ValueError(f"kv_cache_bytes: seq_len={seq_len} and block_length={block_length} must be >= 1")
    total = seq_len * kv_bytes_per_token(method, bits, model_config, group)
    if get_method(method).storage == "kivi":
        window = min(block_length, seq_len)
        total += window * (kv_bytes_per_token("bf16", 16, model_config) - kv_bytes_per_token(method, bits, model_config, group))
    return total


def baos_factor_bytes(model_config: ModelConfig, segments: int = 2) -> int:
    """On-chip bytes of BAOS's factor rows: K and V, per layer, head and channel, one E8M0-style
    byte each (pow2 factors), for `segments` live factor sets (refresh + per-step)."""
    return 2 * segments * model_config.n_layers * model_config.n_kv_heads * model_config.head_dim
