"""Synthetic dnpu programs for cross-validating the analytical model against the cycle simulator.

Each builder returns assembled code shaped like one operator of a denoising step, lowered the
way npu/compiler lowers it, with `op_<name>` labels marking its operators:
- `gemm_program`: y = x @ W, weight panels streamed by DMA (double-buffered), tile ops, `mwb`;
- `attention_program`: per head, K/V tiles loaded, scores strip, softmax rows, P @ V, scaling;
- `vector_program`: RMSNorm-like rows (square + chained sum, rsqrt, scale) and a SwiGLU pass;
- `sampling_program`: the npu.kernels sampling pass (running argmax + confidence over the
  vocabulary, then top-k commit), in the machine's lowering (dLLM or generic);
- `mixed_program`: all of them one after another (a miniature step).
Data is never computed (timing mode), so addresses only need to be in range.
"""

from __future__ import annotations

from npu.hw.config import NPUConfig
from npu.isa.assembler import Program, assemble
from npu.kernels.sampling import sampling_layout
from npu.kernels.sampling import sampling_program as kernel_sampling_program
from npu.hw.rows import row_bytes


def _li(register: str, value: int) -> str:
    """Load an integer constant: `addi` when it fits the immediate, else `lui` + `ori`."""
    if -(1 << 17) <= value < 1 << 17:
        return f"addi {register}, r0, {value}"
    return f"lui  {register}, {value >> 16}\n        ori  {register}, {register}, {value & 0xffff}"


def _gemm_text(config: NPUConfig, rows: int, k: int, n: int, tag: str) -> str:
    mlen, blen = config.mlen, config.blen
    k_tiles, n_tiles, blocks = k // mlen, n // mlen, rows // blen
    fmt = config.formats.weights
    row = row_bytes(fmt, n, config.mx_block)       # W is (K, N) in DRAM, MX blocks along N
    panel_step = row_bytes(fmt, mlen, config.mx_block)
    tile = mlen * mlen
    inner = "" if k_tiles == 1 else f"""
        loopi {k_tiles - 1}, {tag}_k
        addi r3, r3, {mlen}
        addi r10, r10, {tile}
        mma  r3, r9, r10
{tag}_k:"""
    return f"""
op_{tag}:
        wait dma|matrix|vector
        addi r1, r0, {mlen}
        addi r2, r0, {row}
        addi r4, r0, 0                  # current panel in matrix SRAM
        {_li("r12", k_tiles * tile)}  # the other half
        addi r7, r0, 0
        loopi {k_tiles}, {tag}_first
        dld.m a1, r7, r1, r1, r2, r1, {fmt}
        aaddi a1, a1, {mlen * row}
        addi r7, r7, {tile}
{tag}_first:
        addi r9, r0, {k}
        addi r6, r0, {n_tiles - 1}
        loopi {n_tiles}, {tag}_panels
        wait dma|matrix
        aaddi a2, a1, {panel_step}
        addi r7, r12, 0
        slt  r13, r0, r6                # prefetch the next panel unless this is the last
        loop r13, {tag}_prefetch_end
        loopi {k_tiles}, {tag}_prefetch_end
        dld.m a2, r7, r1, r1, r2, r1, {fmt}
        aaddi a2, a2, {mlen * row}
        addi r7, r7, {tile}
{tag}_prefetch_end:
        addi r6, r6, -1
        addi r8, r0, 0
        addi r5, r0, 0
        loopi {blocks}, {tag}_blocks
        addi r3, r8, 0
        addi r10, r4, 0
        mm   r3, r9, r10{inner}
        addi r11, r0, {n}
        mwb  r5, r11
        addi r5, r5, {blen * n}
        addi r8, r8, {blen * k}
{tag}_blocks:
        aaddi a1, a1, {panel_step}
        xor  r4, r4, r12
{tag}_panels:
        wait dma|matrix
"""


def gemm_program(config: NPUConfig, rows: int, k: int, n: int) -> Program:
    """x (rows, k) @ W (k, n): rows a multiple of BLEN, k and n multiples of MLEN."""
    return assemble(_gemm_text(config, rows, k, n, "gemm") + "        halt\n", source="gemm")


def _attention_text(config: NPUConfig, heads: int, queries: int, keys: int, head_dim: int, tag: str) -> str:
    mlen, blen, vlen = config.mlen, config.blen, config.vlen
    chunks = keys // mlen
    dim_tiles = max(1, head_dim // mlen)
    slot = dim_tiles * mlen
    tile = mlen * mlen
    fmt = config.formats.kv_cache
    kv_row = row_bytes(fmt, slot, config.mx_block)
    strip = 0
    out = blen * keys
    q_base = out + blen * slot
    v_base = chunks * dim_tiles * tile
    subrows = keys // vlen
    return f"""
op_{tag}:
        wait dma|matrix|vector
        addi r11, r0, {q_base}
        loopi {heads}, {tag}_heads
        addi r1, r0, {mlen}
        addi r2, r0, {kv_row}
        addi r3, r0, 0
        loopi {chunks * dim_tiles}, {tag}_kload
        dld.m a3, r3, r1, r1, r2, r1, {fmt}
        aaddi a3, a3, {mlen * kv_row}
        addi r3, r3, {tile}
{tag}_kload:
        addi r3, r0, {v_base}
        loopi {chunks * dim_tiles}, {tag}_vload
        dld.m a4, r3, r1, r1, r2, r1, {fmt}
        aaddi a4, a4, {mlen * kv_row}
        addi r3, r3, {tile}
{tag}_vload:
        wait dma
        addi r8, r11, 0
        loopi {queries // blen}, {tag}_blocks
        addi r1, r0, {strip}
        addi r2, r0, {slot}
        addi r3, r0, {keys}
        addi r4, r0, 0
        loopi {chunks}, {tag}_scores
        addi r6, r8, 0
        mmt  r6, r2, r4
        addi r4, r4, {dim_tiles * tile}
        mwb  r1, r3
        addi r1, r1, {mlen}
{tag}_scores:
        wait matrix
        addi r1, r0, {strip}
        loopi {blen}, {tag}_rows
        addi r2, r1, 0
        loopi {subrows}, {tag}_scale
        vmuls r2, r2, f6
        addi r2, r2, {vlen}
{tag}_scale:
        flui f0, -inf
        addi r2, r1, 0
        loopi {subrows}, {tag}_max
        vmaxr f0, r2
        addi r2, r2, {vlen}
{tag}_max:
        wait vector
        flui f1, 0.0
        addi r2, r1, 0
        loopi {subrows}, {tag}_exp
        vsubs r2, r2, f0
        vexp  r2, r2
        vsum  f1, r2
        addi  r2, r2, {vlen}
{tag}_exp:
        wait vector
        frecip f2, f1
        fsw  f2, 0(r7)
        addi r7, r7, 1
        addi r1, r1, {keys}
{tag}_rows:
        addi r1, r0, {v_base}
        addi r2, r0, {strip}
        addi r3, r0, {keys}
        addi r4, r0, {out}
        addi r6, r0, {slot}
        loopi {dim_tiles}, {tag}_pv
        addi r12, r2, 0
        addi r10, r1, 0
        mm   r12, r3, r10
        loopi {max(chunks - 1, 1)}, {tag}_pv_inner
        addi r12, r12, {mlen}
        addi r10, r10, {dim_tiles * tile}
        mma  r12, r3, r10
{tag}_pv_inner:
        mwb  r4, r6
        addi r4, r4, {mlen}
        addi r1, r1, {tile}
{tag}_pv:
        wait matrix
        addi r1, r0, {out}
        addi r7, r0, 0
        loopi {blen}, {tag}_out
        flw  f2, 0(r7)
        addi r2, r1, 0
        addi r4, r8, 0
        loopi {slot // vlen}, {tag}_out_row
        vmuls r4, r2, f2
        addi r2, r2, {vlen}
        addi r4, r4, {vlen}
{tag}_out_row:
        addi r7, r7, 1
        addi r1, r1, {slot}
        addi r8, r8, {slot}
{tag}_out:
        wait vector
{tag}_blocks:
        addi r11, r11, {slot}
{tag}_heads:
        wait dma|matrix|vector
"""


def attention_program(config: NPUConfig, heads: int, queries: int, keys: int, head_dim: int) -> Program:
    """Bidirectional attention of `queries` rows (multiple of BLEN) over `keys` (multiple of MLEN)."""
    return assemble(_attention_text(config, heads, queries, keys, head_dim, "attention") + "        halt\n",
                    source="attention")


def _vector_text(config: NPUConfig, rows: int, width: int, tag: str) -> str:
    vlen = config.vlen
    chunks = width // vlen
    x, y, w, sq = 0, rows * width, 2 * rows * width, 2 * rows * width + width
    return f"""
op_{tag}_rmsnorm:
        wait dma|matrix|vector
        addi r2, r0, {w}
        addi r3, r0, 1
        addi r4, r0, {width}
        dld.v a0, r2, r3, r4, r0, r4, bf16
        wait dma
        addi r1, r0, {x}
        addi r2, r0, {y}
        addi r8, r0, {sq}
        loopi {rows}, {tag}_rows
        flui f1, 0.0
        addi r3, r1, 0
        loopi {chunks}, {tag}_sum
        vmul r8, r3, r3
        vsum f1, r8
        addi r3, r3, {vlen}
{tag}_sum:
        wait vector
        fmul f1, f1, f6
        fadd f1, f1, f7
        frsqrt f1, f1
        addi r3, r1, 0
        addi r4, r2, 0
        addi r6, r0, {w}
        loopi {chunks}, {tag}_scale
        vmuls r4, r3, f1
        vmul r4, r4, r6
        addi r3, r3, {vlen}
        addi r4, r4, {vlen}
        addi r6, r6, {vlen}
{tag}_scale:
        addi r1, r1, {width}
        addi r2, r2, {width}
{tag}_rows:
        wait vector
op_{tag}_swiglu:
        addi r1, r0, {x}
        loopi {rows * chunks}, {tag}_silu
        vsilu r1, r1
        addi r1, r1, {vlen}
{tag}_silu:
        wait vector
        addi r1, r0, {x}
        addi r2, r0, {y}
        loopi {rows * chunks}, {tag}_mul
        vmul r1, r1, r2
        addi r1, r1, {vlen}
        addi r2, r2, {vlen}
{tag}_mul:
        wait vector
"""


def vector_program(config: NPUConfig, rows: int, width: int) -> Program:
    """RMSNorm over `rows` rows of `width` (a multiple of VLEN), then a SwiGLU-like pass."""
    return assemble(_vector_text(config, rows, width, "vector") + "        halt\n", source="vector")


def sampling_program(config: NPUConfig, positions: int, vocab: int, threshold: float | None = None) -> Program:
    """The npu.kernels sampling pass over `positions` rows of `vocab` logits, commit included."""
    layout = sampling_layout(config, positions, vocab, forbid_id=vocab - 1, commit=True, mask_id=vocab - 1,
                             threshold=threshold)
    program = kernel_sampling_program(config, layout)
    program.labels["op_sampling"] = 0
    return program


def mixed_program(config: NPUConfig) -> Program:
    """A miniature step: RMSNorm, a projection, attention, the SwiGLU pass, one after another."""
    mlen, blen = config.mlen, config.blen
    text = (_vector_text(config, 2 * blen, 2 * mlen, "norm")
            + _gemm_text(config, 2 * blen, 2 * mlen, 2 * mlen, "proj")
            + _attention_text(config, 2, 2 * blen, 2 * mlen, mlen, "attn")
            + "        halt\n")
    return assemble(text, source="mixed")
