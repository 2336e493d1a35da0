"""Runners of the dense kernels: tiled GEMM (gemm.s), softmax rows (softmax.s), RMSNorm (rmsnorm.s).

Each runner places its inputs in a fresh simulator's DRAM, assembles the kernel with the layout
constants its header asks for, runs it and returns the output read back from DRAM together
with the `KernelRun` (instruction counts, bytes moved, wall time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npu.hw.config import NPUConfig
from npu.kernels.layout import (
    DRAM_ALIGN,
    Allocator,
    KernelRun,
    activation_bytes,
    assemble_kernel,
    fp32_word,
    kernel_source,
    new_simulator,
    run_program,
    split_word,
)
from npu.hw.rows import row_bytes


@dataclass
class DenseResult:
    output: np.ndarray  # float32 values as the activation format holds them
    run: KernelRun


def _vector_sram(config: NPUConfig) -> Allocator:
    elements = config.vector_sram.size_bytes // config.vector_element_bytes
    return Allocator("vector SRAM", elements, config.vlen)


def run_gemm(config: NPUConfig, x: np.ndarray, w: np.ndarray, strict: bool = True) -> DenseResult:
    """Y = X @ W with X (M, K) in the activation format and W (K, N) in the weight format.

    M must be a multiple of BLEN, K and N multiples of MLEN.
    """
    x, w = np.asarray(x, dtype=np.float32), np.asarray(w, dtype=np.float32)
    (m, k), (k_w, n) = x.shape, w.shape
    mlen, blen = config.mlen, config.blen
    if k != k_w or m % blen or k % mlen or n % mlen:
        raise ValueError(f"run_gemm: need X (M, K) @ W (K, N) with M % {blen} == 0 and K, N % {mlen} == 0; "
                         f"got {x.shape} @ {w.shape}")
    act, weight_fmt = config.formats.activations, config.formats.weights
    dram = Allocator("DRAM", 1 << 40, DRAM_ALIGN)
    x_at = dram.take(m * k * activation_bytes(config))
    w_row = row_bytes(weight_fmt, n, config.mx_block)
    w_at = dram.take(k * w_row)
    y_at = dram.take(m * n * activation_bytes(config))
    vector = _vector_sram(config)
    vx, vy = vector.take(m * k), vector.take(m * n)
    matrix = Allocator("matrix SRAM", config.matrix_sram.size_bytes // 2, mlen)
    panel = k * mlen
    wm0, wm1 = matrix.take(panel), matrix.take(panel)

    sim = new_simulator(config, dram, strict)
    sim.dram.write(x_at, x, act)
    sim.dram.write(w_at, w, weight_fmt)
    constants = {
        "M": m, "K": k, "N": n, "MLEN": mlen, "BLEN": blen,
        "M_BLOCKS": m // blen, "K_TILES_MINUS_1": k // mlen - 1, "N_TILES": n // mlen,
        "X_ROW_BYTES": k * activation_bytes(config), "Y_ROW_BYTES": n * activation_bytes(config),
        "W_ROW_BYTES": w_row, "PANEL_BYTES": row_bytes(weight_fmt, mlen, config.mx_block),
        "TILE_ELEMS": mlen * mlen, "BLOCK_ACT_STEP": blen * k, "BLOCK_OUT_STEP": blen * n,
        **split_word("X", x_at), **split_word("W", w_at), **split_word("Y", y_at),
        **split_word("VX", vx), **split_word("VY", vy), **split_word("WM0", wm0), **split_word("WM1", wm1),
    }
    program = assemble_kernel("gemm", kernel_source("gemm", config), constants)
    run = run_program(sim, "gemm", program)
    return DenseResult(sim.dram.read(y_at, (m, n), act), run)


def _row_kernel(config: NPUConfig, name: str, x: np.ndarray, extra_rows: dict[str, np.ndarray],
                scratch_rows: tuple[str, ...], scalars: dict[str, int], strict: bool) -> DenseResult:
    """Shared runner of the row kernels: X rows in, Y rows out.

    Each one-row input NAME of `extra_rows` goes to DRAM at NAME and vector SRAM at NAMEBUF;
    each name in `scratch_rows` gets one vector-SRAM row.
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float32))
    rows, cols = x.shape
    if cols % config.vlen:
        raise ValueError(f"{name}: row length {cols} must be a multiple of VLEN={config.vlen}")
    act = config.formats.activations
    dram = Allocator("DRAM", 1 << 40, DRAM_ALIGN)
    x_at = dram.take(rows * cols * activation_bytes(config))
    y_at = dram.take(rows * cols * activation_bytes(config))
    extra_at = {key: dram.take(cols * activation_bytes(config)) for key in extra_rows}
    vector = _vector_sram(config)
    constants = {"ROWS": rows, "COLS": cols, "CHUNKS": cols // config.vlen, "VLEN": config.vlen,
                 "ROW_BYTES": cols * activation_bytes(config), **scalars,
                 **split_word("X", x_at), **split_word("Y", y_at), **split_word("BUF", vector.take(rows * cols))}
    sim = new_simulator(config, dram, strict)
    sim.dram.write(x_at, x, act)
    for key, values in extra_rows.items():
        sim.dram.write(extra_at[key], np.asarray(values, dtype=np.float32), act)
        constants.update(split_word(key, extra_at[key]))
        constants.update(split_word(f"{key}BUF", vector.take(cols)))
    for key in scratch_rows:
        constants.update(split_word(key, vector.take(config.vlen)))
    program = assemble_kernel(name, kernel_source(name, config), constants)
    run = run_program(sim, name, program)
    return DenseResult(sim.dram.read(y_at, (rows, cols), act), run)


def run_softmax(config: NPUConfig, x: np.ndarray, strict: bool = True) -> DenseResult:
    """softmax of each row of x (rows, n), n a multiple of VLEN."""
    return _row_kernel(config, "softmax", x, {}, (), {}, strict)


def run_rmsnorm(config: NPUConfig, x: np.ndarray, weight: np.ndarray, eps: float,
                strict: bool = True) -> DenseResult:
    """RMSNorm of each row of x (rows, n) with weight (n,), n a multiple of VLEN."""
    scalars = {**split_word("INV_N", fp32_word(1.0 / np.atleast_2d(x).shape[1])),
               **split_word("EPS", fp32_word(eps))}
    return _row_kernel(config, "rmsnorm", x, {"W": weight}, ("SQ",), scalars, strict)
