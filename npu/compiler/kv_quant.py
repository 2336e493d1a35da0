"""BAOS KV-cache quantization on the dnpu: online smoothing and quantize-on-write (docs/baos.md).

What a program compiled with `Shapes.kv_quant = KVQuant(...)` computes, per layer and KV head,
for K and V alike (x = the RoPE'd keys or the values of the pass, bf16 in vector SRAM):

* refresh step (every position is a query row, q0 = 0): per-channel statistics over the rows
  being written - `vmax` / `vmin` chains give max and min, z = (max + min) * 0.5 (`vadd`,
  `vmuls`), d = x - z (`vsub`, into a head-contiguous buffer), m = max|d| (`vamax`), s =
  `vsmscale p2aNN` of m (alpha = 0: s = 1). `dstkv.v` stores d * hw_recip(s) in MXINT (one E8M0
  scale per `mx_block` channels) to the layer's quantized K/V region, and s and z of every head
  go to a factor-row region (`kvq_rows.<layer>`) for the block's later steps.
* in-block step of the dual cache (the query rows are the block): s and z come back from the
  factor-row region (`dld.v`), d = x - z.
* both: the block's rows of d go to the bf16 K/V region (`cache_k/v.<layer>`, the block window
  of npu.quant.kv_cache: the current block is never quantized). Attention loads every key/value
  tile of a KV head from the MX region with `dldkv.m` (decode, times s: exact for power-of-two
  factors), overwrites the block's rows with the bf16 rows (`dld.m`), and adds z_v to the
  attention output (rows of P sum to 1). Keys need no shift back: every key of a row is shifted
  by the same z, and q . z is the same for every key, which softmax ignores.

This equals `BaosKVCache` with `BaosOptions(alphas=...)` (storage mxint, pow2 factors, shift,
refresh statistics, per-block adaptation; the MX block is `mx_block` = 32 channels). With one
alpha that is a fixed strength. With several (KVQuant.parse's default, the BaosOptions()
candidates 0 / 0.25 / 0.5 / 0.75, then the plain format) the refresh also searches, per KV head
and K/V: each candidate's factors round-trip d through a scratch MX region (`dstkv`, `dldkv.v`)
and `flt` / `fmin` / `vsel` keep the candidate with the smallest error, ties to the earlier one,
without branches. The error is the criterion's (KVQuant.criterion):

* 'output' (the default, as BaosOptions()'s): the attention-output error of the block's query
  rows (every query head of the KV head, stacked), softmax(q k^T * scale) v against the exact
  output, with this kind's rows replaced by the candidate's read-back (R + z; the block's own
  rows exact) and the other kind's exact - K and V tiles through a bf16 scratch region (`dst.v`,
  `dld.m`), `mmt`, the softmax of emit_attention, `mm`, `vsum` of the squared difference;
* 'attention': the squared round-trip error summed with `vsum`, keys weighted by W = sum of q^2
  of the group's query rows (a positive multiple of the simulator's mean query energy).

Values differ from the accuracy simulator only in where they are rounded: the NPU keeps z,
x - z, the error terms and the criterion's scores and outputs in bf16 (vector SRAM, hardware exp
and reciprocal), the PyTorch simulator in float32, so a near-tie between two candidates can go
the other way.

Scope: the dual cache's two step shapes (a full refresh, query_length == seq_len, and an
in-block step, query_length == sample_length), machines with the dLLM instructions, head slots
of exactly one MLEN tile (slot == mlen), head_dim a multiple of mx_block, and all query rows'
K/V in vector SRAM at once (no row tiling); anything else is a CompileError naming the
constraint.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from npu.compiler.asm import CompileError
from npu.compiler.attention_reference import masked_subrows, reference_attention
from npu.compiler.context import FP_SCALE, INT_Q0, INT_S0, Emit, StepSpec, rounder
from npu.hw.numerics import (BAOS_CRITERIA, MX_SCALE_RULES, POW2_MODES, SMOOTHING_ALPHAS, chained_row_sum, hw_recip,
                              round_to_format)
from npu.isa.table import DRAM_FORMATS, NO_CLIP_STORE
from npu.hw.rows import decode_rows, encode_rows, row_bytes
from npu.hw.numerics import smoothing_factor

INT_KVQ_ROWS = 17  # INT SRAM scratch word (16..63 are scratch; 16 is INT_MROW): factor-row pointer
ROWS_TAG = "kvq.rows"  # vector SRAM buffer of the layer's factor rows, live from the K/V write to attention
ALPHA_MODES = {a: POW2_MODES[a] for a in SMOOTHING_ALPHAS if a}  # vsmscale modes; alpha 0 = no smoothing
DEFAULT_ALPHAS = SMOOTHING_ALPHAS  # BaosOptions()'s candidates
LOWERED_CRITERIA = ("output", "attention")  # of numerics.BAOS_CRITERIA, those the alpha search lowers
CRITERION_FMT = "bf16"  # DRAM format of the output criterion's K/V tile scratch (matrix SRAM holds bf16)
SPEC_PATTERN = re.compile(r"baos-mxint(\d+)(-nc)?$")  # -nc: the no-clip MX scale rule
# factor rows per KV head, in this order: K factor, K shift, V factor, V shift
ROW_K_FACTOR, ROW_K_SHIFT, ROW_V_FACTOR, ROW_V_SHIFT = range(4)


@dataclass(frozen=True)
class KVQuant:
    """BAOS-MXINT K/V storage. alphas: one smoothing strength (0, 0.25, 0.5 or 0.75; a float is
    taken as one), or several candidates chosen per (layer, head) at each refresh by the
    round-trip error (keys weighted by the pass's query energy), as BaosOptions() does.
    mx_scale: the MX scale rule of the K/V stores (numerics.MX_SCALE_RULES): 'ocp' stores with
    `dstkv.v`, 'no_clip' with its twin `dstkvnc.v` (same DRAM layout, so loads are unchanged).
    criterion: the search's criterion (numerics.BAOS_CRITERIA); the NPU lowers 'output' (the
    attention-output error of the block's queries, BaosOptions()'s default) and 'attention'.
    plain_candidate: the search also tries the plain format (no shift, s = 1) first."""

    bits: int = 4
    alphas: tuple[float, ...] | float = DEFAULT_ALPHAS
    mx_scale: str = "ocp"
    criterion: str = "output"
    plain_candidate: bool = True

    def __post_init__(self) -> None:
        alphas = (self.alphas,) if isinstance(self.alphas, (int, float)) else tuple(self.alphas)
        object.__setattr__(self, "alphas", tuple(float(a) for a in alphas))
        if self.fmt not in DRAM_FORMATS:
            mx = sorted(f for f in DRAM_FORMATS if f.startswith("mxint"))
            raise CompileError(f"KV quantization {self.name}: {self.fmt} is not a DMA format ({', '.join(mx)})")
        if not self.alphas or any(a != 0.0 and a not in ALPHA_MODES for a in self.alphas):
            raise CompileError(f"KV quantization {self.name}: alphas={self.alphas} must come from 0, 0.25, 0.5, 0.75")
        if self.mx_scale not in MX_SCALE_RULES:
            raise CompileError(f"KV quantization: MX scale rule {self.mx_scale!r} is not one of {MX_SCALE_RULES}")
        if self.criterion not in LOWERED_CRITERIA:
            known = "unknown" if self.criterion not in BAOS_CRITERIA else "not lowered"
            raise CompileError(f"KV quantization {self.name}: criterion {self.criterion!r} is {known}; the NPU's "
                               f"alpha search lowers {', '.join(LOWERED_CRITERIA)}")

    @classmethod
    def parse(cls, text: str, alphas: tuple[float, ...] | float = DEFAULT_ALPHAS) -> "KVQuant":
        """'baos-mxint4' / 'baos-mxint8' (the CLI and verify spelling; a '-nc' suffix, e.g.
        'baos-mxint4-nc', takes the no-clip MX scale rule); default: the alpha search."""
        match = SPEC_PATTERN.match(text)
        if match is None:
            raise CompileError(f"KV quantization {text!r} is not supported; the compiler knows baos-mxint<bits>[-nc] "
                               f"(baos-mxint4, baos-mxint8, baos-mxint4-nc, baos-mxint8-nc)")
        return cls(int(match.group(1)), alphas, "no_clip" if match.group(2) else "ocp")

    @property
    def name(self) -> str:
        return f"baos-mxint{self.bits}" + ("-nc" if self.mx_scale == "no_clip" else "")

    @property
    def store(self) -> str:
        """The K/V store instruction: dstkv.v (OCP scale rule) or dstkvnc.v (no-clip)."""
        return NO_CLIP_STORE["dstkv.v"] if self.mx_scale == "no_clip" else "dstkv.v"

    @property
    def fmt(self) -> str:
        return f"mxint{self.bits}"

    @property
    def search(self) -> bool:
        """Several candidate alphas: the refresh picks one per (layer, head, K/V)."""
        return len(self.alphas) > 1

    @property
    def output_search(self) -> bool:
        """The search runs the 'output' criterion (attention of the block's queries per candidate)."""
        return self.search and self.criterion == "output"

    @property
    def mode(self) -> str | None:
        """The vsmscale mode of a single alpha, or None for alpha = 0 (s = 1)."""
        return ALPHA_MODES.get(self.alphas[0]) if not self.search else None

    def check(self, shapes) -> None:
        """Raise CompileError naming the first machine / model property BAOS cannot run with."""
        npu, m = shapes.npu, shapes.model
        where = f"{npu.name}: KV quantization {self.name}"
        if not npu.dllm_instructions:
            raise CompileError(f"{where}: dllm_instructions is false (needs dstkv, dldkv, vamax, vsmscale)")
        if shapes.slot != npu.mlen:
            raise CompileError(f"{where}: a head slot of {shapes.slot} columns is not one mlen={npu.mlen} tile "
                               f"(head_dim={m.head_dim})")
        if m.head_dim % npu.mx_block:
            raise CompileError(f"{where}: head_dim={m.head_dim} is not a multiple of mx_block={npu.mx_block}")
        if npu.formats.vector not in ("bf16", "fp32"):
            raise CompileError(f"{where}: formats.vector={npu.formats.vector} cannot hold the factor rows")

    def add_regions(self, dram, shapes) -> None:
        """The quantized K/V regions ([kv_heads][kv_slots][slot] in MXINT) and the factor rows of
        every layer ([kv_heads][4][slot] in the vector format: s_k, z_k, s_v, z_v); plan_dram
        calls it through Shapes.kv_quant, so the layout needs no import of this module."""
        m, npu = shapes.model, shapes.npu
        for layer in range(m.n_layers):
            for kind in ("k", "v"):
                dram.add(f"kvq_{kind}.{layer}", self.fmt, (m.n_kv_heads * shapes.kv_slots, shapes.slot), npu.mx_block)
            dram.add(f"kvq_rows.{layer}", npu.formats.vector, (4 * m.n_kv_heads, shapes.slot), npu.mx_block)
        if self.search:  # the candidates' round trips (dstkv, then dldkv back)
            dram.add("kvq_scratch", self.fmt, (shapes.kv_slots, shapes.slot), npu.mx_block)
        if self.output_search:  # K and V tiles of the criterion's attention (dst.v, then dld.m)
            for kind in ("k", "v"):
                dram.add(f"kvq_crit_{kind}", CRITERION_FMT, (shapes.kv_slots, shapes.slot), npu.mx_block)


def is_refresh(spec: StepSpec) -> bool:
    """True for the dual cache's refresh, False for its in-block step; other steps are errors."""
    if spec.query_length == spec.shapes.seq_len:
        return True
    if spec.query_length == spec.sample_length:
        return False
    raise CompileError(f"KV quantization {spec.shapes.kv_quant.name} runs with the dual cache only: a step of "
                       f"query_length={spec.query_length} over seq_len={spec.shapes.seq_len} with "
                       f"sample_length={spec.sample_length} is neither a refresh nor an in-block step")


# ---- lowering -------------------------------------------------------------------------------


def emit_kv_write(e: Emit, layer: int, k_addr: int, v_addr: int, first_row: int = 0,
                  count: int | None = None) -> None:
    """Smooth, shift and store K/V (refresh) or shift the block (in-block); see the module docstring.

    The statistics need every row's K/V at once, so a row-tiled step (first_row / count naming
    one block of rows) is a CompileError.
    """
    asm, sh, npu, spec = e.asm, e.shapes, e.npu, e.spec
    refresh = is_refresh(spec)
    if first_row != 0 or (count is not None and count != spec.query_length):
        raise CompileError(f"{npu.name}: KV quantization {sh.kv_quant.name} needs the K/V of all "
                           f"{spec.query_length} query rows in vector SRAM at once; this step is row-tiled "
                           f"(vector_sram.size_bytes)")
    heads, slot = spec.model.n_kv_heads, sh.slot
    rows_at = e.vec.alloc(ROWS_TAG, 4 * heads * slot)
    d_buf = e.vec.alloc("kvq.d", spec.query_length * slot)
    search = refresh and sh.kv_quant.search
    # refresh scratch: max, min, max|d| rows; with the alpha search also the query energy W, the
    # candidate factors S_a (slot each), a product row T and a mask row (VLEN each), and R, the
    # candidate's round trip of d (all rows)
    stats = e.vec.alloc("kvq.stats", (5 * slot + 2 * npu.vlen) if search else 3 * slot) if refresh else None
    round_trip = e.vec.alloc("kvq.r", spec.query_length * slot) if search else None
    if search:
        if "q" not in e.vec.live:
            raise CompileError(f"{npu.name}: KV quantization {sh.kv_quant.name}: the alpha search weighs key errors "
                               f"by the pass's queries, which are not in vector SRAM at the K/V write")
        asm.la("a3", e.dram["kvq_scratch"].address)
    output = search and sh.kv_quant.output_search
    if output:  # the criterion's attention: the block's query rows (zero-padded to BLEN rows),
        # its exact and candidate outputs, a score strip; K/V tiles go through a4 / a5
        qb_rows = criterion_rows(spec)
        for tag in ("kvq.qb", "kvq.exact", "kvq.out"):
            e.vec.alloc(tag, qb_rows * slot)
        e.vec.alloc("kvq.strip", npu.blen * sh.kv_slots)
        e.matrix_peak = max(e.matrix_peak, 2 * (sh.kv_slots // npu.mlen) * npu.mlen * npu.mlen)
        asm.la("a4", e.dram["kvq_crit_k"].address)
        asm.la("a5", e.dram["kvq_crit_v"].address)
        used = spec.model.n_heads // heads * spec.sample_length
        if qb_rows > used:  # the padding rows stay zero (finite scores, outputs never counted)
            asm("flui f1, 0.0")
            asm.li("r1", e.vec.live["kvq.qb"][0] + used * slot)
            with asm.loop((qb_rows - used) * (slot // npu.vlen)):
                asm("vbcast r1, f1")
                asm(f"addi r1, r1, {npu.vlen}")
    region = e.dram[f"kvq_rows.{layer}"]
    rb = row_bytes(region.fmt, slot, npu.mx_block)
    asm.comment(f"kv cache write, layer {layer}: BAOS {sh.kv_quant.name} "
                f"({'refresh: statistics, factors, dstkv' if refresh else 'in-block: shift the block'})")
    asm("wait dma|matrix|vector")
    asm.li("r1", rows_at)
    asm.li("r2", 4 * heads)
    asm.li("r3", slot)
    asm.li("r4", rb)
    if not refresh:
        asm.la("a0", region.address)
        asm(f"dld.v a0, r1, r2, r3, r4, r3, {region.fmt}", dram_read=4 * heads * rb)
        asm("wait dma")
    asm("flui f0, 0.5")
    asm("flui f1, 0.0")
    asm("flui f2, 1.0")
    for j, (kind, src, other) in enumerate((("k", k_addr, v_addr), ("v", v_addr, k_addr))):
        _emit_kind(e, layer, kind, src, rows_at + 2 * j * slot, d_buf, stats, refresh, other)
    if refresh:
        asm.la("a0", region.address)
        asm.li("r1", rows_at)
        asm.li("r2", 4 * heads)
        asm.li("r3", slot)
        asm.li("r4", rb)
        asm(f"dst.v a0, r1, r2, r3, r4, r3, {region.fmt}", dram_write=4 * heads * rb)
        asm("wait dma")
        e.vec.free("kvq.stats")
    if search:
        e.vec.free("kvq.r")
    if output:
        for tag in ("kvq.strip", "kvq.out", "kvq.exact", "kvq.qb"):
            e.vec.free(tag)
    e.vec.free("kvq.d")


def _emit_kind(e: Emit, layer: int, kind: str, src: int, factor_row: int, d_buf: int, stats: int | None,
               refresh: bool, other: int) -> None:
    """One of K / V over every KV head; factor_row = s of head 0 (z at +slot, next head at +4 slot);
    other: the other kind's K/V (the output criterion's exact keys or values)."""
    asm, sh, npu, spec = e.asm, e.shapes, e.npu, e.spec
    kvq, slot, vlen = sh.kv_quant, sh.slot, npu.vlen
    lq, chunks = spec.query_length, sh.slot // npu.vlen
    kv_fmt = npu.formats.kv_cache
    rb_mx, rb_kv = row_bytes(kvq.fmt, slot, npu.mx_block), row_bytes(kv_fmt, slot, npu.mx_block)
    asm.la("a0", e.dram[f"kvq_{kind}.{layer}"].address)
    asm.la("a2", e.dram[f"cache_{kind}.{layer}"].address)
    asm(f"lw r1, {INT_Q0}(r0)")
    asm(f"lw r2, {INT_S0}(r0)")
    asm("add r1, r1, r2")
    asm.li("r2", rb_kv)
    asm("amac a2, a2, r1, r2")  # the block's first slot, head 0
    asm.li("r9", src)
    asm.li("r10", factor_row)
    asm.li("r5", sh.kv_width)
    with_m = refresh and (kvq.search or kvq.mode is not None)
    if refresh and kvq.search and (kind == "k" or kvq.output_search):
        asm.li("r11", e.vec.live["q"][0])  # first query head of the KV head
    with asm.loop(spec.model.n_kv_heads):
        if refresh:
            hi, lo = stats, stats + slot
            asm("add r1, r9, r0")
            asm.li("r2", hi)
            asm.li("r3", lo)
            with asm.loop(chunks):
                asm("vmov r2, r1")
                asm("vmov r3, r1")
                _advance(asm, ("r1", "r2", "r3"), vlen)
            if lq > 1:
                asm("add r4, r9, r5")
                with asm.loop(lq - 1):
                    asm("add r1, r4, r0")
                    asm.li("r2", hi)
                    asm.li("r3", lo)
                    with asm.loop(chunks):
                        asm("vmax r2, r2, r1")
                        asm("vmin r3, r3, r1")
                        _advance(asm, ("r1", "r2", "r3"), vlen)
                    asm("add r4, r4, r5")
            asm(f"addi r1, r10, {slot}")
            asm.li("r2", hi)
            asm.li("r3", lo)
            with asm.loop(chunks):
                asm("vadd r1, r2, r3")
                asm("vmuls r1, r1, f0")
                _advance(asm, ("r1", "r2", "r3"), vlen)
        if with_m:
            asm.li("r2", stats + 2 * slot)
            with asm.loop(chunks):
                asm("vbcast r2, f1")
                asm(f"addi r2, r2, {vlen}")
        asm("add r4, r9, r0")
        asm.li("r6", d_buf)
        with asm.loop(lq):
            asm("add r1, r4, r0")
            asm(f"addi r3, r10, {slot}")
            if with_m:
                asm.li("r2", stats + 2 * slot)
            with asm.loop(chunks):
                asm("vsub r6, r1, r3")
                if with_m:
                    asm("vamax r2, r2, r6")
                _advance(asm, ("r1", "r3", "r6") + (("r2",) if with_m else ()), vlen)
            asm("add r4, r4, r5")
        if refresh and kvq.search:
            _emit_alpha_search(e, kind, d_buf, stats, other - src)
        elif refresh:
            asm("add r1, r10, r0")
            asm.li("r2", stats + 2 * slot)
            with asm.loop(chunks):
                asm("vbcast r1, f2" if kvq.mode is None else f"vsmscale r1, r2, {kvq.mode}")
                _advance(asm, ("r1", "r2"), vlen)
        if refresh:
            asm("wait vector")
            asm.li("r1", d_buf)
            asm.li("r2", lq)
            asm.li("r3", slot)
            asm.li("r4", rb_mx)
            asm(f"{kvq.store} a0, r1, r2, r3, r4, r10, {kvq.fmt}", dram_write=lq * rb_mx)
            asm.li("r7", sh.kv_slots * rb_mx)
            asm("aadd a0, a0, r7")
        else:
            asm("wait vector")
        asm(f"lw r1, {INT_S0}(r0)")  # the block's rows of d -> the bf16 window
        asm.li("r2", slot)
        asm("mul r1, r1, r2")
        asm.li("r2", d_buf)
        asm("add r1, r1, r2")
        asm.li("r2", spec.sample_length)
        asm.li("r3", slot)
        asm.li("r4", rb_kv)
        asm(f"dst.v a2, r1, r2, r3, r4, r3, {kv_fmt}", dram_write=spec.sample_length * rb_kv)
        asm.li("r7", sh.kv_slots * rb_kv)
        asm("aadd a2, a2, r7")
        asm("wait dma")
        asm(f"addi r9, r9, {slot}")
        asm(f"addi r10, r10, {4 * slot}")


def _emit_alpha_search(e: Emit, kind: str, d_buf: int, stats: int, other_offset: int) -> None:
    """Factors of one KV head by the smallest round-trip error over the candidate alphas.

    Per candidate: S_a = vsmscale(max|d|), dstkv of d to the scratch region and dldkv back (R = the
    values attention would read, before the shift), error = sum over rows and channels of
    (R - d)^2, for keys times W = sum of q^2 over the query rows of the group's query heads (a
    positive multiple of BaosKVCache's mean query energy: the same argmin). The errors chain in
    fp32 through `vsum`; `flt` / `fmin` keep the best (ties keep the earlier alpha) and `vsel`
    copies its factors to the factor row at r10, branch-free. Registers: r11 = the group's first
    query head (keys; advanced here), a3 = the scratch region.
    """
    asm, sh, npu, spec = e.asm, e.shapes, e.npu, e.spec
    kvq, slot, vlen, lq = sh.kv_quant, sh.slot, npu.vlen, spec.query_length
    chunks = slot // vlen
    m_row, w_row, s_row = stats + 2 * slot, stats + 3 * slot, stats + 4 * slot
    t_row, mask_row = stats + 5 * slot, stats + 5 * slot + vlen
    round_trip = e.vec.live["kvq.r"][0]
    rb = row_bytes(kvq.fmt, slot, npu.mx_block)
    output = kvq.output_search
    weighted = kind == "k" and not output
    if output:
        _emit_criterion_setup(e, kind, other_offset)
    if weighted:
        group = spec.model.n_heads // spec.model.n_kv_heads
        asm.li("r2", w_row)
        with asm.loop(chunks):
            asm("vbcast r2, f1")
            asm(f"addi r2, r2, {vlen}")
        asm.li("r8", sh.q_width)
        asm.li("r6", t_row)
        with asm.loop(group):
            asm("add r3, r11, r0")
            with asm.loop(lq):
                asm("add r1, r3, r0")
                asm.li("r2", w_row)
                with asm.loop(chunks):
                    asm("vmul r6, r1, r1")
                    asm("vadd r2, r2, r6")
                    _advance(asm, ("r1", "r2"), vlen)
                asm("add r3, r3, r8")
            asm(f"addi r11, r11, {slot}")
    def candidate_error(shifted: bool = True) -> None:
        """f4 <- the error of the candidate whose factors are in S_a and whose values are in d_buf
        (shifted: d_buf holds x - z; the plain candidate's holds x)."""
        asm("wait vector")
        asm.li("r1", d_buf)
        asm.li("r2", lq)
        asm.li("r3", slot)
        asm.li("r4", rb)
        asm.li("r6", s_row)
        asm(f"{kvq.store} a3, r1, r2, r3, r4, r6, {kvq.fmt}", dram_write=lq * rb)
        asm("wait dma")
        asm.li("r1", round_trip)
        asm(f"dldkv.v a3, r1, r2, r3, r4, r6, {kvq.fmt}", dram_read=lq * rb)
        asm("wait dma")
        if output:
            _emit_candidate_output_error(e, kind, shifted, t_row)
            return
        asm("flui f4, 0.0")
        asm.li("r1", round_trip)
        asm.li("r3", d_buf)
        asm.li("r6", t_row)
        with asm.loop(lq):
            if weighted:
                asm.li("r2", w_row)
            with asm.loop(chunks):
                asm("vsub r6, r1, r3")
                asm("vmul r6, r6, r6")
                if weighted:
                    asm("vmul r6, r6, r2")
                asm("vsum f4, r6")
                _advance(asm, ("r1", "r3") + (("r2",) if weighted else ()), vlen)
        asm("wait vector")

    for i, alpha in enumerate(kvq.alphas):
        asm.li("r1", s_row)
        asm.li("r2", m_row)
        with asm.loop(chunks):
            asm("vbcast r1, f2" if alpha == 0.0 else f"vsmscale r1, r2, {ALPHA_MODES[alpha]}")
            _advance(asm, ("r1", "r2"), vlen)
        candidate_error()
        asm("add r1, r10, r0")
        asm.li("r3", s_row)
        if i == 0:
            asm("fmov f3, f4")
            with asm.loop(chunks):
                asm("vmov r1, r3")
                _advance(asm, ("r1", "r3"), vlen)
            continue
        asm("flt r7, f4, f3")
        asm("fmin f3, f3, f4")
        asm("fcvt.f.i f5, r7")
        asm.li("r2", mask_row)
        asm("vbcast r2, f5")
        with asm.loop(chunks):
            asm("vsel r1, r3, r1, r2")
            _advance(asm, ("r1", "r3"), vlen)
    if kvq.plain_candidate:
        _emit_plain_candidate(e, d_buf, s_row, t_row, mask_row, candidate_error)


def _emit_plain_candidate(e: Emit, d_buf: int, s_row: int, zero_row: int, mask_row: int, candidate_error) -> None:
    """The "no smoothing" candidate after the alphas: x itself (no shift) with s = 1. It wins when
    its error is <= the best alpha's (`fle`: the tie goes to it, as if it were tried first); then
    the factor row becomes 1 and the shift row 0 (`vsel`). d_buf is rebuilt as x - the chosen shift
    for the store. Registers: r9 = the head's x, r5 = the row stride of x, r10 = its factor row."""
    asm, sh, npu, spec = e.asm, e.shapes, e.npu, e.spec
    slot, vlen, lq = sh.slot, npu.vlen, spec.query_length
    chunks = slot // vlen
    asm("add r4, r9, r0")
    asm.li("r6", d_buf)
    with asm.loop(lq):
        asm("add r1, r4, r0")
        with asm.loop(chunks):
            asm("vmov r6, r1")
            _advance(asm, ("r1", "r6"), vlen)
        asm("add r4, r4, r5")
    asm.li("r1", s_row)
    with asm.loop(chunks):
        asm("vbcast r1, f2")
        asm(f"addi r1, r1, {vlen}")
    candidate_error(shifted=False)
    asm("fle r7, f4, f3")
    asm("fcvt.f.i f5, r7")
    asm.li("r2", mask_row)
    asm("vbcast r2, f5")
    asm.li("r4", zero_row)
    asm("vbcast r4, f1")
    asm("add r1, r10, r0")
    asm.li("r3", s_row)
    with asm.loop(chunks):
        asm("vsel r1, r3, r1, r2")
        _advance(asm, ("r1", "r3"), vlen)
    asm(f"addi r1, r10, {slot}")
    with asm.loop(chunks):
        asm("vsel r1, r4, r1, r2")
        asm(f"addi r1, r1, {vlen}")
    asm("add r4, r9, r0")
    asm.li("r6", d_buf)
    with asm.loop(lq):
        asm("add r1, r4, r0")
        asm(f"addi r3, r10, {slot}")
        with asm.loop(chunks):
            asm("vsub r6, r1, r3")
            _advance(asm, ("r1", "r3", "r6"), vlen)
        asm("add r4, r4, r5")


# ---- the 'output' criterion: attention of the block's queries per candidate --------------------


def criterion_rows(spec: StepSpec) -> int:
    """Query rows of the output criterion's attention: the block's rows of every query head of one
    KV head, stacked (as BaosKVCache's output_errors stacks them), padded to whole BLEN blocks."""
    used = spec.model.n_heads // spec.model.n_kv_heads * spec.sample_length
    return -(-used // spec.npu.blen) * spec.npu.blen


def _emit_criterion_tiles(e: Emit, kind: str, src: str, stride: str) -> None:
    """The query_length rows at `src` (row stride `stride`, registers) -> the kind's bf16 scratch
    region (dst.v) -> its K (kind 'k', matrix SRAM 0) or V tiles (dld.m), as attention lays them out."""
    asm, sh, npu, lq = e.asm, e.shapes, e.npu, e.spec.query_length
    mlen, areg = npu.mlen, "a4" if kind == "k" else "a5"
    rb = row_bytes(CRITERION_FMT, sh.slot, npu.mx_block)
    tiles = sh.kv_slots // mlen
    asm("wait vector|matrix")  # the rows are written; the array is done with the old tiles
    asm.li("r1", lq)
    asm.li("r2", sh.slot)
    asm.li("r3", rb)
    asm(f"dst.v {areg}, {src}, r1, r2, r3, {stride}, {CRITERION_FMT}", dram_write=lq * rb)
    asm("wait dma")
    asm(f"aaddi a1, {areg}, 0")
    asm.li("r3", 0 if kind == "k" else tiles * mlen * mlen)
    asm.li("r1", mlen)
    asm.li("r2", rb)
    asm.li("r4", mlen * mlen)
    asm.li("r6", mlen * rb)
    with asm.loop(tiles):
        asm(f"dld.m a1, r3, r1, r1, r2, r1, {CRITERION_FMT}", dram_read=mlen * rb)
        asm("add r3, r3, r4")
        asm("aadd a1, a1, r6")
    asm("wait dma")


def _emit_criterion_attention(e: Emit, out_tag: str) -> None:
    """softmax(Q K^T * scale) V of the stacked query rows (kvq.qb) against the K / V tiles in
    matrix SRAM into the buffer `out_tag`: per BLEN rows `mmt` per key tile, the softmax of
    emit_attention (scale, key mask, vmaxr, vexp, vsum, frecip) row by row, `mm` / `mma` over the
    tiles and the 1/sum rescale - so reference_attention is its reference. Uses r1-r4, r6-r8,
    r12-r14 and f0, f1, f2, f6 (the caller restores f0-f2)."""
    asm, sh, npu, spec = e.asm, e.shapes, e.npu, e.spec
    mlen, blen, vlen, slot = npu.mlen, npu.blen, npu.vlen, sh.slot
    tiles, tile, subrows = sh.kv_slots // mlen, mlen * mlen, sh.kv_slots // vlen
    strip = e.vec.live["kvq.strip"][0]
    asm(f"flw f6, {FP_SCALE}(r0)")
    asm.li("r12", e.vec.live["kvq.qb"][0])
    asm.li("r13", e.vec.live[out_tag][0])
    with asm.loop(criterion_rows(spec) // blen):
        asm.li("r1", strip)
        asm.li("r2", slot)
        asm.li("r3", sh.kv_slots)
        asm.li("r4", 0)
        asm.li("r6", tile)
        with asm.loop(tiles):
            asm("mmt r12, r2, r4, 0", macs=blen * mlen * mlen)
            asm("mwb r1, r3, 0")
            asm("add r4, r4, r6")
            asm(f"addi r1, r1, {mlen}")
        asm("wait matrix")
        asm.li("r1", strip)
        asm.li("r7", e.scalars.rinv)
        with asm.loop(blen):
            asm("add r2, r1, r0")
            with asm.loop(subrows):
                asm("vmuls r2, r2, f6")
                asm(f"addi r2, r2, {vlen}")
            for j in masked_subrows(sh.seq_len, sh.kv_slots, vlen):
                asm.li("r3", j * vlen)
                asm("add r2, r1, r3")
                asm.li("r3", e.constants["key_mask"] + j * vlen)
                asm("vadd r2, r2, r3")
            asm("flui f0, -inf")
            asm("add r2, r1, r0")
            with asm.loop(subrows):
                asm("vmaxr f0, r2")
                asm(f"addi r2, r2, {vlen}")
            asm("wait vector")
            asm("flui f1, 0.0")
            asm("add r2, r1, r0")
            with asm.loop(subrows):
                asm("vsubs r2, r2, f0")
                asm("vexp r2, r2")
                asm("vsum f1, r2")
                asm(f"addi r2, r2, {vlen}")
            asm("wait vector")
            asm("frecip f2, f1")
            asm("fsw f2, 0(r7)")
            asm("addi r7, r7, 1")
            asm.li("r3", sh.kv_slots)
            asm("add r1, r1, r3")
        asm.li("r7", strip)
        asm.li("r3", sh.kv_slots)
        asm.li("r8", tiles * tile)
        asm.li("r14", tile)
        asm("mm r7, r3, r8, 0", macs=blen * mlen * mlen)
        if tiles > 1:
            with asm.loop(tiles - 1):
                asm(f"addi r7, r7, {mlen}")
                asm("add r8, r8, r14")
                asm("mma r7, r3, r8, 0", macs=blen * mlen * mlen)
        asm.li("r6", slot)
        asm("mwb r13, r6, 0")
        asm("wait matrix")
        asm.li("r7", e.scalars.rinv)
        asm("add r2, r13, r0")
        with asm.loop(blen):
            asm("flw f2, 0(r7)")
            with asm.loop(slot // vlen):
                asm("vmuls r2, r2, f2")
                asm(f"addi r2, r2, {vlen}")
            asm("addi r7, r7, 1")
        asm.li("r1", blen * slot)
        asm("add r12, r12, r1")
        asm("add r13, r13, r1")
        asm("wait vector")


def _emit_criterion_setup(e: Emit, kind: str, other_offset: int) -> None:
    """Per KV head, before its candidates: the block's query rows of the group's query heads
    into kvq.qb (r11 -> the next KV head's), the exact K and V tiles (this kind at r9, the other
    at r9 + other_offset, row stride r5) and their attention output into kvq.exact."""
    asm, sh, npu, spec = e.asm, e.shapes, e.npu, e.spec
    slot, vlen, ls = sh.slot, npu.vlen, spec.sample_length
    group = spec.model.n_heads // spec.model.n_kv_heads
    asm.comment(f"BAOS output criterion ({kind}): block queries, exact K/V tiles and output")
    asm(f"lw r1, {INT_S0}(r0)")
    asm.li("r2", sh.q_width)
    asm("mul r1, r1, r2")
    asm("add r3, r11, r1")
    asm.li("r6", e.vec.live["kvq.qb"][0])
    with asm.loop(group):
        asm("add r4, r3, r0")
        with asm.loop(ls):
            asm("add r1, r4, r0")
            with asm.loop(slot // vlen):
                asm("vmov r6, r1")
                _advance(asm, ("r1", "r6"), vlen)
            asm("add r4, r4, r2")
        asm(f"addi r3, r3, {slot}")
    asm(f"addi r11, r11, {group * slot}")
    _emit_criterion_tiles(e, kind, "r9", "r5")
    asm.li("r1", other_offset)
    asm("add r12, r9, r1")
    _emit_criterion_tiles(e, "v" if kind == "k" else "k", "r12", "r5")
    _emit_criterion_attention(e, "kvq.exact")
    _restore_constants(asm)


def _emit_candidate_output_error(e: Emit, kind: str, shifted: bool, t_row: int) -> None:
    """f4 <- the output criterion's error of the candidate read back in kvq.r (R = decoded d * s):
    the candidate's K (or V) = R + z (the plain candidate: R) with the block's rows exact (the
    bf16 window), through the tiles, attention, and sum over the used rows of (out - exact)^2."""
    asm, sh, npu, spec = e.asm, e.shapes, e.npu, e.spec
    slot, vlen, lq, ls = sh.slot, npu.vlen, spec.query_length, spec.sample_length
    chunks = slot // vlen
    round_trip = e.vec.live["kvq.r"][0]
    if shifted:
        asm.li("r1", round_trip)
        with asm.loop(lq):
            asm(f"addi r3, r10, {slot}")
            with asm.loop(chunks):
                asm("vadd r1, r1, r3")
                _advance(asm, ("r1", "r3"), vlen)
    asm(f"lw r1, {INT_S0}(r0)")
    asm("mul r3, r1, r5")
    asm("add r3, r9, r3")  # the block's first row of x
    asm.li("r2", slot)
    asm("mul r4, r1, r2")
    asm.li("r2", round_trip)
    asm("add r4, r4, r2")
    with asm.loop(ls):
        asm("add r1, r3, r0")
        asm("add r2, r4, r0")
        with asm.loop(chunks):
            asm("vmov r2, r1")
            _advance(asm, ("r1", "r2"), vlen)
        asm("add r3, r3, r5")
        asm(f"addi r4, r4, {slot}")
    asm.li("r12", round_trip)
    asm.li("r7", slot)
    _emit_criterion_tiles(e, kind, "r12", "r7")
    _emit_criterion_attention(e, "kvq.out")
    asm("flui f4, 0.0")
    asm.li("r1", e.vec.live["kvq.out"][0])
    asm.li("r3", e.vec.live["kvq.exact"][0])
    asm.li("r6", t_row)
    with asm.loop(spec.model.n_heads // spec.model.n_kv_heads * ls):
        with asm.loop(chunks):
            asm("vsub r6, r1, r3")
            asm("vmul r6, r6, r6")
            asm("vsum f4, r6")
            _advance(asm, ("r1", "r3"), vlen)
    asm("wait vector")
    _restore_constants(asm)


def _restore_constants(asm) -> None:
    """f0 = 0.5, f1 = 0, f2 = 1: the K/V write's constants, after the criterion's softmax."""
    asm("flui f0, 0.5")
    asm("flui f1, 0.0")
    asm("flui f2, 1.0")


def _advance(asm, registers: tuple[str, ...], step: int) -> None:
    for reg in registers:
        asm(f"addi {reg}, {reg}, {step}")


def prepare_attention(e: Emit, layer: int, rows: int) -> int:
    """Point a3 / a4 at the MX K / V regions, a5 / a6 at the block's bf16 rows, and the INT SRAM
    factor-row pointer at head 0; returns the MX bytes of one K/V row (the per-head stride).
    Attention over a block of the query rows (row tiling) is a CompileError."""
    asm, sh, npu = e.asm, e.shapes, e.npu
    if rows != e.spec.rows or ROWS_TAG not in e.vec.live:
        raise CompileError(f"{npu.name}: KV quantization {sh.kv_quant.name} runs attention over all "
                           f"{e.spec.rows} query rows at once; this step is row-tiled (vector_sram.size_bytes)")
    rb_kv = row_bytes(npu.formats.kv_cache, sh.slot, npu.mx_block)
    asm.la("a3", e.dram[f"kvq_k.{layer}"].address)
    asm.la("a4", e.dram[f"kvq_v.{layer}"].address)
    asm.la("a5", e.dram[f"cache_k.{layer}"].address)
    asm.la("a6", e.dram[f"cache_v.{layer}"].address)
    asm(f"lw r1, {INT_Q0}(r0)")
    asm(f"lw r2, {INT_S0}(r0)")
    asm("add r1, r1, r2")
    asm.li("r2", rb_kv)
    asm("amac a5, a5, r1, r2")
    asm("amac a6, a6, r1, r2")
    asm.li("r1", e.vec.live[ROWS_TAG][0])
    asm(f"sw r1, {INT_KVQ_ROWS}(r0)")
    return row_bytes(sh.kv_quant.fmt, sh.slot, npu.mx_block)


def emit_load_head(e: Emit, head_elements: int) -> None:
    """K and V tiles of one KV head: every slot from the MX regions (dldkv.m, times s), then the
    current block's rows from the bf16 window (dld.m). Advances a5 / a6 and the row pointer;
    the caller advances a3 / a4 by kv_slots MX rows."""
    asm, sh, npu, spec = e.asm, e.shapes, e.npu, e.spec
    mlen, slot = npu.mlen, sh.slot
    kv_fmt = npu.formats.kv_cache
    rb_kv = row_bytes(kv_fmt, slot, npu.mx_block)
    asm(f"lw r6, {INT_KVQ_ROWS}(r0)")
    asm(f"addi r7, r6, {2 * slot}")
    _load_mx_tiles(e, "a3", 0, "r6")
    _load_mx_tiles(e, "a4", head_elements, "r7")
    asm(f"addi r6, r6, {4 * slot}")
    asm(f"sw r6, {INT_KVQ_ROWS}(r0)")
    asm(f"lw r1, {INT_Q0}(r0)")
    asm(f"lw r2, {INT_S0}(r0)")
    asm("add r1, r1, r2")
    asm.li("r2", mlen)
    asm("mul r3, r1, r2")  # matrix SRAM row of the block's first key (slot == mlen: tiles stack)
    asm.li("r1", spec.sample_length)
    asm.li("r4", rb_kv)
    asm(f"dld.m a5, r3, r1, r2, r4, r2, {kv_fmt}", dram_read=spec.sample_length * rb_kv)
    asm.li("r5", head_elements)
    asm("add r3, r3, r5")
    asm(f"dld.m a6, r3, r1, r2, r4, r2, {kv_fmt}", dram_read=spec.sample_length * rb_kv)
    asm.li("r5", sh.kv_slots * rb_kv)
    asm("aadd a5, a5, r5")
    asm("aadd a6, a6, r5")


def _load_mx_tiles(e: Emit, areg: str, sram_start: int, scale: str) -> None:
    """All tiles of one KV head from an MX region, tile c = keys c*MLEN.. at c*TILE (slot == mlen)."""
    asm, npu, sh = e.asm, e.npu, e.shapes
    mlen, fmt = npu.mlen, sh.kv_quant.fmt
    rb = row_bytes(fmt, sh.slot, npu.mx_block)
    asm(f"aaddi a1, {areg}, 0")
    asm.li("r3", sram_start)
    asm.li("r1", mlen)
    asm.li("r2", rb)
    asm.li("r4", mlen * mlen)
    asm.li("r5", mlen * rb)
    with asm.loop(sh.kv_slots // mlen):
        asm(f"dldkv.m a1, r3, r1, r1, r2, {scale}, {fmt}", dram_read=mlen * rb)
        asm("add r3, r3, r4")
        asm("aadd a1, a1, r5")


def emit_output_shift(e: Emit, out_addr: int, rows: int) -> None:
    """attention output += z_v of its KV head (`rows` rows, every query head); frees the factor rows."""
    asm, sh, npu, spec = e.asm, e.shapes, e.npu, e.spec
    m, slot, vlen = spec.model, sh.slot, npu.vlen
    rows_at = e.vec.live[ROWS_TAG][0]
    asm.comment("attention output + value shift z_v")
    asm.li("r1", out_addr)
    asm.li("r2", rows_at + ROW_V_SHIFT * slot)
    asm.li("r6", sh.q_width)
    with asm.loop(m.n_kv_heads):
        with asm.loop(m.n_heads // m.n_kv_heads):
            asm("add r3, r1, r0")
            with asm.loop(rows):
                asm("add r4, r3, r0")
                asm("add r5, r2, r0")
                with asm.loop(slot // vlen):
                    asm("vadd r4, r4, r5")
                    _advance(asm, ("r4", "r5"), vlen)
                asm("add r3, r3, r6")
            asm(f"addi r1, r1, {slot}")
        asm(f"addi r2, r2, {4 * slot}")
    asm("wait vector")
    e.vec.free(ROWS_TAG)


# ---- NPU-arithmetic reference ---------------------------------------------------------------


@dataclass
class BaosState:
    """What the program keeps between steps besides the bf16 window: per layer the MX regions
    as values (decoded, before the factors) and the factor rows (kv_heads, 4, slot)."""

    mx_k: list[np.ndarray]
    mx_v: list[np.ndarray]
    rows: list[np.ndarray]

    @classmethod
    def start(cls, shapes) -> "BaosState":
        m = shapes.model
        shape = (m.n_kv_heads, shapes.kv_slots, shapes.slot)
        return cls([np.zeros(shape, np.float32) for _ in range(m.n_layers)],
                   [np.zeros(shape, np.float32) for _ in range(m.n_layers)],
                   [np.zeros((m.n_kv_heads, 4, shapes.slot), np.float32) for _ in range(m.n_layers)])


def _mx_round_trip(d: np.ndarray, factors: np.ndarray, kvq: KVQuant, mx_block: int) -> np.ndarray:
    """dstkv (or dstkvnc) then decode: MX values of d * hw_recip(s), per row of (heads, rows, slot)."""
    heads, rows, slot = d.shape
    scaled = (d * hw_recip(factors)[:, None, :]).reshape(heads * rows, slot)
    raw = encode_rows(scaled, kvq.fmt, mx_block, kvq.mx_scale)
    return decode_rows(raw, kvq.fmt, slot, mx_block).reshape(heads, rows, slot)


def _reference_search(x: np.ndarray, d: np.ndarray, weights: np.ndarray | None, kvq: KVQuant,
                      npu, output_error=None) -> tuple[np.ndarray, np.ndarray]:
    """_emit_alpha_search: the factors (heads, slot) of the candidate with the smallest error, and
    per head whether that is the plain candidate (x itself, s = 1; _emit_plain_candidate).
    output_error(read, shifted): the output criterion's error of a candidate's dldkv.v read."""
    rnd, vlen = rounder(npu), npu.vlen
    m = np.abs(d).max(axis=1)

    def error_of(values: np.ndarray, s_a: np.ndarray, shifted: bool = True) -> np.ndarray:
        read = rnd(_mx_round_trip(values, s_a, kvq, npu.mx_block) * s_a[:, None, :])  # dldkv.v
        if output_error is not None:
            return output_error(read, shifted)
        t = rnd(read - values)
        t = rnd(t * t)
        if weights is not None:
            t = rnd(t * weights[:, None, :])
        error = np.zeros(values.shape[0], np.float32)
        for row in range(values.shape[1]):
            error = chained_row_sum(t[:, row], vlen, error)
        return error

    best = factors = None
    for i, alpha in enumerate(kvq.alphas):
        s_a = np.ones_like(m) if alpha == 0.0 else rnd(smoothing_factor(m, ALPHA_MODES[alpha]))
        error = error_of(d, s_a)
        if i == 0:
            best, factors = error, s_a
        else:
            better = error < best
            best = np.minimum(best, error)
            factors = np.where(better[:, None], s_a, factors)
    plain = np.zeros(d.shape[0], bool)
    if kvq.plain_candidate:
        ones = np.ones_like(m)
        plain = error_of(x, ones, shifted=False) <= best
        factors = np.where(plain[:, None], ones, factors)
    return factors, plain


def _criterion_tiles(rows: np.ndarray, shapes) -> np.ndarray:
    """_emit_criterion_tiles: (heads, query_length, slot) -> the bf16 tiles (heads, kv_slots, slot)."""
    tiles = np.zeros(rows.shape[:1] + (shapes.kv_slots, shapes.slot), np.float32)
    tiles[:, :rows.shape[1]] = round_to_format(round_to_format(rows, CRITERION_FMT), "bf16")
    return tiles


def _reference_output_error(spec: StepSpec, kind: str, x: np.ndarray, other: np.ndarray, z: np.ndarray,
                            q: np.ndarray, s0: int):
    """The output criterion of _emit_criterion_setup / _emit_candidate_output_error: a function
    (read, shifted) -> error per KV head, for the candidates of `kind` ('k' or 'v') with raw rows
    x and the other kind's raw rows `other` (kv_heads, query_length, slot), shift z, queries q."""
    sh, npu, m = spec.shapes, spec.npu, spec.model
    rnd, ls, heads = rounder(npu), spec.sample_length, x.shape[0]
    group = m.n_heads // m.n_kv_heads
    used = group * ls
    qb = np.zeros((heads, criterion_rows(spec), sh.slot), np.float32)
    qb[:, :used] = q[:, s0:s0 + ls].reshape(heads, used, sh.slot)
    scale = np.float32(1.0 / math.sqrt(m.head_dim))  # FP_SCALE, as lower.py writes it
    own, fixed = _criterion_tiles(x, sh), _criterion_tiles(other, sh)

    def attend(tiles: np.ndarray) -> np.ndarray:
        keys, values = (tiles, fixed) if kind == "k" else (fixed, tiles)
        return reference_attention(qb, keys, values, sh.seq_len, scale, rnd, npu.mlen, npu.vlen)[:, :used]

    exact = attend(own)

    def error(read: np.ndarray, shifted: bool) -> np.ndarray:
        candidate = rnd(read + z[:, None, :]) if shifted else read.copy()
        candidate[:, s0:s0 + ls] = x[:, s0:s0 + ls]
        t = rnd(attend(_criterion_tiles(candidate, sh)) - exact)
        t = rnd(t * t)
        total = np.zeros(heads, np.float32)
        for row in range(used):
            total = chained_row_sum(t[:, row], npu.vlen, total)
        return total
    return error


def _query_energy(q: np.ndarray, kv_heads: int, rnd) -> np.ndarray:
    """W (kv_heads, slot): sum of q^2 over the rows of the group's query heads, in bf16 steps."""
    heads, rows, slot = q.shape
    grouped = q.reshape(kv_heads, heads // kv_heads, rows, slot)
    w = np.zeros((kv_heads, slot), np.float32)
    for i in range(grouped.shape[1]):
        for row in range(rows):
            w = rnd(w + rnd(grouped[:, i, row] * grouped[:, i, row]))
    return w


def reference_kv(spec: StepSpec, state, layer: int, k: np.ndarray, v: np.ndarray, q0: int, s0: int,
                 q: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The K/V write and the tiles attention sees, as emit_kv_write / emit_load_head compute them.

    k, v: (kv_heads, query_length, slot) and q (n_heads, query_length, slot; needed by the alpha
    search) in the vector format. Updates `state.k/v` (the bf16
    window) and `state.baos`; returns keys and values (kv_heads, kv_slots, slot) as matrix SRAM
    holds them, and z_v (kv_heads, slot) for emit_output_shift.
    """
    sh, npu = spec.shapes, spec.npu
    kvq, rnd = sh.kv_quant, rounder(npu)
    refresh = is_refresh(spec)
    if state.baos is None:
        state.baos = BaosState.start(sh)
    baos = state.baos
    rows = baos.rows[layer]
    b0, ls = q0 + s0, spec.sample_length
    kv_fmt = npu.formats.kv_cache
    seen = []
    for j, (x, window, mx) in enumerate(((k, state.k[layer], baos.mx_k[layer]), (v, state.v[layer], baos.mx_v[layer]))):
        if refresh:
            z = rnd(rnd(x.max(axis=1) + x.min(axis=1)) * np.float32(0.5))
            d = rnd(x - z[:, None, :])
            if kvq.search:
                if q is None:
                    raise ValueError("reference_kv: the alpha search needs the queries q")
                if kvq.output_search:
                    output_error = _reference_output_error(spec, "kv"[j], x, v if j == 0 else k, z, q, s0)
                    s, plain = _reference_search(x, d, None, kvq, npu, output_error)
                else:
                    weights = _query_energy(q, k.shape[0], rnd) if j == 0 else None
                    s, plain = _reference_search(x, d, weights, kvq, npu)
                if plain.any():  # the plain candidate won: no shift
                    z = np.where(plain[:, None], np.float32(0.0), z)
                    d = rnd(x - z[:, None, :])
            elif kvq.mode is None:
                s = np.ones_like(z)
            else:
                s = rnd(smoothing_factor(np.abs(d).max(axis=1), kvq.mode))
            mx[:, :spec.query_length] = _mx_round_trip(d, s, kvq, npu.mx_block)
            rows[:, 2 * j], rows[:, 2 * j + 1] = s, z
        else:
            s, z = rows[:, 2 * j], rows[:, 2 * j + 1]
            d = rnd(x - z[:, None, :])
        window[:, b0:b0 + ls] = round_to_format(d[:, s0:s0 + ls], kv_fmt)
        tiles = round_to_format(mx * s[:, None, :], "bf16")  # dldkv.m into matrix SRAM
        tiles[:, b0:b0 + ls] = round_to_format(window[:, b0:b0 + ls], "bf16")
        seen.append(tiles)
    return seen[0], seen[1], rows[:, ROW_V_SHIFT].copy()
