"""Row-wise vector-unit ops: embedding gather, RMSNorm, RoPE, SwiGLU gate, residual add.

Each `reference_<op>` computes, in numpy, exactly what the instructions of `emit_<op>` compute:
every vector instruction rounds its result to the vector SRAM format (`rnd`), reductions use the
tree sum of one VLEN row and chain rows in order in an fp32 register, scalar ops are fp32.
"""

from __future__ import annotations

import numpy as np

from npu.compiler.context import FP_EPS, FP_INV_D, Emit, f32
from npu.hw.numerics import chained_row_sum, hw_rsqrt, hw_silu
from npu.hw.rows import row_bytes


# ---- embedding ------------------------------------------------------------------------------


def reference_embedding(tokens: np.ndarray, table: np.ndarray) -> np.ndarray:
    return table[tokens]


def emit_embedding(e: Emit, x_addr: int) -> None:
    """x[i] <- table[TOK[i]] for every (padded) query row: one `dld.v` row gather each (rows of
    d_model_pad: the table's padding columns are zeros)."""
    asm, d = e.asm, e.shapes.d_model_pad
    region = e.dram["embed.weight"]
    rb = row_bytes(region.fmt, d, e.npu.mx_block)
    asm.comment("embedding gather")
    asm.la("a0", region.address)
    asm.li("r1", rb)
    asm.li("r2", e.scalars.tok)
    asm.li("r3", x_addr)
    asm.li("r4", 1)
    asm.li("r5", d)
    with asm.loop(e.spec.rows):
        asm("lw r6, 0(r2)")
        asm("amac a1, a0, r6, r1")
        asm(f"dld.v a1, r3, r4, r5, r1, r5, {region.fmt}", dram_read=rb)
        asm("addi r2, r2, 1")
        asm("add r3, r3, r5")
    asm("wait dma")


# ---- RMSNorm --------------------------------------------------------------------------------


def reference_rmsnorm(x: np.ndarray, weight: np.ndarray, eps: float, rnd, vlen: int) -> np.ndarray:
    """y = rnd(rnd(x * rsqrt(mean(rnd(x^2)) + eps)) * w), the sum chained over VLEN rows.

    x has the true width d (the mean divides by it); a ragged last VLEN row sums as numerics'
    chained_row_sum defines it, which is what the program's zero-padded row sums."""
    d = x.shape[-1]
    total = chained_row_sum(rnd(x * x), vlen)
    r = hw_rsqrt(f32(f32(total * np.float32(1.0 / d)) + np.float32(eps)))
    return rnd(rnd(x * r[..., None]) * weight)


def emit_rmsnorm(e: Emit, src: int | str, dst: int, rows: int, weight_region: str) -> None:
    """RMSNorm of `rows` rows of d_model_pad starting at src (an address or a register holding it).

    The padded columns are zeros, so they add +0.0 to the sum of squares, which is scaled by
    1/d of the true d_model (FP_INV_D); their zero weights keep the output's padding zero."""
    asm, d, vlen = e.asm, e.shapes.d_model_pad, e.npu.vlen
    asm.comment(f"rmsnorm {weight_region}")
    asm("wait dma|matrix|vector")
    asm(f"add r1, {src}, r0") if isinstance(src, str) else asm.li("r1", src)
    weight = e.vec.alloc("norm.weight", d)
    square = e.vec.alloc("norm.square", vlen)
    asm.la("a0", e.dram[weight_region].address)
    asm.li("r2", weight)
    asm.li("r3", 1)
    asm.li("r4", d)
    asm("dld.v a0, r2, r3, r4, r0, r4, bf16", dram_read=2 * d)
    asm("wait dma")
    asm.li("r2", dst)
    asm.li("r7", d)
    asm.li("r8", square)
    asm(f"flw f6, {FP_INV_D}(r0)")
    asm(f"flw f7, {FP_EPS}(r0)")
    with asm.loop(rows):
        asm("flui f1, 0.0")
        asm("add r3, r1, r0")
        with asm.loop(d // vlen):
            asm("vmul r8, r3, r3")
            asm("vsum f1, r8")
            asm(f"addi r3, r3, {vlen}")
        asm("wait vector")
        asm("fmul f1, f1, f6")
        asm("fadd f1, f1, f7")
        asm("frsqrt f1, f1")
        asm("add r3, r1, r0")
        asm("add r4, r2, r0")
        asm.li("r6", weight)
        with asm.loop(d // vlen):
            asm("vmuls r4, r3, f1")
            asm("vmul r4, r4, r6")
            asm(f"addi r3, r3, {vlen}")
            asm(f"addi r4, r4, {vlen}")
            asm(f"addi r6, r6, {vlen}")
        asm("add r1, r1, r7")
        asm("add r2, r2, r7")
    asm("wait vector")
    e.vec.free("norm.square")
    e.vec.free("norm.weight")


# ---- RoPE -----------------------------------------------------------------------------------


def rotate_half(x: np.ndarray) -> np.ndarray:
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def reference_rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray, rnd) -> np.ndarray:
    """x (..., L, head_dim): rnd(rnd(x cos) + rnd(rotate_half(x) sin)) with bf16 tables."""
    return rnd(rnd(x * cos) + rnd(rotate_half(x) * sin))


def emit_rope(e: Emit, x_addr: int, heads: int, cos_addr: int, sin_addr: int, rows: int | None = None) -> None:
    """RoPE in place on the head slots of a (rows, heads * slot) tensor (default: all query rows)."""
    asm, vlen = e.asm, e.npu.vlen
    hd, slot, width = e.spec.model.head_dim, e.shapes.slot, e.shapes.rope_width
    asm.comment(f"rope over {heads} heads")
    asm("wait dma|matrix|vector")
    first = e.vec.alloc("rope.t1", vlen)
    rot = e.vec.alloc("rope.rot", width)
    asm.li("r1", x_addr)
    asm.li("r2", cos_addr)
    asm.li("r3", sin_addr)
    asm.li("r4", first)
    with asm.loop(e.spec.rows if rows is None else rows):
        with asm.loop(heads):
            if hd <= vlen:
                asm.li("r5", rot)
                asm(f"vrothalf r5, r1, {hd.bit_length() - 1}")
                asm("vmul r5, r5, r3")
                asm("vmul r4, r1, r2")
                asm("vadd r1, r4, r5")
            else:
                half = hd // 2 // vlen
                for j in range(hd // vlen):
                    source = j + half if j < half else j - half
                    asm(f"addi r6, r1, {source * vlen}")
                    asm.li("r5", rot + j * vlen)
                    asm(f"{'vneg' if j < half else 'vmov'} r5, r6")
                    asm(f"addi r7, r3, {j * vlen}")
                    asm("vmul r5, r5, r7")
                for j in range(hd // vlen):
                    asm(f"addi r6, r1, {j * vlen}")
                    asm(f"addi r7, r2, {j * vlen}")
                    asm("vmul r4, r6, r7")
                    asm.li("r5", rot + j * vlen)
                    asm("vadd r6, r4, r5")
            asm(f"addi r1, r1, {slot}")
        asm(f"addi r2, r2, {width}")
        asm(f"addi r3, r3, {width}")
    asm("wait vector")
    e.vec.free("rope.rot")
    e.vec.free("rope.t1")


# ---- element-wise ---------------------------------------------------------------------------


def reference_silu_mul(gate: np.ndarray, up: np.ndarray, rnd) -> np.ndarray:
    return rnd(rnd(hw_silu(gate)) * up)


def reference_add(a: np.ndarray, b: np.ndarray, rnd) -> np.ndarray:
    return rnd(a + b)


def emit_elementwise(e: Emit, op: str, dst: int, a: int, b: int | None, elements: int) -> None:
    """dst <- op(a[, b]) over `elements` contiguous elements (VLEN rows)."""
    asm, vlen = e.asm, e.npu.vlen
    asm("wait dma|matrix|vector")
    asm.li("r1", dst)
    asm.li("r2", a)
    if b is not None:
        asm.li("r3", b)
    with asm.loop(elements // vlen, reg="r15"):
        asm(f"{op} r1, r2, r3" if b is not None else f"{op} r1, r2")
        asm(f"addi r1, r1, {vlen}")
        asm(f"addi r2, r2, {vlen}")
        if b is not None:
            asm(f"addi r3, r3, {vlen}")
    asm("wait vector")


def emit_silu_mul(e: Emit, gate: int, up: int, elements: int) -> None:
    """gate <- silu(gate) * up, in place."""
    e.asm.comment("swiglu")
    emit_elementwise(e, "vsilu", gate, gate, None, elements)
    emit_elementwise(e, "vmul", gate, gate, up, elements)
