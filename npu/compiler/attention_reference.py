"""The NPU-arithmetic softmax attention shared by the compiler's attention kernels and their
references: the key mask of the padding slots and `reference_attention`, the numpy twin of
`emit_attention`'s scores, softmax and P @ V (and of BAOS's output criterion, which runs the same
kernel per candidate; npu.compiler.kv_quant). A module of its own so that attention.py and
kv_quant.py, which lower through each other, can both use it."""

from __future__ import annotations

import numpy as np

from npu.compiler.context import f32
from npu.compiler.linear import reference_gemm
from npu.hw.numerics import chained_row_sum, hw_exp, hw_recip


def key_mask(kv_len: int, kv_slots: int) -> np.ndarray:
    """0 for real key slots, -inf for the padding slots of the last tile."""
    mask = np.zeros(kv_slots, np.float32)
    mask[kv_len:] = -np.inf
    return mask


def masked_subrows(kv_len: int, kv_slots: int, vlen: int) -> list[int]:
    return list(range(kv_len // vlen, kv_slots // vlen))


def reference_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, kv_len: int, scale: float,
                        rnd, mlen: int, vlen: int) -> np.ndarray:
    """q (H, Lq, slot); k, v (H, kv_slots, slot) already expanded per query head."""
    s = rnd(reference_gemm(q, np.swapaxes(k, -1, -2), mlen))
    s = rnd(s * np.float32(scale))
    mask = key_mask(kv_len, k.shape[1])
    for j in masked_subrows(kv_len, k.shape[1], vlen):
        cols = slice(j * vlen, (j + 1) * vlen)
        s[..., cols] = rnd(s[..., cols] + mask[cols])
    peak = f32(np.maximum(np.float32(-np.inf), s.max(axis=-1)))
    p = rnd(hw_exp(rnd(s - peak[..., None])))
    inverse = hw_recip(chained_row_sum(p, vlen))
    out = rnd(reference_gemm(p, v, mlen))
    return rnd(out * inverse[..., None])
