"""The sampling pass on chip: LM head fused with the running argmax and confidence, then commit.

LM head. The vocabulary is one pass of the GEMM column loop (linear.emit_gemm): each BLEN x MLEN
logits tile lands in a tile buffer and an epilogue folds it into per-row running state in FP /
INT SRAM: max m, exp-sum l and argmax idx. Per tile and row:
    m_old = m; m, idx <- running argmax over the tile's VLEN rows     (`vargmax`, -inf start)
    l = l * exp(m_old - m) + sum(exp(tile - m))                        (online softmax sum)
so the logits are never written to DRAM and the weights stream once; confidence = 1 / l is the
softmax probability of x0. [MASK] and the vocabulary padding get -inf by adding a bias row to the
tiles that hold them (those tiles get their own copy of the loop body).

Commit. Confidences are gathered into vector rows (rounded to the vector format: the commit rule
ranks these values), ineligible positions (not [MASK], or beyond the block) become -inf, `vrank`
over all chunk pairs counts for each position the positions that beat it (ties to the lower
position), `vtopk` keeps rank < k; the threshold rule is `vthresh` OR rank < 1 (always at least
one); `vseli` commits x0 into the block's token ids in INT SRAM.

Machines without dLLM instructions (ar-npu) get the generic lowering of both: the argmax from
`vmaxr` plus a lowest-lane search (`vges` x a descending ramp, `vmaxr`), and ranks from a scalar
double loop over the block. Both lowerings compute the same values, which the reference states.
"""

from __future__ import annotations

import numpy as np

from npu.compiler.context import FP_MLEN, FP_TAU, INT_K, INT_MROW, INT_Q0, INT_S0, Emit, f32
from npu.compiler.linear import emit_gemm, reference_gemm
from npu.hw.numerics import hw_exp, hw_recip, hw_tree_sum


def vocab_bias(vocab: int, vocab_pad: int, mask_id: int) -> np.ndarray:
    bias = np.zeros(vocab_pad, np.float32)
    bias[mask_id] = -np.inf
    bias[vocab:] = -np.inf
    return bias


def biased_subrows(bias: np.ndarray, chunk: int, mlen: int, vlen: int) -> list[int]:
    """VLEN rows of vocabulary tile `chunk` that hold a -inf bias lane."""
    return [j for j in range(mlen // vlen)
            if np.isinf(bias[chunk * mlen + j * vlen: chunk * mlen + (j + 1) * vlen]).any()]


def ramp(mlen: int) -> np.ndarray:
    """MLEN - lane: the lowest lane holding a maximum is MLEN - max(ramp * is_max)."""
    return (mlen - np.arange(mlen)).astype(np.float32)


# ---- reference ------------------------------------------------------------------------------


def reference_lm_head(h: np.ndarray, w: np.ndarray, vocab: int, mask_id: int, rnd, mlen: int,
                      vlen: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x0, confidence, logits as the tiles saw them) for the sampled rows h (Ls, d)."""
    logits = rnd(reference_gemm(h, w.T, mlen))
    bias = vocab_bias(vocab, w.shape[0], mask_id)
    rows = h.shape[0]
    peak = np.full(rows, -np.inf, np.float32)
    total = np.zeros(rows, np.float32)
    index = np.zeros(rows, np.int64)
    for c in range(w.shape[0] // mlen):
        for j in biased_subrows(bias, c, mlen, vlen):
            cols = slice(c * mlen + j * vlen, c * mlen + (j + 1) * vlen)
            logits[:, cols] = rnd(logits[:, cols] + bias[cols])
        old = peak.copy()
        for j in range(mlen // vlen):
            row = logits[:, c * mlen + j * vlen: c * mlen + (j + 1) * vlen]
            row_max, lane = row.max(axis=1), row.argmax(axis=1)
            better = row_max > peak
            peak = np.where(better, row_max, peak).astype(np.float32)
            index = np.where(better, c * mlen + j * vlen + lane, index)
        total = f32(total * hw_exp(f32(old - peak)))
        for j in range(mlen // vlen):
            row = logits[:, c * mlen + j * vlen: c * mlen + (j + 1) * vlen]
            total = f32(total + hw_tree_sum(rnd(hw_exp(rnd(row - peak[:, None])))))
    return index.astype(np.int32), hw_recip(total), logits


def reference_commit(confidence: np.ndarray, x0: np.ndarray, block_tokens: np.ndarray, mask_id: int,
                     sampling: str, k: int, tau: float, rnd) -> tuple[np.ndarray, np.ndarray]:
    """(committed, tokens after commit) for one block, ranking the vector-format confidences."""
    rounded = rnd(confidence)
    eligible = block_tokens == mask_id
    score = np.where(eligible, rounded, np.float32(-np.inf))
    position = np.arange(len(score))
    beats = (score[None, :] > score[:, None]) | ((score[None, :] == score[:, None]) & (position[None, :] < position[:, None]))
    rank = beats.sum(axis=1)
    if sampling == "topk":
        committed = eligible & (rank < k)
    else:
        committed = eligible & ((rounded >= np.float32(tau)) | (rank < 1))
    return committed, np.where(committed, x0, block_tokens).astype(np.int32)


# ---- LM head --------------------------------------------------------------------------------


def _argmax_dllm(e: Emit, bias_at: int | None, subrows_with_bias: list[int]) -> None:
    asm, vlen = e.asm, e.npu.vlen
    for j in range(e.npu.mlen // vlen):
        asm(f"addi r14, r5, {j * vlen}")
        asm(f"addi r13, r11, {j * vlen}")
        if j in subrows_with_bias:
            asm.li("r3", bias_at + j * vlen)
            asm("vadd r14, r14, r3")
        asm("vargmax f0, r12, r14, r13")
    asm("wait vector")


def _argmax_generic(e: Emit, bias_at: int | None, subrows_with_bias: list[int]) -> None:
    """f0, r12 <- running max / argmax without `vargmax` (f5 = tile max, ramp finds the lane)."""
    asm, vlen, mlen = e.asm, e.npu.vlen, e.npu.mlen
    asm("flui f5, -inf")
    for j in range(mlen // vlen):
        asm(f"addi r14, r5, {j * vlen}")
        if j in subrows_with_bias:
            asm.li("r3", bias_at + j * vlen)
            asm("vadd r14, r14, r3")
        asm("vmaxr f5, r14")
    asm("wait vector")
    asm("flui f6, 0.0")
    asm.li("r3", e.constants["row_tmp"])
    for j in range(mlen // vlen):
        asm(f"addi r14, r5, {j * vlen}")
        asm.li("r13", e.constants["ramp"] + j * vlen)
        asm("vges r3, r14, f5")
        asm("vmul r3, r3, r13")
        asm("vmaxr f6, r3")
    asm("wait vector")
    asm(f"flw f7, {FP_MLEN}(r0)")
    asm("fsub f6, f7, f6")
    asm("fcvt.i.f r3, f6")
    asm("add r3, r3, r11")
    asm("flt r13, f0, f5")
    asm("sub r3, r3, r12")
    asm("mul r3, r3, r13")
    asm("add r12, r12, r3")
    asm("fmax f0, f0, f5")


def emit_lm_head(e: Emit, h_addr: int) -> None:
    """Running argmax + confidence state for the sampled rows at h_addr (sample_rows x d)."""
    asm, npu, spec, sc = e.asm, e.npu, e.spec, e.scalars
    mlen, blen, vlen = npu.mlen, npu.blen, npu.vlen
    m = spec.model
    vocab_pad = e.shapes.vocab_pad
    bias = vocab_bias(m.vocab_size, vocab_pad, m.mask_token_id)
    n_tiles = vocab_pad // mlen
    special = [c for c in range(n_tiles) if biased_subrows(bias, c, mlen, vlen)]
    segments: list[tuple[int, object]] = []
    previous = 0
    for c in special:
        if c > previous:
            segments.append((c - previous, None))
        segments.append((1, c))
        previous = c + 1
    if previous < n_tiles:
        segments.append((n_tiles - previous, None))
    tile_buf = e.vec.alloc("lm.tile", blen * mlen)
    argmax = _argmax_dllm if npu.dllm_instructions else _argmax_generic
    ls = spec.sample_length
    asm.comment(f"lm head + running argmax/confidence over {n_tiles} vocabulary tiles")
    asm("flui f0, -inf")
    asm("flui f1, 0.0")
    asm.li("r1", 0)
    with asm.loop(ls):
        asm(f"fsw f0, {sc.mst}(r1)")
        asm(f"fsw f1, {sc.lst}(r1)")
        asm(f"sw r0, {sc.idx}(r1)")
        asm("addi r1, r1, 1")

    def column_prologue() -> None:
        asm(f"sw r0, {INT_MROW}(r0)")

    def epilogue(chunk) -> None:
        bias_at = None if chunk is None else e.constants["vocab_bias"] + special.index(chunk) * mlen
        with_bias = [] if chunk is None else biased_subrows(bias, chunk, mlen, vlen)
        asm("wait matrix")
        asm(f"lw r1, {INT_MROW}(r0)")
        asm.li("r2", ls)
        asm("sub r2, r2, r1")
        asm.li("r3", blen)
        asm("min r2, r2, r3")
        asm(f"addi r3, r1, {blen}")
        asm(f"sw r3, {INT_MROW}(r0)")
        asm.li("r5", tile_buf)
        asm("add r10, r1, r0")
        with asm.loop("r2", expected=ls / (spec.sample_rows // blen)):
            asm(f"flw f0, {sc.mst}(r10)")
            asm("fmov f3, f0")
            asm(f"lw r12, {sc.idx}(r10)")
            argmax(e, bias_at, with_bias)
            asm("fsub f4, f3, f0")
            asm("fexp f4, f4")
            asm(f"flw f1, {sc.lst}(r10)")
            asm("fmul f1, f1, f4")
            for j in range(mlen // vlen):
                asm(f"addi r14, r5, {j * vlen}")
                asm("vsubs r14, r14, f0")
                asm("vexp r14, r14")
                asm("vsum f1, r14")
            asm("wait vector")
            asm(f"fsw f1, {sc.lst}(r10)")
            asm(f"fsw f0, {sc.mst}(r10)")
            asm(f"sw r12, {sc.idx}(r10)")
            asm("addi r10, r10, 1")
            asm(f"addi r5, r5, {mlen}")

    emit_gemm(e, h_addr, spec.sample_rows, m.d_model, "lm_head.weight", vocab_pad, out_addr=tile_buf,
              epilogue=epilogue, segments=segments, column_prologue=column_prologue)
    e.vec.free("lm.tile")


# ---- commit ---------------------------------------------------------------------------------


def _commit_dllm(e: Emit) -> None:
    asm, vlen, sc, spec = e.asm, e.npu.vlen, e.scalars, e.spec
    chunks = spec.sample_pad // vlen
    rows = {name: e.vec.alloc(f"commit.{name}", chunks * vlen) for name in ("conf", "elig", "score", "mask", "m1")}
    asm.li("r1", spec.model.mask_token_id)
    asm.li("r2", e.constants["neg_inf"])
    asm.li("r3", e.constants["zero"])
    for j in range(chunks):
        asm.li("r4", sc.conf + j * vlen)
        asm.li("r5", rows["conf"] + j * vlen)
        asm("vldf r5, r4")
        asm.li("r4", sc.blk + j * vlen)
        asm.li("r6", rows["elig"] + j * vlen)
        asm("vieq r6, r4, r1")
        asm.li("r7", rows["score"] + j * vlen)
        asm("vsel r7, r5, r2, r6")
        asm.li("r4", sc.rank + j * vlen)
        asm("vsti r4, r3")
    for c in range(chunks):
        for o in range(chunks):
            asm.li("r4", sc.rank + c * vlen)
            asm.li("r5", rows["score"] + c * vlen)
            asm.li("r6", rows["score"] + o * vlen)
            asm("vrank r4, r5, r6")
    asm(f"lw r8, {INT_K}(r0)")
    asm.li("r9", 1)
    asm(f"flw f1, {FP_TAU}(r0)")
    for j in range(chunks):
        asm.li("r4", sc.rank + j * vlen)
        asm.li("r5", rows["elig"] + j * vlen)
        asm.li("r6", rows["mask"] + j * vlen)
        if spec.sampling == "topk":
            asm("vtopk r6, r4, r5, r8")
        else:
            asm.li("r7", rows["m1"] + j * vlen)
            asm("vtopk r7, r4, r5, r9")
            asm.li("r10", rows["score"] + j * vlen)
            asm("vthresh r6, r10, r5, f1")
            asm("vmax r6, r6, r7")
        asm.li("r4", sc.blk + j * vlen)
        asm.li("r5", sc.idx + j * vlen)
        asm("vseli r4, r5, r4, r6")
        asm.li("r5", sc.com + j * vlen)
        asm("vsti r5, r6")
    asm("wait vector")
    for name in reversed(list(rows)):
        e.vec.free(f"commit.{name}")


def _commit_generic(e: Emit) -> None:
    asm, vlen, sc, spec = e.asm, e.npu.vlen, e.scalars, e.spec
    ls = spec.sample_length
    row = e.vec.alloc("commit.row", vlen)
    asm.li("r1", spec.model.mask_token_id)
    asm.li("r2", row)
    for j in range(spec.sample_pad // vlen):
        asm.li("r3", sc.conf + j * vlen)
        asm("vldf r2, r3")
        asm.li("r3", sc.confr + j * vlen)
        asm("vstf r3, r2")
        asm.li("r3", sc.blk + j * vlen)
        asm("vieq r2, r3, r1")
        asm.li("r3", sc.elig + j * vlen)
        asm("vsti r3, r2")
    asm("wait vector")
    asm(f"lw r9, {INT_K}(r0)")
    asm(f"flw f2, {FP_TAU}(r0)")
    asm.li("r1", 0)
    with asm.loop(ls):
        asm(f"flw f0, {sc.confr}(r1)")
        asm.li("r3", 0)
        asm.li("r2", 0)
        with asm.loop(ls):
            asm(f"flw f1, {sc.confr}(r2)")
            asm(f"lw r5, {sc.elig}(r2)")
            asm("flt r6, f0, f1")
            asm("feq r7, f0, f1")
            asm("slt r8, r2, r1")
            asm("and r7, r7, r8")
            asm("or r6, r6, r7")
            asm("and r6, r6, r5")
            asm("add r3, r3, r6")
            asm("addi r2, r2, 1")
        asm(f"lw r5, {sc.elig}(r1)")
        if spec.sampling == "topk":
            asm("slt r6, r3, r9")
        else:
            asm("fle r6, f2, f0")
            asm("slti r7, r3, 1")
            asm("or r6, r6, r7")
        asm("and r6, r6, r5")
        asm(f"sw r6, {sc.com}(r1)")
        asm(f"lw r7, {sc.idx}(r1)")
        asm(f"lw r8, {sc.blk}(r1)")
        asm("sub r7, r7, r8")
        asm("mul r7, r7, r6")
        asm("add r8, r8, r7")
        asm(f"sw r8, {sc.blk}(r1)")
        asm("addi r1, r1, 1")
    e.vec.free("commit.row")


def emit_commit(e: Emit) -> None:
    """Confidence, commit rule, token update, and the step's outputs back to DRAM."""
    asm, sc, spec = e.asm, e.scalars, e.spec
    ls = spec.sample_length
    asm.comment(f"commit ({spec.sampling})")
    asm("wait dma|matrix|vector")
    asm.li("r1", 0)
    with asm.loop(ls):
        asm(f"flw f1, {sc.lst}(r1)")
        asm("frecip f1, f1")
        asm(f"fsw f1, {sc.conf}(r1)")
        asm("addi r1, r1, 1")
    (_commit_dllm if e.npu.dllm_instructions else _commit_generic)(e)
    asm("wait dma|matrix|vector")
    asm(f"lw r1, {INT_Q0}(r0)")
    asm(f"lw r2, {INT_S0}(r0)")
    asm("add r1, r1, r2")
    asm.li("r3", 4)
    asm.la("a0", e.dram["tokens"].address)
    asm("amac a1, a0, r1, r3")
    asm.li("r5", 1)
    asm.li("r6", ls)
    for address, source, kind, fmt in ((None, sc.blk, "i", "int32"), ("out.x0", sc.idx, "i", "int32"),
                                       ("out.confidence", sc.conf, "f", "fp32"),
                                       ("out.committed", sc.com, "i", "int32")):
        if address is not None:
            asm.la("a1", e.dram[address].address)
        asm.li("r4", source)
        asm(f"dst.{kind} a1, r4, r5, r6, r0, r6, {fmt}", dram_write=4 * ls)
    asm("wait dma")
