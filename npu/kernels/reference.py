"""numpy references of the kernels, built only from npu.hw.numerics.

Each function performs the kernel's arithmetic in the kernel's order with the hardware's
rounding (every vector-unit result rounded to the vector-SRAM format, scalar results fp32), so
the simulator's output must equal it bit for bit. The float64 / torch comparisons in the tests
then measure what that arithmetic costs in accuracy.
"""

from __future__ import annotations

import numpy as np
import torch

from npu.hw import numerics
from npu.hw.config import NPUConfig

F32 = np.float32


def round_vector(x: np.ndarray, config: NPUConfig) -> np.ndarray:
    """Values as vector SRAM holds them."""
    return numerics.round_to_format(np.asarray(x, dtype=F32), config.formats.vector)


def dequantized_weights(w: np.ndarray, config: NPUConfig) -> np.ndarray:
    """Weights as matrix SRAM holds them: the DRAM format's values (MX along rows), in bf16."""
    fmt = config.formats.weights
    w = np.asarray(w, dtype=F32)
    stored = numerics.mx_round(w, fmt, config.mx_block, axis=-1) if fmt in numerics.MX_FORMATS \
        else numerics.round_to_format(w, fmt)
    return numerics.round_to_format(stored, "bf16")


def activations_in_dram(x: np.ndarray, config: NPUConfig) -> np.ndarray:
    """Values as the activation format stores them in DRAM."""
    return numerics.round_to_format(np.asarray(x, dtype=F32), config.formats.activations)


def gemm_reference(x: np.ndarray, w: np.ndarray, config: NPUConfig) -> np.ndarray:
    """gemm.s: per BLEN-row block and MLEN-column panel, accumulate K tiles in order, round once."""
    a = round_vector(activations_in_dram(x, config), config)
    b = dequantized_weights(w, config)
    m, k = a.shape
    n = b.shape[1]
    mlen, blen = config.mlen, config.blen
    y = np.zeros((m, n), dtype=F32)
    for col in range(0, n, mlen):
        for row in range(0, m, blen):
            acc = np.zeros((blen, mlen), dtype=F32)
            for depth in range(0, k, mlen):
                acc = numerics.hw_matmul_accumulate(acc, a[row:row + blen, depth:depth + mlen],
                                                    b[depth:depth + mlen, col:col + mlen])
            y[row:row + blen, col:col + mlen] = round_vector(acc, config)
    return activations_in_dram(y, config)


def _sequential_chunk_sums(values: np.ndarray, vlen: int, start: np.ndarray) -> np.ndarray:
    """start + tree_sum(chunk 0) + tree_sum(chunk 1) + ..., each addition fp32 (the vsum chain)."""
    rows = values.shape[0]
    partial = numerics.hw_tree_sum(values.reshape(rows, -1, vlen))
    total = np.asarray(start, dtype=F32).copy()
    for chunk in range(partial.shape[1]):
        total = (total + partial[:, chunk]).astype(F32)
    return total


def softmax_reference(x: np.ndarray, config: NPUConfig) -> np.ndarray:
    """softmax.s on rows of x."""
    v = round_vector(activations_in_dram(np.atleast_2d(x), config), config)
    peak = v.max(axis=1)
    e = round_vector(numerics.hw_exp(round_vector(v - peak[:, None], config)), config)
    total = _sequential_chunk_sums(e, config.vlen, np.zeros(v.shape[0], dtype=F32))
    scale = numerics.hw_recip(total)
    return activations_in_dram(round_vector(e * scale[:, None], config), config)


def rmsnorm_reference(x: np.ndarray, weight: np.ndarray, eps: float, config: NPUConfig) -> np.ndarray:
    """rmsnorm.s on rows of x."""
    v = round_vector(activations_in_dram(np.atleast_2d(x), config), config)
    w = round_vector(activations_in_dram(weight, config), config)
    squares = round_vector(v * v, config)
    total = _sequential_chunk_sums(squares, config.vlen, np.zeros(v.shape[0], dtype=F32))
    mean = (total * F32(1.0 / v.shape[1])).astype(F32)
    scale = numerics.hw_rsqrt((mean + F32(eps)).astype(F32))
    return activations_in_dram(round_vector(round_vector(v * scale[:, None], config) * w[None, :], config), config)


def gumbel_noise(shape: tuple[int, ...], generator: torch.Generator) -> np.ndarray:
    """g = -log(-log u) as fp32, from the same draws as decoding.add_gumbel_noise.

    argmax(exp(l) / (-log u)^T) = argmax(l - T log(-log u)) = argmax(l + T g): the kernels add
    T * g to the logits instead of exponentiating them. u comes from one torch.rand call of
    this shape in float64, exactly the call add_gumbel_noise makes with the same generator.
    """
    u = torch.rand(shape, dtype=torch.float64, generator=generator)
    return (-torch.log(-torch.log(u))).numpy().astype(F32)


def perturbed_logits(logits: np.ndarray, noise: np.ndarray, temperature: float, config: NPUConfig) -> np.ndarray:
    """l + T * g as the vector unit forms it (vmuls then vadd, each rounded)."""
    scaled = round_vector(round_vector(noise, config) * F32(temperature), config)
    return round_vector(scaled + logits, config)


def confidence_reference(logits: np.ndarray, config: NPUConfig, tile_chunks: int, temperature: float = 0.0,
                         noise: np.ndarray | None = None,
                         forbid_id: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """confidence_*.s on rows of logits: (x0 int64, confidence fp32).

    x0 is the first index of the maximum of the argmax source (ties to the lowest index).
    The sum is the online softmax tile by tile: when a tile raises the running max M, the sum
    is first scaled by exp(M_old - M); then every chunk adds tree_sum(exp(l - M)).
    """
    vlen = config.vlen
    v = round_vector(activations_in_dram(np.atleast_2d(logits), config), config)
    if forbid_id is not None:
        v[:, forbid_id] = -np.inf
    source = v if temperature == 0.0 else perturbed_logits(v, np.atleast_2d(noise), temperature, config)
    x0 = np.argmax(source, axis=1)
    rows, vocab = v.shape
    tile = tile_chunks * vlen
    peak = np.full(rows, -np.inf, dtype=F32)
    total = np.zeros(rows, dtype=F32)
    for first in range(0, vocab, tile):
        values = v[:, first:first + tile]
        new_peak = np.maximum(peak, values.max(axis=1))
        grew = peak < new_peak
        with np.errstate(invalid="ignore"):
            factor = numerics.hw_exp((peak - new_peak).astype(F32))
        total = np.where(grew, (total * factor).astype(F32), total)
        peak = new_peak
        e = round_vector(numerics.hw_exp(round_vector(values - peak[:, None], config)), config)
        total = _sequential_chunk_sums(e, vlen, total)
    confidence = numerics.hw_recip(total)
    if temperature != 0.0:
        chosen = v[np.arange(rows), x0]
        confidence = (numerics.hw_exp((chosen - peak).astype(F32)) * confidence).astype(F32)
    return x0.astype(np.int64), confidence
