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

Temperature (StepSpec.temperature, LLaDA's Gumbel-max sampling): x0 = argmax of
s = rnd(rnd(g) * T) + logits, T from fparams[1], g from the DRAM region "noise" that the runtime
writes per step; the softmax keeps its own running max M of the logits, and the confidence is the
probability of x0 under the unperturbed logits, exp(l[x0] - M) / l (npu.models.decoding.
token_confidence, kernels.reference.confidence_reference). Greedy programs are unchanged.
"""

from __future__ import annotations

import math

import numpy as np

from npu.compiler.asm import CompileError
from npu.compiler.context import FP_MLEN, FP_TAU, FP_TEMP, INT_K, INT_MROW, INT_Q0, INT_S0, Emit, StepSpec, f32
from npu.compiler.layout import DramMap, Shapes
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


# ---- temperature (Gumbel-max) sampling --------------------------------------------------------


def add_noise_region(dram: DramMap, shapes: Shapes) -> None:
    """Append the "noise" region: Gumbel values g, fp32, one vocab_pad row per sampled row.

    It goes after every other region, so adding it moves nothing the greedy programs address;
    the runtime writes it before each temperature step (`noise_image`).
    """
    npu = shapes.npu
    dram.add("noise", "fp32", (shapes.seq_len, shapes.vocab_pad), npu.mx_block)
    if dram.size > npu.dram.capacity_bytes:
        raise CompileError(f"{npu.name}: dram.capacity_gib: the image with the Gumbel noise region needs "
                           f"{dram.size / 2**30:.2f} GiB, more than {npu.dram.capacity_gib} GiB")


def check_sampling(spec: StepSpec, temperature: float, noise: np.ndarray | None) -> np.ndarray | None:
    """The step's noise as fp32 (sample_length, vocab), or None for a greedy step; clear errors.

    A temperature program needs T > 0 (T = 0 would turn a -inf Gumbel draw into NaN; greedy
    steps use the greedy program) and noise of shape (sample_length, vocab_size).
    """
    m = spec.model
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.floating)) \
            or not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
    if not spec.temperature:
        if temperature != 0 or noise is not None:
            raise ValueError(f"temperature {temperature} / noise given to a greedy step; compile it with "
                             f"StepSpec(..., temperature=True)")
        return None
    if temperature == 0:
        raise ValueError("a temperature step needs temperature > 0 (temperature 0 is the greedy program)")
    shape = (spec.sample_length, m.vocab_size)
    if noise is None or np.shape(noise) != shape:
        raise ValueError(f"temperature {temperature} needs Gumbel noise of shape (sample_length, vocab_size) = "
                         f"{shape}, got {None if noise is None else np.shape(noise)}")
    noise = np.asarray(noise, np.float32)
    if np.isnan(noise).any() or (noise == np.inf).any():
        raise ValueError("Gumbel noise must not hold NaN or +inf")
    return noise


def noise_image(noise: np.ndarray, vocab_pad: int) -> np.ndarray:
    """Noise rows as the "noise" region holds them: vocabulary padding columns are 0."""
    image = np.zeros((noise.shape[0], vocab_pad), np.float32)
    image[:, :noise.shape[1]] = noise
    return image


# ---- reference ------------------------------------------------------------------------------


def reference_lm_head(h: np.ndarray, w: np.ndarray, vocab: int, mask_id: int, rnd, mlen: int, vlen: int,
                      temperature: float = 0.0,
                      noise: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x0, confidence, logits as the tiles saw them) for the sampled rows h (Ls, d).

    With noise (Ls, vocab), x0 is the argmax of s = rnd(rnd(rnd(g) * T) + logits), as
    kernels.reference.perturbed_logits, and the confidence stays the softmax probability of x0
    under the logits: exp(l[x0] - M) * (1 / sum), M the running max of the logits.
    """
    logits = rnd(reference_gemm(h, w.T, mlen))
    bias = vocab_bias(vocab, w.shape[0], mask_id)
    rows = h.shape[0]
    scaled = None if noise is None else rnd(rnd(noise_image(noise, w.shape[0])) * np.float32(temperature))
    peak = np.full(rows, -np.inf, np.float32)  # running max of the argmax source
    top = np.full(rows, -np.inf, np.float32)  # running max of the logits (the softmax's M)
    total = np.zeros(rows, np.float32)
    index = np.zeros(rows, np.int64)
    for c in range(w.shape[0] // mlen):
        for j in biased_subrows(bias, c, mlen, vlen):
            cols = slice(c * mlen + j * vlen, c * mlen + (j + 1) * vlen)
            logits[:, cols] = rnd(logits[:, cols] + bias[cols])
        tile = slice(c * mlen, (c + 1) * mlen)
        source = logits[:, tile] if scaled is None else rnd(scaled[:, tile] + logits[:, tile])
        for j in range(mlen // vlen):
            row = source[:, j * vlen: (j + 1) * vlen]
            row_max, lane = row.max(axis=1), row.argmax(axis=1)
            better = row_max > peak
            peak = np.where(better, row_max, peak).astype(np.float32)
            index = np.where(better, c * mlen + j * vlen + lane, index)
        old = top
        top = peak if scaled is None else np.maximum(top, logits[:, tile].max(axis=1)).astype(np.float32)
        total = f32(total * hw_exp(f32(old - top)))
        for j in range(mlen // vlen):
            row = logits[:, c * mlen + j * vlen: c * mlen + (j + 1) * vlen]
            total = f32(total + hw_tree_sum(rnd(hw_exp(rnd(row - top[:, None])))))
    confidence = hw_recip(total)
    if scaled is not None:
        chosen = np.where(peak > -np.inf, logits[np.arange(rows), index], np.float32(-np.inf)).astype(np.float32)
        confidence = f32(hw_exp(f32(chosen - top)) * confidence)
    return index.astype(np.int32), confidence, logits


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


def _argmax_dllm(e: Emit, bias_at: int | None, subrows_with_bias: list[int], row: str = "r5") -> None:
    """f0, r12 <- running max / argmax over the MLEN values at `row` (`vargmax`, r11 = first column)."""
    asm, vlen = e.asm, e.npu.vlen
    for j in range(e.npu.mlen // vlen):
        asm(f"addi r14, {row}, {j * vlen}")
        asm(f"addi r13, r11, {j * vlen}")
        if j in subrows_with_bias:
            asm.li("r3", bias_at + j * vlen)
            asm("vadd r14, r14, r3")
        asm("vargmax f0, r12, r14, r13")
    asm("wait vector")


def _argmax_generic(e: Emit, bias_at: int | None, subrows_with_bias: list[int], row: str = "r5") -> None:
    """f0, r12 <- running max / argmax without `vargmax` (f5 = tile max, ramp finds the lane)."""
    asm, vlen, mlen = e.asm, e.npu.vlen, e.npu.mlen
    asm("flui f5, -inf")
    for j in range(mlen // vlen):
        asm(f"addi r14, {row}, {j * vlen}")
        if j in subrows_with_bias:
            asm.li("r3", bias_at + j * vlen)
            asm("vadd r14, r14, r3")
        asm("vmaxr f5, r14")
    asm("wait vector")
    asm("flui f6, 0.0")
    asm.li("r3", e.constants["row_tmp"])
    for j in range(mlen // vlen):
        asm(f"addi r14, {row}, {j * vlen}")
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
    noise_buf = e.vec.alloc("lm.noise", blen * mlen) if spec.temperature else None
    argmax = _argmax_dllm if npu.dllm_instructions else _argmax_generic
    ls = spec.sample_length
    blocks = spec.sample_rows // blen
    asm.comment(f"lm head + running argmax/confidence over {n_tiles} vocabulary tiles"
                + (" (Gumbel-max sampling)" if spec.temperature else ""))
    asm.operator("x0")  # the sampling state; the LM head's tiles are interleaved with its epilogue
    asm("flui f0, -inf")
    asm("flui f1, 0.0")
    asm.li("r1", 0)
    with asm.loop(ls):
        asm(f"fsw f0, {sc.mst}(r1)")
        asm(f"fsw f1, {sc.lst}(r1)")
        asm(f"sw r0, {sc.idx}(r1)")
        if spec.temperature:
            asm(f"fsw f0, {sc.pst}(r1)")
            asm(f"fsw f0, {sc.cst}(r1)")
        asm("addi r1, r1, 1")
    if spec.temperature:
        asm.la("a5", e.dram["noise"].address)

    def column_prologue() -> None:
        asm(f"sw r0, {INT_MROW}(r0)")

    def epilogue(chunk) -> None:
        asm("wait matrix")
        asm.operator("x0")
        sample_tile(chunk)
        asm.operator("lm_head")

    def sample_tile(chunk) -> None:
        bias_at = None if chunk is None else e.constants["vocab_bias"] + special.index(chunk) * mlen
        with_bias = [] if chunk is None else biased_subrows(bias, chunk, mlen, vlen)
        asm(f"lw r1, {INT_MROW}(r0)")
        asm.li("r2", ls)
        asm("sub r2, r2, r1")
        asm.li("r3", blen)
        asm("min r2, r2, r3")
        asm(f"addi r3, r1, {blen}")
        asm(f"sw r3, {INT_MROW}(r0)")
        if spec.temperature:
            _load_noise_tile(e, noise_buf, 4 * mlen * ls / blocks)
        asm.li("r5", tile_buf)
        asm("add r10, r1, r0")
        if spec.temperature:
            with asm.loop("r2", expected=ls / blocks):
                _sample_row(e, argmax, bias_at, with_bias)
            return
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

    asm.operator("lm_head")
    emit_gemm(e, h_addr, spec.sample_rows, e.shapes.d_model_pad, "lm_head.weight", vocab_pad, out_addr=tile_buf,
              epilogue=epilogue, segments=segments, column_prologue=column_prologue)
    if spec.temperature:
        e.vec.free("lm.noise")
    e.vec.free("lm.tile")


def _load_noise_tile(e: Emit, noise_buf: int, expected_bytes: float) -> None:
    """noise_buf <- g of the block's r2 rows (from sampled row r1) x the tile's MLEN columns (r11 on).

    a5 holds the "noise" region; rows are vocab_pad fp32 values apart, land MLEN apart, and
    `dld.v` rounds them to the vector format (rnd(g), as kernels.reference.perturbed_logits).
    """
    asm, mlen = e.asm, e.npu.mlen
    row_bytes = 4 * e.shapes.vocab_pad
    asm.li("r3", row_bytes)
    asm("amac a6, a5, r1, r3")
    asm.li("r3", 4)
    asm("amac a6, a6, r11, r3")
    asm.li("r3", mlen)
    asm.li("r7", noise_buf)
    asm.li("r12", row_bytes)
    asm("dld.v a6, r7, r2, r3, r12, r3, fp32", dram_read=expected_bytes)
    asm("wait dma")


def _sample_row(e: Emit, argmax, bias_at: int | None, with_bias: list[int]) -> None:
    """One sampled row of a tile under temperature: r5 = its logits, r7 = its noise, r10 = row.

    s = rnd(rnd(g) * T) + logits (rounded) replaces the row's noise; the running argmax runs on
    s (pst, idx) and the online softmax on the logits with their own running max M (mst, lst).
    When the tile raises the max of s, x0's logit is read back through one `vstf` of its VLEN
    chunk into FP SRAM and kept in cst; the store is redirected to the scratch row otherwise,
    so the row has no branch and the statistics stay exact. Registers: f0 = max of s, f1 = its
    value before the tile (then the exp-sum), f2 = M, f3 = M before the tile, f4 = scratch.
    """
    asm, sc, mlen, vlen = e.asm, e.scalars, e.npu.mlen, e.npu.vlen
    chunks = mlen // vlen
    shift = vlen.bit_length() - 1
    for j in with_bias:
        asm.li("r3", bias_at + j * vlen)
        asm(f"addi r14, r5, {j * vlen}")
        asm("vadd r14, r14, r3")
    asm(f"flw f2, {FP_TEMP}(r0)")
    for j in range(chunks):
        asm(f"addi r14, r7, {j * vlen}")
        asm(f"addi r13, r5, {j * vlen}")
        asm("vmuls r14, r14, f2")
        asm("vadd r14, r14, r13")
    asm(f"flw f3, {sc.mst}(r10)")
    asm("fmov f2, f3")
    for j in range(chunks):
        asm(f"addi r14, r5, {j * vlen}")
        asm("vmaxr f2, r14")
    asm(f"flw f0, {sc.pst}(r10)")
    asm("fmov f1, f0")
    asm(f"lw r12, {sc.idx}(r10)")
    argmax(e, None, [], row="r7")
    asm("flt r1, f1, f0")
    asm("sub r3, r12, r11")
    asm("mul r3, r3, r1")
    asm(f"srli r13, r3, {shift}")
    asm(f"slli r13, r13, {shift}")
    asm("sub r3, r3, r13")
    asm("add r13, r13, r5")
    asm.li("r14", sc.lane)
    asm("vstf r14, r13")
    asm("wait vector")
    asm(f"flw f4, {sc.lane}(r3)")
    asm(f"addi r13, r10, {sc.cst - sc.lane}")
    asm("mul r13, r13, r1")
    asm(f"fsw f4, {sc.lane}(r13)")
    asm(f"fsw f0, {sc.pst}(r10)")
    asm(f"sw r12, {sc.idx}(r10)")
    asm("fsub f4, f3, f2")
    asm("fexp f4, f4")
    asm(f"flw f1, {sc.lst}(r10)")
    asm("fmul f1, f1, f4")
    for j in range(chunks):
        asm(f"addi r14, r5, {j * vlen}")
        asm("vsubs r14, r14, f2")
        asm("vexp r14, r14")
        asm("vsum f1, r14")
    asm("wait vector")
    asm(f"fsw f1, {sc.lst}(r10)")
    asm(f"fsw f2, {sc.mst}(r10)")
    asm("addi r10, r10, 1")
    asm(f"addi r5, r5, {mlen}")
    asm(f"addi r7, r7, {mlen}")


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
        if spec.temperature:  # softmax probability of x0 under the logits: exp(l[x0] - M) / sum
            asm(f"flw f2, {sc.cst}(r1)")
            asm(f"flw f3, {sc.mst}(r1)")
            asm("fsub f2, f2, f3")
            asm("fexp f2, f2")
            asm("fmul f1, f2, f1")
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
