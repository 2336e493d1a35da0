"""Bidirectional attention over the block-addressed K/V cache, and its reference.

K/V of the query rows are first written into their slots of the layer's DRAM regions
(`dst.v`, in place: the cache is refreshed block-wise, not appended). Attention then runs per
query head h (KV head h // group, so GQA needs no copies) and per BLEN-row query block:

1. scores: `mmt` of the Q block against each K tile (MLEN keys) -> a BLEN x kv_slots strip in
   vector SRAM (the only score storage: nothing L x L, nothing in DRAM);
2. softmax per row on the strip: scale, -inf on padding slots, row max (`vmaxr`), in-place
   exp(s - max) and its chained sum (`vsum`), 1/sum (`frecip`) kept in FP SRAM;
3. P @ V: `mm` + `mma` over the key tiles accumulate in fp32 in the array; `mwb`; each row is
   scaled by its 1/sum into the head's slot of the output.

Because the strip holds a whole row, the max is known before any exp: the exact two-pass
softmax of a flash kernel's row block, with no running rescale. K and V tiles of one KV head
stay in matrix SRAM while the `group` query heads that share them run.
"""

from __future__ import annotations

from npu.compiler import kv_quant
from npu.compiler.asm import CompileError
from npu.compiler.attention_reference import masked_subrows
from npu.compiler.context import FP_SCALE, INT_KV_BASE, INT_KV_LEFT, INT_Q0, Emit
from npu.hw.rows import row_bytes


def emit_kv_write(e: Emit, layer: int, k_addr: int, v_addr: int, first_row: int = 0,
                  count: int | None = None) -> None:
    """Store the query rows' K and V into slots q0.. of every KV head (block addressing).

    A row block passes its first query row and its number of real rows (default: all query rows).
    With KV quantization (Shapes.kv_quant) npu.compiler.kv_quant emits the BAOS write instead.
    """
    asm, sh = e.asm, e.shapes
    if sh.kv_quant is not None:
        kv_quant.emit_kv_write(e, layer, k_addr, v_addr, first_row, count)
        return
    fmt = e.npu.formats.kv_cache
    rb = row_bytes(fmt, sh.slot, e.npu.mx_block)
    count = e.spec.query_length if count is None else count
    asm.comment(f"kv cache write, layer {layer}")
    asm("wait dma|matrix|vector")
    asm(f"lw r1, {INT_Q0}(r0)")
    if first_row:
        asm(f"addi r1, r1, {first_row}")
    asm.li("r2", rb)
    asm.li("r4", count)
    asm.li("r5", sh.slot)
    asm.li("r6", sh.kv_width)
    asm.li("r7", sh.kv_slots * rb)
    for kind, src in (("k", k_addr), ("v", v_addr)):
        asm.la("a0", e.dram[f"cache_{kind}.{layer}"].address)
        asm.li("r3", src)
        with asm.loop(e.spec.model.n_kv_heads):
            asm("amac a1, a0, r1, r2")
            asm(f"dst.v a1, r3, r4, r5, r2, r6, {fmt}", dram_write=count * rb)
            asm("aadd a0, a0, r7")
            asm(f"addi r3, r3, {sh.slot}")
    asm("wait dma")


def _load_head_tiles(e: Emit, areg: str, sram_start: int | str) -> None:
    """All K (or V) tiles of one KV head: tile (c, d) = keys c*MLEN.., dims d*MLEN.. at
    sram_start + ((c*DT)+d)*TILE (sram_start: an element address, or a register holding one)."""
    asm, npu, sh = e.asm, e.npu, e.shapes
    mlen = npu.mlen
    fmt = npu.formats.kv_cache
    rb = row_bytes(fmt, sh.slot, npu.mx_block)
    col_bytes = row_bytes(fmt, mlen, npu.mx_block)
    asm(f"aaddi a1, {areg}, 0")
    if isinstance(sram_start, str):
        asm(f"add r3, {sram_start}, r0")
    else:
        asm.li("r3", sram_start)
    asm.li("r1", mlen)
    asm.li("r2", rb)
    asm.li("r4", mlen * mlen)
    asm.li("r5", mlen * rb - sh.slot // mlen * col_bytes)
    with asm.loop(sh.kv_slots // mlen):
        with asm.loop(sh.slot // mlen):
            asm(f"dld.m a1, r3, r1, r1, r2, r1, {fmt}", dram_read=mlen * col_bytes)
            asm(f"aaddi a1, a1, {col_bytes}")
            asm("add r3, r3, r4")
        asm("aadd a1, a1, r5")


def emit_attention(e: Emit, layer: int, kv_len: int, q_addr: int, out_addr: int, rows: int | None = None) -> None:
    """Attention of `rows` query rows (default: all) at q_addr; K/V tiles are loaded once per call."""
    asm, npu, sh, spec = e.asm, e.npu, e.shapes, e.spec
    rows = spec.rows if rows is None else rows
    mlen, blen, vlen = npu.mlen, npu.blen, npu.vlen
    m = spec.model
    group = m.n_heads // m.n_kv_heads
    chunks, dim_tiles = sh.kv_slots // mlen, sh.slot // mlen
    tile = mlen * mlen
    head_elements = chunks * dim_tiles * tile
    if 2 * head_elements > npu.matrix_sram.size_bytes // 2:
        raise CompileError(f"{npu.name}: matrix_sram.size_bytes: K and V of one head over {sh.kv_slots} "
                           f"slots need {4 * head_elements} bytes, more than {npu.matrix_sram.size_bytes}")
    # Two KV heads' tiles in matrix SRAM: the next head's K and V stream in while this one's
    # query heads run (ISA rule 4 orders each refill after the tile ops that read the buffer).
    # The quantised cache keeps its single buffer, and so do one-port matrix SRAMs, where the
    # refill would share the port with the array's weight loads (as in `emit_gemm`).
    prefetch = (sh.kv_quant is None and npu.matrix_sram.ports >= 2
                and 4 * head_elements <= npu.matrix_sram.size_bytes // 2)
    e.matrix_peak = max(e.matrix_peak, (4 if prefetch else 2) * head_elements)
    fmt = npu.formats.kv_cache
    rb = row_bytes(fmt, sh.slot, npu.mx_block)
    strips = (e.vec.alloc("attn.strip", blen * sh.kv_slots), e.vec.alloc("attn.strip.next", blen * sh.kv_slots))
    o_tile = e.vec.alloc("attn.o", blen * sh.slot)
    subrows = sh.kv_slots // vlen
    asm.comment(f"attention, layer {layer}: {m.n_heads} heads, {chunks} key tiles, strip {blen}x{sh.kv_slots}")
    asm("wait dma|matrix|vector")
    asm.li("r13", 0)
    if sh.kv_quant is None:
        asm.la("a3", e.dram[f"cache_k.{layer}"].address)
        asm.la("a4", e.dram[f"cache_v.{layer}"].address)
    else:
        rb = kv_quant.prepare_attention(e, layer, rows)
    asm.li("r11", q_addr)
    asm.li("r12", out_addr)
    if prefetch:  # KV head 0 into buffer 0; the first switch below makes buffer 0 current
        _load_head_tiles(e, "a3", 0)
        _load_head_tiles(e, "a4", head_elements)
        asm.li("r14", sh.kv_slots * rb)
        asm("aadd a3, a3, r14")
        asm("aadd a4, a4, r14")
        asm.li("r1", 2 * head_elements)
        asm(f"sw r1, {INT_KV_BASE}(r0)")
        asm.li("r1", m.n_kv_heads - 1)
        asm(f"sw r1, {INT_KV_LEFT}(r0)")
    def emit_scores(q_reg: str, strip_reg: str) -> None:
        """Scores of the BLEN query rows at q_reg against every key tile into the strip at strip_reg."""
        asm(f"add r1, {strip_reg}, r0")
        asm.li("r2", sh.q_width)
        asm.li("r3", sh.kv_slots)
        if prefetch:
            asm(f"lw r4, {INT_KV_BASE}(r0)")
        else:
            asm.li("r4", 0)
        asm.li("r5", tile)

        def score_chunk(acc: int) -> None:
            """Q block x one key tile (its dim tiles) into accumulator `acc`, then its write-back."""
            asm(f"add r6, {q_reg}, r0")
            asm(f"mmt r6, r2, r4, {acc}", macs=blen * mlen * mlen)
            asm("add r4, r4, r5")
            if dim_tiles > 1:
                with asm.loop(dim_tiles - 1):
                    asm(f"addi r6, r6, {mlen}")
                    asm(f"mmta r6, r2, r4, {acc}", macs=blen * mlen * mlen)
                    asm("add r4, r4, r5")
            asm(f"mwb r1, r3, {acc}")
            asm(f"addi r1, r1, {mlen}")

        # Consecutive key tiles go to different accumulators, so each tile's write-back waits
        # only for its own drain while the array streams the next tiles (docs/timing.md).
        in_flight = min(npu.accumulators, chunks)
        with asm.loop(chunks // in_flight):
            for acc in range(in_flight):
                score_chunk(acc)
        for acc in range(chunks % in_flight):
            score_chunk(acc)

    def emit_softmax(strip_reg: str) -> None:
        """Softmax rows of the strip in place, 1/sum per row into FP SRAM (rinv): two rows at a
        time, so their max and sum reductions share each `wait vector` (every row's operations
        and their order are unchanged)."""
        asm(f"add r1, {strip_reg}, r0")
        asm.li("r7", e.scalars.rinv)
        asm(f"flw f6, {FP_SCALE}(r0)")
        rows_at_once = 2 if blen % 2 == 0 else 1
        lanes = (("r2", "f0", "f1", "f2"), ("r5", "f3", "f4", "f5"))[:rows_at_once]

        def row_pointer(walk: str, row: int, offset: int = 0) -> None:
            asm.li("r3", row * sh.kv_slots + offset)
            asm(f"add {walk}, r1, r3")

        with asm.loop(blen // rows_at_once):
            for row, (walk, _, _, _) in enumerate(lanes):
                row_pointer(walk, row)
                with asm.loop(subrows):
                    asm(f"vmuls {walk}, {walk}, f6")
                    asm(f"addi {walk}, {walk}, {vlen}")
                for j in masked_subrows(kv_len, sh.kv_slots, vlen):
                    row_pointer(walk, row, j * vlen)
                    asm.li("r3", e.constants["key_mask"] + j * vlen)
                    asm(f"vadd {walk}, {walk}, r3")
            for row, (walk, peak, _, _) in enumerate(lanes):
                asm(f"flui {peak}, -inf")
                row_pointer(walk, row)
                with asm.loop(subrows):
                    asm(f"vmaxr {peak}, {walk}")
                    asm(f"addi {walk}, {walk}, {vlen}")
            asm("wait vector")
            for row, (walk, peak, total, _) in enumerate(lanes):
                asm(f"flui {total}, 0.0")
                row_pointer(walk, row)
                with asm.loop(subrows):
                    asm(f"vsubs {walk}, {walk}, {peak}")
                    asm(f"vexp {walk}, {walk}")
                    asm(f"vsum {total}, {walk}")
                    asm(f"addi {walk}, {walk}, {vlen}")
            asm("wait vector")
            for row, (_, _, total, inverse) in enumerate(lanes):
                asm(f"frecip {inverse}, {total}")
                asm(f"fsw {inverse}, {row}(r7)")
            asm(f"addi r7, r7, {rows_at_once}")
            asm.li("r3", rows_at_once * sh.kv_slots)
            asm("add r1, r1, r3")

    def emit_pv(strip_reg: str) -> None:
        """P (the strip at strip_reg) @ V over the key tiles into the output tile buffer."""
        asm.li("r1", head_elements)
        if prefetch:
            asm(f"lw r2, {INT_KV_BASE}(r0)")
            asm("add r1, r1, r2")
        asm(f"add r2, {strip_reg}, r0")
        asm.li("r3", sh.kv_slots)
        asm.li("r4", o_tile)
        asm.li("r5", tile)
        asm.li("r6", sh.slot)
        asm.li("r14", dim_tiles * tile)
        with asm.loop(dim_tiles):
            asm("add r7, r2, r0")
            asm("add r10, r1, r0")
            asm("mm r7, r3, r10, 0", macs=blen * mlen * mlen)
            if chunks > 1:
                with asm.loop(chunks - 1):
                    asm(f"addi r7, r7, {mlen}")
                    asm("add r10, r10, r14")
                    asm("mma r7, r3, r10, 0", macs=blen * mlen * mlen)
            asm("mwb r4, r6, 0")
            asm(f"addi r4, r4, {mlen}")
            asm("add r1, r1, r5")

    def emit_rescale() -> None:
        """The output tile's rows times their 1/sum into the head's slot of the block at r9; r9
        moves to the next block."""
        asm.li("r1", o_tile)
        asm("add r3, r9, r0")
        asm.li("r7", e.scalars.rinv)
        asm.li("r5", sh.q_width)
        with asm.loop(blen):
            asm("flw f2, 0(r7)")
            asm("add r2, r1, r0")
            asm("add r4, r3, r0")
            with asm.loop(sh.slot // vlen):
                asm("vmuls r4, r2, f2")
                asm(f"addi r2, r2, {vlen}")
                asm(f"addi r4, r4, {vlen}")
            asm("addi r7, r7, 1")
            asm(f"addi r1, r1, {sh.slot}")
            asm("add r3, r3, r5")
        asm.li("r1", blen * sh.q_width)
        asm("add r9, r9, r1")

    with asm.loop(m.n_heads):
        skip = asm.label("skip")
        asm(f"bne r13, r0, {skip}")
        with asm.weighted(1 / group):  # taken once per KV head
            if prefetch:
                asm("wait dma")  # this KV head's tiles, prefetched under the previous one
                asm(f"lw r2, {INT_KV_BASE}(r0)")
                asm.li("r3", 2 * head_elements)
                asm("sub r9, r3, r2")  # this head's buffer; the other one (r2) takes the next head
                asm(f"sw r9, {INT_KV_BASE}(r0)")
                asm(f"lw r1, {INT_KV_LEFT}(r0)")
                asm("slt r7, r0, r1")
                asm("sub r1, r1, r7")
                asm(f"sw r1, {INT_KV_LEFT}(r0)")
                with asm.loop("r7", expected=(m.n_kv_heads - 1) / m.n_kv_heads):
                    asm("add r10, r2, r0")
                    _load_head_tiles(e, "a3", "r10")
                    asm.li("r6", head_elements)
                    asm("add r10, r10, r6")
                    _load_head_tiles(e, "a4", "r10")
                    asm.li("r14", sh.kv_slots * rb)
                    asm("aadd a3, a3, r14")
                    asm("aadd a4, a4, r14")
            else:
                asm("wait dma|matrix")
                if sh.kv_quant is None:
                    _load_head_tiles(e, "a3", 0)
                    _load_head_tiles(e, "a4", head_elements)
                else:
                    kv_quant.emit_load_head(e, head_elements)
                asm.li("r14", sh.kv_slots * rb)
                asm("aadd a3, a3, r14")
                asm("aadd a4, a4, r14")
                asm("wait dma")
            asm.li("r13", group)
        asm.place(skip)
        asm("addi r13, r13, -1")
        asm("add r8, r11, r0")
        asm("add r9, r12, r0")
        asm.li("r15", strips[0])
        blocks = rows // blen
        # Software pipeline over the head's row blocks: the array computes the next block's
        # scores into the other strip while the vector unit runs this block's softmax, and the
        # rescale of the previous block's P V output opens each iteration.
        emit_scores("r8", "r15")
        with asm.loop(blocks):
            asm("wait matrix")  # this block's scores and the previous block's P V are in
            first = asm.label("first")
            asm(f"beq r8, r11, {first}")
            with asm.weighted((blocks - 1) / blocks):
                emit_rescale()
            asm.place(first)
            asm.li("r3", blen * sh.q_width)
            asm("add r10, r8, r3")
            asm.li("r3", rows * sh.q_width)
            asm("add r3, r11, r3")
            last = asm.label("last")
            asm(f"beq r10, r3, {last}")
            with asm.weighted((blocks - 1) / blocks):
                asm.li("r3", strips[0] + strips[1])
                asm("sub r14, r3, r15")
                emit_scores("r10", "r14")
            asm.place(last)
            emit_softmax("r15")
            asm("wait vector")
            emit_pv("r15")
            asm.li("r1", blen * sh.q_width)
            asm("add r8, r8, r1")
            asm.li("r3", strips[0] + strips[1])
            asm("sub r15, r3, r15")
        asm("wait matrix")
        emit_rescale()
        asm("wait vector")
        asm(f"addi r11, r11, {sh.slot}")
        asm(f"addi r12, r12, {sh.slot}")
    asm("wait dma|matrix|vector")
    e.vec.free("attn.o")
    e.vec.free("attn.strip.next")
    e.vec.free("attn.strip")
    if sh.kv_quant is not None:
        kv_quant.emit_output_shift(e, out_addr, rows)
