"""Tensor-level fake quantizers for K/V, built only on the shared hardware arithmetic.

Each function takes a float tensor of shape (batch, kv_heads, tokens, head_dim) and returns the
values the hardware would read back after storing it in a given layout (quantize, then
dequantize). All rounding is done by `npu.hw.numerics`; this module only arranges the axes.

Storage layouts (the names the rest of `npu.quant` uses):
- "int":   per-token asymmetric INT, one (scale, zero point) per `group` consecutive channels of
           one token (KIVI's value layout; the usual per-token KV layout).
- "mxint": MX block format with b-bit integer elements (MXINT8/4/3/2), one shared E8M0
           power-of-two scale per `block` consecutive channels of one token.
- "mxfp":  MX block format with float elements (MXFP8 E4M3 at 8 bits, MXFP4 E2M1 at 4 bits).
KIVI's keys additionally use per-channel INT groups along the token axis (`channel_int`).
"""

from __future__ import annotations

import numpy as np
import torch

from npu.errors import UserError
from npu.hw import numerics

LAYOUTS = ("int", "mxint", "mxfp")
KV_BITS = (8, 4, 3, 2)
MXINT_FORMATS = {8: "mxint8", 4: "mxint4", 3: "mxint3", 2: "mxint2"}
MXFP_FORMATS = {8: "mxfp8_e4m3", 4: "mxfp4"}
DEFAULT_GROUP = 32


class UnsupportedBitsError(UserError, ValueError):
    """A storage layout has no format of the requested bit width (e.g. MXFP at 3 bits)."""


def _to_numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().to(torch.float32).cpu().numpy()


def _like(values: np.ndarray, x: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(values)).to(device=x.device, dtype=x.dtype)


def check_bits(layout: str, bits: int) -> None:
    """Raise a clear error when `layout` cannot hold `bits`-bit elements."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown KV storage layout {layout!r}; known: {', '.join(LAYOUTS)}")
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise ValueError(f"KV bit width must be an int, got {bits!r}")
    supported = {"int": KV_BITS, "mxint": tuple(MXINT_FORMATS), "mxfp": tuple(MXFP_FORMATS)}[layout]
    if bits not in supported:
        raise UnsupportedBitsError(
            f"layout {layout!r} has no {bits}-bit format; supported bit widths: {list(supported)}"
        )


def mx_format(layout: str, bits: int) -> str:
    """The numerics format name of an MX layout at `bits` bits (e.g. ('mxint', 4) -> 'mxint4')."""
    check_bits(layout, bits)
    if layout == "mxint":
        return MXINT_FORMATS[bits]
    if layout == "mxfp":
        return MXFP_FORMATS[bits]
    raise ValueError(f"layout {layout!r} is not an MX layout")


def channel_group(head_dim: int, group: int = DEFAULT_GROUP) -> int:
    """Group / block size along head_dim: `group`, or the whole head if it is smaller."""
    size = min(group, head_dim)
    if head_dim % size:
        raise ValueError(f"head_dim {head_dim} is not a multiple of the channel group {size}")
    return size


def round_bf16(x: torch.Tensor) -> torch.Tensor:
    """bf16 round trip (RNE). torch's cast equals numerics.round_to_format(x, 'bf16') bit for bit
    (tests/test_quant_kv.py checks it); it is used here because it is much faster."""
    return x.to(torch.bfloat16).to(x.dtype)


def token_int(x: torch.Tensor, bits: int, group: int = DEFAULT_GROUP) -> torch.Tensor:
    """Per-token asymmetric INT: min/max of each `group` channels of one token (KIVI form)."""
    check_bits("int", bits)
    size = channel_group(x.shape[-1], group)
    q = numerics.quantize_asymmetric(_to_numpy(x), bits, group_size=size, axis=-1)
    return _like(numerics.dequantize_groups(q), x)


def channel_int(x: torch.Tensor, bits: int, group: int = DEFAULT_GROUP) -> torch.Tensor:
    """Per-channel asymmetric INT over groups of `group` consecutive tokens (KIVI keys).

    The token axis is cut into groups from its first token; a shorter last group keeps its own
    scale (a dLLM writes a whole segment at once, there is no residual to wait for).
    """
    check_bits("int", bits)
    values = _to_numpy(x)
    out = np.empty_like(values)
    tokens = values.shape[-2]
    for first in range(0, tokens, group):
        chunk = values[..., first : first + group, :]
        q = numerics.quantize_asymmetric(chunk, bits, group_size=None, axis=-2)
        out[..., first : first + group, :] = numerics.dequantize_groups(q)
    return _like(out, x)


def mx(x: torch.Tensor, layout: str, bits: int, block: int = DEFAULT_GROUP, mx_scale: str = "ocp") -> torch.Tensor:
    """MX round trip along head_dim: shared power-of-two scale per `block` channels of a token,
    its exponent chosen by the MX scale rule `mx_scale` ('ocp' or 'no_clip', numerics.MX_SCALE_RULES)."""
    fmt = mx_format(layout, bits)
    size = channel_group(x.shape[-1], block)
    return _like(numerics.mx_round(_to_numpy(x), fmt, size, axis=-1, scale_rule=mx_scale), x)


def per_token(x: torch.Tensor, layout: str, bits: int, group: int = DEFAULT_GROUP, mx_scale: str = "ocp") -> torch.Tensor:
    """Round trip in a per-token layout: 'int' (asymmetric groups) or an MX layout (with the MX
    scale rule `mx_scale`; ignored by 'int')."""
    if layout == "int":
        return token_int(x, bits, group)
    return mx(x, layout, bits, group, mx_scale)


def element_bits(layout: str, bits: int, group: int = DEFAULT_GROUP, scale_bits: int = 16) -> float:
    """Stored bits per element including the per-group metadata.

    int: bits + (scale + zero point) / group, each `scale_bits` wide (fp16, as KIVI stores them;
    the simulator applies them in float32, a difference far below the INT step).
    MX: bits + 8 / block (one E8M0 scale byte per block).
    """
    check_bits(layout, bits)
    if layout == "int":
        return bits + 2 * scale_bits / group
    return bits + 8 / group
