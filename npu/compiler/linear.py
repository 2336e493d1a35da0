"""Linear layers on the matrix unit: y = x @ W^T (+ b), and its NPU-arithmetic reference.

Tiling. W (N, K) sits in DRAM row-major in the weight format (MX blocks along K), so one
MLEN x MLEN tile is one strided `dld.m` and `mmt`/`mmta` use it as stored. Loop order: for each
output column tile n, the *panel* of its K/MLEN weight tiles is loaded once into matrix SRAM;
every BLEN-row block of x then runs `mmt` + `mmta` over the panel (fp32 accumulation in the
systolic order) and `mwb` writes the tile back. Each weight byte crosses the DMA exactly once;
activations never leave vector SRAM. Panels are double-buffered: while panel n is multiplied,
the DMA fetches panel n+1 into the other half (`wait dma|matrix` at the top of each iteration is
the only synchronisation); with two matrix-SRAM ports its DMAs are interleaved with the first
row block's tile ops so that in-order dispatch does not serialise them (`_interleaved_prefetch`).
The LM head uses the same loop with an epilogue per output tile.

Registers (n loop): r4 current panel, r6 panels left to prefetch, r8 x block, r9 K, r11 column
base, a1 next panel address; in the first row group also r7 (1 while a panel is left to
prefetch), r12 / a2 the prefetch's SRAM / DRAM tile, r1, r2 its DMA operands; r14 / r15 step
the activation rows of a row group (`row_groups`), whose accumulators share each weight tile.
An epilogue may clobber everything but the n-loop registers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from npu.compiler.asm import Asm, CompileError
from npu.compiler.context import Emit
from npu.compiler.layout import Allocator, DramMap
from npu.hw.config import NPUConfig
from npu.hw.numerics import hw_matmul_accumulate
from npu.hw.rows import row_bytes
from npu.isa.assembler import Program, assemble
from npu.isa.table import BY_MNEMONIC


def reference_gemm(a: np.ndarray, w_t: np.ndarray, mlen: int) -> np.ndarray:
    """The fp32 accumulator after `mm`/`mmt` then `mma`/`mmta` over the K tiles of mlen.

    a (M, K) @ w_t (K, N), or batched (B, M, K) @ (B, K, N). Rows and columns are independent,
    so the whole product runs at once in the tile order of the matrix unit.

    A K that is not a multiple of mlen (a ragged model width, e.g. d_model 96 or d_ff 160) runs
    as the zero-padded tile sum: the last K tile is filled up with zero rows of both operands,
    which is what the compiler's padded layout feeds the array (npu.compiler.layout). This equals
    the unpadded math: each padded product is a zero (x * 0 with x finite), appended after the
    real products of its column chain, and s + (+-0) == s for any s but -0.0; the accumulator
    starts at +0.0 and so is never -0.0 (+0 + -0 = +0 under round-to-nearest), so acc + s is the
    same whether s ended as -0.0 or +0.0. Here, and nowhere else, is the ragged K defined.
    """
    a = np.asarray(a, dtype=np.float32)
    w_t = np.asarray(w_t, dtype=np.float32)
    if a.shape[-1] != w_t.shape[-2]:
        raise CompileError(f"reference GEMM: K={a.shape[-1]} of the activations is not K={w_t.shape[-2]} "
                           f"of the weights")
    if a.ndim == 3:
        return np.stack([reference_gemm(a[i], w_t[i], mlen) for i in range(a.shape[0])])
    ragged = -a.shape[1] % mlen
    if ragged:
        a = np.concatenate([a, np.zeros((a.shape[0], ragged), np.float32)], axis=1)
        w_t = np.concatenate([w_t, np.zeros((ragged, w_t.shape[1]), np.float32)], axis=0)
    acc = np.zeros((a.shape[0], w_t.shape[-1]), dtype=np.float32)
    for t in range(a.shape[1] // mlen):
        acc = hw_matmul_accumulate(acc, a[:, t * mlen:(t + 1) * mlen], w_t[t * mlen:(t + 1) * mlen])
    return acc


def reference_linear(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, rnd, mlen: int) -> np.ndarray:
    """rnd(x @ w^T) [+ bias, rounded again]: mwb rounds the accumulator, vadd adds the bias."""
    y = rnd(reference_gemm(x, w.T, mlen))
    return y if bias is None else rnd(y + bias)


def _panel_load(e: Emit, k_tiles: int, fmt: str, rb: int, cols: int) -> None:
    """Load the first panel (`cols` output columns x K/MLEN tiles) from a1 into matrix SRAM half 0.

    One `dld.m` per K step moves the step's `cols` tiles (cols x MLEN consecutive rows of W), which
    land as consecutive tiles: tile (k, j) at (k * cols + j) * MLEN^2. Later panels are
    prefetched step by step between the tile ops (`_prefetch_setup`)."""
    asm, mlen = e.asm, e.npu.mlen
    tile_rb = row_bytes(fmt, mlen, e.npu.mx_block)
    asm("aaddi a2, a1, 0")
    asm.li("r3", 0)
    asm.li("r1", mlen)
    asm.li("r2", rb)
    asm.li("r13", _r13(e.npu, cols))
    with asm.loop(k_tiles):
        asm(f"dld.m a2, r3, {_dma_rows(cols)}, r1, r2, r1, {fmt}", dram_read=cols * mlen * tile_rb)
        asm(f"aaddi a2, a2, {tile_rb}")
        _step(asm, "r3", cols * mlen * mlen, cols)
    asm.li("r14", cols * mlen * rb)
    asm("aadd a1, a1, r14")


def _prefetch_setup(e: Emit, panel: int, rb: int, cols: int) -> None:
    """Registers for prefetching the next panel (from a1) into the other half during row group 0.

    r7 = 1 while panels are left to prefetch (r6 > 0), else 0: the trip count of the loop around
    each prefetch DMA (`_prefetch_tile`). a2 walks the DRAM tiles, r12 the matrix-SRAM tiles;
    r1 = MLEN, r2 = the DRAM row stride, r13 = the DMA's rows (cols x MLEN).
    """
    asm, mlen = e.asm, e.npu.mlen
    asm("slt r7, r0, r6")
    asm("aaddi a2, a1, 0")
    asm.li("r12", panel)
    asm("sub r12, r12, r4")
    asm.li("r1", mlen)
    asm.li("r2", rb)
    asm.li("r13", _r13(e.npu, cols))


def _r13(npu: NPUConfig, cols: int) -> int:
    """r13 in the GEMM loop: MLEN^2 (the tile step) for one column per panel, else the prefetch
    DMA's rows (cols x MLEN; panel_columns keeps cols x MLEN^2 within an `addi` step)."""
    return npu.mlen * npu.mlen if cols == 1 else cols * npu.mlen


def _dma_rows(cols: int) -> str:
    """The register holding a panel DMA's rows: r1 (= MLEN) for one column, else r13."""
    return "r1" if cols == 1 else "r13"


def _step(asm: Asm, reg: str, amount: int, cols: int) -> None:
    """reg += amount (MLEN^2 or cols x MLEN^2): with one column per panel the amount is MLEN^2,
    added from r13 so that any MLEN works; otherwise an immediate (panel_columns checks it fits)."""
    asm(f"add {reg}, {reg}, r13" if cols == 1 else f"addi {reg}, {reg}, {amount}")


def _interleaved_prefetch(npu: NPUConfig) -> bool:
    """Whether the next panel's DMAs are issued one per tile op of block 0 (else all at once
    before the tile ops).

    Dispatch is in order and each unit queue holds 8 ops, so a panel's K/MLEN DMAs issued back to
    back before the tile ops stall the front end until all but 8 have started while the array
    idles: on dnpu-cloud ~3/4 of every panel's DMA ran in series with its tile ops. One DMA per
    tile op keeps both queues short, so the DMA (DRAM and matrix-SRAM port) runs under the tile
    ops of the current panel: software pipelining (Lam, PLDI 1988) of the weight stream, as the
    TPU overlaps weight DMA with the matrix unit (Jouppi et al., ISCA 2017). It needs a second
    matrix-SRAM port (the array reads a weight tile while the DMA writes the next panel). With one
    port (dnpu-edge had one until issue 13) the two share it whatever the order; there the batch order is kept, which the
    analytical model's one-port rule (docs/analytical.md) times within its goals, while it does
    not time the interleaved order's chunk-level port sharing (22 % off on the tiny dual step).
    """
    return npu.matrix_sram.ports >= 2


def _prefetch_tile(e: Emit, fmt: str, expected: float, cols: int) -> None:
    """One `dld.m` of the next panel's K step (`cols` tiles; registers of `_prefetch_setup`),
    if r7 = 1."""
    asm, mlen = e.asm, e.npu.mlen
    tile_rb = row_bytes(fmt, mlen, e.npu.mx_block)
    with asm.loop("r7", expected=expected):
        asm(f"dld.m a2, r12, {_dma_rows(cols)}, r1, r2, r1, {fmt}", dram_read=cols * mlen * tile_rb)
        asm(f"aaddi a2, a2, {tile_rb}")
        _step(asm, "r12", cols * mlen * mlen, cols)


def panel_columns(npu: NPUConfig, k_tiles: int, n_tiles: int, group: int, plain: bool) -> int:
    """Output columns per weight panel: each K step's tiles of that many columns come in one DMA
    and are multiplied into `columns x group` accumulators.

    Why: the DMA engine runs one transfer at a time, each paying its setup and the DRAM latency
    before its port time (docs/timing.md), so one `dld.m` per 128 x 128 tile took ~67 cycles on
    dnpu-cloud against the 40 of the two 16-row tile ops of a 32-row step; a DMA of several
    tiles pays that overhead once, and a wider panel also shares each column's drain, write-back
    and `wait` among more tile ops. Only for plain linears (the LM head's per-tile epilogue
    expects one column at a time) on two-port matrix SRAMs (`_interleaved_prefetch`), and only
    as far as the accumulators, two panels in matrix SRAM and an `addi` step reach."""
    if not plain or not _interleaved_prefetch(npu):
        return 1
    tile = npu.mlen * npu.mlen
    step_max = BY_MNEMONIC["addi"].field("imm").value_range()[1]
    fits = [c for c in range(1, npu.accumulators // group + 1)
            if n_tiles % c == 0 and 2 * c * k_tiles * tile <= npu.matrix_sram.size_bytes // 2
            and c * tile <= step_max]
    return max(fits, default=1)


def row_groups(npu: NPUConfig, m_blocks: int) -> tuple[int, int, int]:
    """(size, full, rest): the BLEN-row blocks run as `full` groups of `size` blocks that share
    each weight tile, size = min(accumulators, m_blocks), then one group of the `rest`.

    Why: a weight tile takes MLEN^2 x 2 bytes / matrix-SRAM word bytes cycles to load while a
    tile op runs 1 + BLEN + 3 or its activation feed, so an array that reloads the tile for
    every block waits on loads; with one accumulator per block of a group the tile is loaded
    once for the group, the weight-stationary reuse of Kung's systolic arrays (IEEE Computer
    15(1), 1982) and of the TPU's matrix unit (Jouppi et al., ISCA 2017). Each accumulator still
    sums its K tiles in the same order, so the arithmetic is unchanged."""
    size = min(npu.accumulators, m_blocks)
    return size, m_blocks // size, m_blocks % size


def emit_gemm(e: Emit, x_addr: int, rows: int, k: int, w_region: str, n: int,
              out_addr: int | None = None, epilogue: Callable[[int], None] | None = None,
              segments: list[tuple[int, object]] | None = None,
              column_prologue: Callable[[], None] | None = None) -> None:
    """x (rows, k) @ W^T -> strided y (rows, n) at out_addr, or per output tile -> epilogue.

    With an epilogue, each BLEN x MLEN output tile is written to the tile buffer `out_addr`
    (row stride MLEN) and `epilogue(segment_tag)` is emitted after it; `segments` splits the
    column loop into runs [(count, tag), ...] so that special columns get their own code.
    The next panel is prefetched into the other half of matrix SRAM while this one is
    multiplied; where `_interleaved_prefetch` holds, the first BLEN-row block of each column is
    emitted apart from the others (peeled) because it also issues the prefetch DMAs, one after
    each of its tile ops.
    """
    npu, asm = e.npu, e.asm
    mlen, blen = npu.mlen, npu.blen
    fmt = e.dram[w_region].fmt
    rb = row_bytes(fmt, k, npu.mx_block)
    k_tiles, n_tiles, m_blocks = k // mlen, n // mlen, rows // blen
    tile = mlen * mlen
    panel = k_tiles * tile
    matrix_elements = npu.matrix_sram.size_bytes // 2
    if 2 * panel > matrix_elements:
        raise CompileError(f"{npu.name}: matrix_sram.size_bytes: {w_region} needs two {k}x{mlen} bf16 "
                           f"panels = {4 * panel} bytes, more than {npu.matrix_sram.size_bytes}")
    if k % mlen or n % mlen or rows % blen:
        raise CompileError(f"{w_region}: shape ({rows}, {k}) x ({n}, {k}) is not tiled by mlen={mlen}, blen={blen}")
    interleave = _interleaved_prefetch(npu)
    group_size, full_groups, rest = row_groups(npu, m_blocks)
    cols = panel_columns(npu, k_tiles, n_tiles, group_size, epilogue is None)
    panel = cols * k_tiles * tile
    e.matrix_peak = max(e.matrix_peak, 2 * panel)
    segments = segments or [(n_tiles // cols, None)]
    asm.comment(f"linear {w_region}: ({rows}x{k}) @ ({n}x{k})^T, {n_tiles // cols} panels of {k_tiles} x {cols} tiles")
    asm("wait dma|matrix|vector")
    asm.la("a1", e.dram[w_region].address)
    asm.li("r4", 0)
    _panel_load(e, k_tiles, fmt, rb, cols)
    asm.li("r6", n_tiles // cols - 1)
    asm.li("r9", k)
    asm.li("r11", out_addr if epilogue is None else 0)

    def k_tile(group: int, first: bool, prefetch: float | None) -> None:
        """One K step: each of the panel's `cols` weight tiles (loaded once) into the accumulators
        of the group's blocks, accumulator = column x group + block."""
        act = "r3" if group == 1 else "r15"
        for column in range(cols):
            if group > 1:
                asm("add r15, r3, r0")
            for block in range(group):
                asm(f"{'mmt' if first else 'mmta'} {act}, r9, r10, {column * group + block}",
                    macs=blen * mlen * mlen)
                if block < group - 1:
                    asm("add r15, r15, r14")
            _step(asm, "r10", tile, cols)
        if prefetch is not None:
            _prefetch_tile(e, fmt, prefetch, cols)

    def row_blocks(tag: object, prefetch: float | None, group: int) -> None:
        """`group` BLEN-row blocks: K/MLEN steps of `cols` weight tiles, each tile multiplied
        into every block's accumulator, then one write-back (+ epilogue) per block and column;
        with `prefetch` (the expected fraction of panels that have a next one) one prefetch DMA
        per K step."""
        asm("add r3, r8, r0")
        asm("add r10, r4, r0")
        if group > 1:
            asm.li("r14", blen * k)
        k_tile(group, True, prefetch)
        if k_tiles > 1:
            with asm.loop(k_tiles - 1):
                asm(f"addi r3, r3, {mlen}")
                k_tile(group, False, prefetch)
        if prefetch is not None:
            asm.li("r14", cols * mlen * rb)
            asm("aadd a1, a1, r14")
            asm("sub r6, r6, r7")
        if epilogue is None:
            asm.li("r12", n)
            asm.li("r14", blen * n)
            for column in range(cols):
                asm(f"addi r15, r5, {column * mlen}")
                for block in range(group):
                    asm(f"mwb r15, r12, {column * group + block}")
                    if block < group - 1:
                        asm("add r15, r15, r14")
            asm.li("r14", group * blen * n)
            asm("add r5, r5, r14")
        else:
            for block in range(group):
                asm.li("r12", mlen)
                asm.li("r5", out_addr)
                asm(f"mwb r5, r12, {block}")
                epilogue(tag)
        asm.li("r7", group * blen * k)
        asm("add r8, r8, r7")

    for index, (count, tag) in enumerate(segments):
        last_segment = index == len(segments) - 1
        with asm.loop(count, reg="r15"):
            # The panel's tiles must have arrived (`wait dma`). With interleaved prefetch a plain
            # linear need not drain the array: the next panel's DMAs may overwrite the half the
            # previous panel's tile ops read, which ISA rule 4 orders after those reads, and its
            # write-backs overlap this panel's tile ops. An epilogue reads the write-back buffer,
            # so the LM head drains it; one-port machines prefetch in a batch and drain too.
            asm("wait dma" if epilogue is None and interleave else "wait dma|matrix")
            asm.li("r8", x_addr)
            if column_prologue is not None:
                column_prologue()
            if epilogue is None:
                asm("add r5, r11, r0")
            _prefetch_setup(e, panel, rb, cols)
            expected = (count - 1) / count if last_segment else 1
            if interleave:
                row_blocks(tag, expected, group_size)
            else:
                with asm.loop(k_tiles):
                    _prefetch_tile(e, fmt, expected, cols)
                asm.li("r14", cols * mlen * rb)
                asm("aadd a1, a1, r14")
                asm("sub r6, r6, r7")
                row_blocks(tag, None, group_size)
            if full_groups > 1:
                with asm.loop(full_groups - 1):
                    row_blocks(tag, None, group_size)
            if rest:
                row_blocks(tag, None, rest)
            asm(f"addi r11, r11, {cols * mlen}")
            asm.li("r3", panel)
            asm("sub r4, r3, r4")
    asm("wait dma|matrix")


def emit_linear(e: Emit, x_addr: int, rows: int, k: int, w_region: str, n: int, y_addr: int,
                bias_region: str | None = None) -> None:
    emit_gemm(e, x_addr, rows, k, w_region, n, out_addr=y_addr)
    if bias_region is None:
        return
    asm, vlen = e.asm, e.npu.vlen
    buf = e.vec.alloc("bias", n)
    asm.la("a0", e.dram[bias_region].address)
    asm.li("r1", buf)
    asm.li("r2", 1)
    asm.li("r3", n)
    asm("dld.v a0, r1, r2, r3, r0, r3, bf16", dram_read=2 * n)
    asm("wait dma")
    asm.li("r1", y_addr)
    with asm.loop(rows, reg="r15"):
        asm.li("r2", buf)
        with asm.loop(n // vlen, reg="r14"):
            asm("vadd r1, r1, r2")
            asm(f"addi r1, r1, {vlen}")
            asm(f"addi r2, r2, {vlen}")
    asm("wait vector")
    e.vec.free("bias")


@dataclass(frozen=True)
class _MachineSpec:
    """What `emit_gemm` reads of a step spec: only the machine (a GEMM alone has no model)."""

    npu: NPUConfig


@dataclass(frozen=True)
class GemmKernel:
    """One linear layer compiled alone by `emit_gemm`: x (rows, k) in vector SRAM @ W^T, W (n, k)
    streamed from DRAM in the weight format, y (rows, n) to vector SRAM. The GEMM microbenchmark
    (benchmarks/gemm_roofline.py) times it, so it measures the very loop the steps run."""

    program: Program
    listing: str
    rows: int
    k: int
    n: int
    macs: int                # as the array executes them (= rows * k * n: the shape is tiled exactly)
    weight_bytes: int        # W in DRAM, MX scales included
    dram_read_bytes: int     # what the program's DMAs read (each weight byte once)


def compile_gemm(npu: NPUConfig, rows: int, k: int, n: int) -> GemmKernel:
    """The compiler's GEMM loop for one (rows, k) x (n, k)^T product, then `halt`.

    Raises CompileError when the shape is not tiled by MLEN / BLEN or two weight panels or the
    operands do not fit the machine's SRAMs (naming the preset key)."""
    dram = DramMap()
    region = dram.add("gemm.weight", npu.formats.weights, (n, k), npu.mx_block)
    vec = Allocator(f"{npu.name}: vector_sram.size_bytes", npu.vector_sram.size_bytes // npu.vector_element_bytes,
                    npu.vlen)
    x_addr, y_addr = vec.alloc("x", rows * k), vec.alloc("y", rows * n)
    e = Emit(Asm(), _MachineSpec(npu), dram, vec, scalars=None, constants={})  # type: ignore[arg-type]
    e.asm.operator("gemm")
    emit_gemm(e, x_addr, rows, k, region.name, n, out_addr=y_addr)
    e.asm("halt")
    listing = e.asm.text()
    return GemmKernel(assemble(listing, source=f"gemm_{rows}x{k}x{n}"), listing, rows, k, n,
                      macs=int(round(e.asm.macs)), weight_bytes=region.nbytes,
                      dram_read_bytes=int(round(e.asm.dma_bytes["dram_read"])))
