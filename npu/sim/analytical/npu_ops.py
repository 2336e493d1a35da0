"""Closed-form cost of each step operator on a dnpu machine, for fast design-space sweeps.

Every operator is written down as the loop nest npu/compiler lowers it to (same instructions,
same loops, same `wait`s), with trip counts instead of iterations: a `SegmentBuilder` sums
the per-instruction costs of `instruction_timing` over each loop body, and `SegmentClock`
overlaps the units per segment (npu.sim.analytical.segments). So an operator costs
microseconds to evaluate whatever its size, and uses exactly the cycle simulator's costs.

Lowerings (as in npu/compiler; `docs/analytical.md` lists the per-iteration instructions):
- gemm: per MLEN-wide output column, its K/MLEN weight tiles arrive by DMA (the next column is
  prefetched while this one runs); each BLEN-row block runs one tile op per K tile (each loads a
  new weight tile into the array) and `mwb`; optional bias pass;
- attention: per KV head the K and V tiles of all keys are loaded; per query head and BLEN-row
  block: a scores strip (tile ops + `mwb` per key tile), softmax per row (scale, max, exp-sum),
  P @ V, scaling by 1 / sum;
- vector passes at VLEN elements per instruction: RMSNorm, RoPE, element-wise, embedding gather,
  KV-cache write (strided DMA stores);
- the LM head is fused with the sampling pass: after each BLEN x MLEN logits tile, per row a
  running argmax (`vargmax`, or on machines without dLLM instructions `vmaxr` + a lowest-lane
  search) and the online softmax sum; then the commit (`vrank`/`vtopk`/`vseli`, or the generic
  scalar ranking double loop). The final RMSNorm and the LM head run on the sampled rows only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from npu.hw.config import NPUConfig
from npu.models.transformer import ModelConfig
from npu.hw.technology import EnergyTable, LatencyParameters
from npu.sim.cost.energy import energy_report
from npu.hw.rows import row_bytes
from npu.sim.analytical.costs import OperatorCost, StepCost, roofline_bound
from npu.sim.analytical.operators import Operator, StepShape, step_operators
from npu.sim.analytical.segments import DramPipe, Segment, SegmentBuilder, SegmentClock, SegmentGroup

ALL_UNITS = ("dma", "matrix", "vector")
SAMPLING_LABEL = "sampling"


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


class _Recipes:
    """Builds the segments of one operator (see the module docstring)."""

    def __init__(self, config: NPUConfig, params: LatencyParameters):
        self.config, self.params = config, params
        self.pipe = DramPipe.for_config(config)

    def builder(self, label: str) -> SegmentBuilder:
        return SegmentBuilder(self.config, label, self.params, self.pipe)

    @staticmethod
    def li(b: SegmentBuilder, *registers: str) -> None:
        """Load immediates (one `addi` each)."""
        for register in registers:
            b.scalar("addi", writes=[register])

    def opening(self, label: str) -> Segment:
        """The `wait dma|matrix|vector` every compiled operator starts with."""
        return self.builder(label).close(ALL_UNITS)

    def preamble(self, label: str, rows: int, head_dim: int, keys: int, sampled: int) -> list:
        """Run parameters, constant rows, token ids and the RoPE rows of the queried positions."""
        config = self.config
        mlen, vlen = config.mlen, config.vlen
        rope_width = _ceil(head_dim, vlen) * vlen
        b = self.builder(label)
        self.li(b, "r2", "r3")
        for fmt, target in (("fp32", "dld.f"), ("fp32", "dld.f"), ("int32", "dld.i")):
            self.li(b, "a0", "a0", "r1")
            b.dma(target, fmt, 1, 16)
        for cols in (_ceil(keys, mlen) * mlen, mlen, mlen):  # key mask, vocabulary bias, ramp
            self.li(b, "a0", "a0", "r1", "r3")
            b.dma("dld.v", "bf16", 1, cols)
        for count in (rows, _ceil(sampled, vlen) * vlen):  # zero padding, -1 rows
            self.li(b, "a0", "a0", "r1", "r3")
            b.dma("dld.i", "int32", 1, count)
        first = b.close(("dma",))
        b = self.builder(label)
        b.scalar("lw", writes=["r6"])
        self.li(b, "r7", "a0", "a0")
        b.scalar("amac", reads=["r6", "r7"], writes=["a1"])
        self.li(b, "r1", "r3")
        b.dma("dld.i", "int32", 1, rows, registers=("a1",))
        b.scalar("lw", writes=["r8"])
        b.scalar("add", reads=["r6", "r8"], writes=["r8"])
        b.scalar("amac", reads=["r8", "r7"], writes=["a1"])
        self.li(b, "r1", "r3")
        b.dma("dld.i", "int32", 1, sampled, registers=("a1",))
        self.li(b, "r7", "r4", "r5")
        for _ in ("cos", "sin"):
            self.li(b, "a0", "a0")
            b.scalar("amac", reads=["r6", "r7"], writes=["a1"])
            self.li(b, "r1")
            b.dma("dld.v", "bf16", rows, rope_width, dstride=4 * rope_width, registers=("a1",))
        for register in ("f0", "f1"):
            b.scalar("flui", writes=[register])
        for _ in range(2):
            self.li(b, "r1")
            b.vector("vbcast", writes=("const",), registers=("r1",))
        return [first, b.close(("dma", "vector"))]

    # ---- vector passes -------------------------------------------------------------------------
    def elementwise(self, label: str, op: str, elements: int, binary: bool) -> list:
        vlen = self.config.vlen
        b = self.builder(label)
        self.li(b, "r1", "r2", *(("r3",) if binary else ()))

        def row(b: SegmentBuilder) -> None:
            b.vector(op, reads=("a", "b") if binary else ("a",), writes=("y",), registers=("r1", "r2"))
            self.li(b, "r1", "r2", *(("r3",) if binary else ()))
        b.loop(_ceil(elements, vlen), row)
        return [self.opening(label), b.close(("vector",))]

    def rmsnorm(self, label: str, rows: int, width: int) -> list:
        vlen, chunks = self.config.vlen, _ceil(width, self.config.vlen)
        load = self.builder(label)
        self.li(load, "r1", "a0", "a0", "r2", "r3", "r4")
        load.dma("dld.v", "bf16", 1, width)
        load_segment = load.close(("dma",))

        def sum_of_squares(b: SegmentBuilder) -> None:
            b.scalar("flui", writes=["f1"])
            b.scalar("add", writes=["r3"])

            def chunk(b: SegmentBuilder) -> None:
                b.vector("vmul", reads=("x",), writes=("sq",), registers=("r3",))
                b.vector("vsum", reads=("sq",))
                b.scalar("addi", reads=["r3"], writes=["r3"])
            b.loop(chunks, chunk)

        def scale_row(b: SegmentBuilder) -> None:
            b.scalar("fmul", reads=["f1", "f6"], writes=["f1"])
            b.scalar("fadd", reads=["f1", "f7"], writes=["f1"])
            b.scalar("frsqrt", reads=["f1"], writes=["f1"])
            self.li(b, "r3", "r4", "r6")

            def chunk(b: SegmentBuilder) -> None:
                b.vector("vmuls", reads=("x",), writes=("y",), registers=("r4", "r3", "f1"))
                b.vector("vmul", reads=("y", "w"), writes=("y",), registers=("r4", "r6"))
                self.li(b, "r3", "r4", "r6")
            b.loop(chunks, chunk)
            self.li(b, "r1", "r2")

        first = self.builder(label)
        self.li(first, "r2", "r7", "r8")
        first.scalar("flw", writes=["f6"])
        first.scalar("flw", writes=["f7"])
        first.control("loop")
        sum_of_squares(first)
        middle = self.builder(label)
        scale_row(middle)
        sum_of_squares(middle)
        last = self.builder(label)
        scale_row(last)
        items = [self.opening(label), load_segment, first.close(("vector",))]
        if rows > 1:
            items.append(SegmentGroup((middle.close(("vector",)),), rows - 1))
        items.append(last.close(("vector",)))
        return items

    def rope(self, label: str, rows: int, heads: int, head_dim: int) -> list:
        vlen = self.config.vlen
        b = self.builder(label)
        self.li(b, "r1", "r2", "r3", "r4")

        def head(b: SegmentBuilder) -> None:
            if head_dim <= vlen:
                self.li(b, "r5")
                b.vector("vrothalf", reads=("x",), writes=("rot",), operands={"glog2": 0})
                b.vector("vmul", reads=("rot", "sin"), writes=("rot",))
                b.vector("vmul", reads=("x", "cos"), writes=("t",))
                b.vector("vadd", reads=("t", "rot"), writes=("x",))
            else:
                for j in range(head_dim // vlen):
                    self.li(b, "r6", "r5")
                    b.vector("vneg" if j < head_dim // vlen // 2 else "vmov", reads=("x",), writes=(("rot", j),),
                             registers=("r5", "r6"))
                    self.li(b, "r7")
                    b.vector("vmul", reads=(("rot", j), "sin"), writes=(("rot", j),), registers=("r7",))
                for j in range(head_dim // vlen):
                    self.li(b, "r6", "r7")
                    b.vector("vmul", reads=("x", "cos"), writes=("t",), registers=("r6", "r7"))
                    self.li(b, "r5")
                    b.vector("vadd", reads=("t", ("rot", j)), writes=("x",), registers=("r5",))
            self.li(b, "r1")

        def position(b: SegmentBuilder) -> None:
            b.loop(heads, head)
            self.li(b, "r2", "r3")
        b.loop(rows, position)
        return [self.opening(label), b.close(("vector",))]

    def embedding(self, label: str, rows: int, width: int) -> list:
        fmt = self.config.formats.weights
        b = self.builder(label)
        self.li(b, "a0", "a0", "r1", "r2", "r3", "r4", "r5")

        def token(b: SegmentBuilder) -> None:
            b.scalar("lw", reads=["r2"], writes=["r6"])
            b.scalar("amac", reads=["r6", "r1"], writes=["a1"])
            b.dma("dld.v", fmt, 1, width, registers=("a1",))
            self.li(b, "r2", "r3")
        b.loop(rows, token)
        return [self.opening(label), b.close(("dma",))]

    def kv_write(self, label: str, rows: int, kv_heads: int, head_dim: int) -> list:
        """Both K and V of one layer (the IR's two kv_cache_write nodes are one compiled loop)."""
        config = self.config
        slot = _ceil(head_dim, config.mlen) * config.mlen
        fmt = config.formats.kv_cache
        stride = row_bytes(fmt, slot, config.mx_block)
        b = self.builder(label)
        b.scalar("lw", writes=["r1"])
        self.li(b, "r2", "r4", "r5", "r6", "r7")
        for _ in ("k", "v"):
            self.li(b, "a0", "a0", "r3")

            def head(b: SegmentBuilder) -> None:
                b.scalar("amac", reads=["r1", "r2"], writes=["a1"])
                b.dma("dst.v", fmt, rows, slot, dstride=stride, registers=("a1",))
                b.scalar("aadd", writes=["a0"])
                self.li(b, "r3")
            b.loop(kv_heads, head)
        return [self.opening(label), b.close(("dma",))]

    # ---- matrix unit ---------------------------------------------------------------------------
    def _tile_load(self, b: SegmentBuilder, k_tiles: int, k: int, fmt: str) -> None:
        mlen = self.config.mlen
        stride = row_bytes(fmt, k, self.config.mx_block)
        b.scalar("aaddi", writes=["a2"])
        b.scalar("add", writes=["r3"])
        self.li(b, "r1", "r2", "r13", "r14")

        def tile(b: SegmentBuilder) -> None:
            b.dma("dld.m", fmt, mlen, mlen, dstride=stride, registers=("a2", "r3"))
            b.scalar("aadd", reads=["a2", "r14"], writes=["a2"])
            b.scalar("add", reads=["r3", "r13"], writes=["r3"])
        b.loop(k_tiles, tile)

    def _block(self, b: SegmentBuilder, k_tiles: int, first_tile_new: bool, writeback: tuple[str, ...]) -> None:
        """One BLEN-row block of a GEMM column: K tile ops, then `mwb`."""
        b.scalar("add", writes=["r3"])
        b.scalar("add", writes=["r10"])
        self.li(b, "r13")
        b.matrix("mmt", new_tile=first_tile_new, registers=("r3", "r9", "r10"))
        if k_tiles > 1:
            def tile(b: SegmentBuilder) -> None:
                b.scalar("addi", reads=["r3"], writes=["r3"])
                b.scalar("add", reads=["r10", "r13"], writes=["r10"])
                b.matrix("mmta", new_tile=True, registers=("r3", "r9", "r10"))
            b.loop(k_tiles - 1, tile)
        self.li(b, *writeback)
        b.matrix("mwb", registers=("r5", "r12"))

    def _column_start(self, b: SegmentBuilder, k_tiles: int, k: int, fmt: str, prefetch: bool) -> None:
        self.li(b, "r5")
        b.scalar("sub", writes=["r5"])
        b.scalar("slt", writes=["r7"])
        b.control("loop", reads=["r7"])
        if prefetch:
            self._tile_load(b, k_tiles, k, fmt)
        self.li(b, "r14")
        b.scalar("aadd", writes=["a1"])
        self.li(b, "r8")

    def _gemm_head(self, label: str, k_tiles: int, k_padded: int, fmt: str) -> Segment:
        """Set-up and the first weight column's tiles, up to the column loop's first wait."""
        head = self.builder(label)
        self.li(head, "a1", "a1", "r4")
        head.scalar("add", writes=["r5"])
        head.control("loopi")
        self._tile_load(head, k_tiles, k_padded, fmt)
        self.li(head, "r14")
        head.scalar("aadd", writes=["a1"])
        self.li(head, "r6", "r9", "r11")
        head.control("loop")
        return head.close(("dma", "matrix"))

    def gemm(self, label: str, rows: int, k: int, n: int, bias: bool) -> list:
        config = self.config
        mlen, blen, vlen = config.mlen, config.blen, config.vlen
        blocks, k_tiles, n_tiles = _ceil(rows, blen), _ceil(k, mlen), _ceil(n, mlen)
        k_padded = k_tiles * mlen
        fmt = config.formats.weights
        items = [self.opening(label), self._gemm_head(label, k_tiles, k_padded, fmt)]

        def column(prefetch: bool) -> Segment:
            b = self.builder(label)
            self._column_start(b, k_tiles, k_padded, fmt, prefetch)
            b.scalar("add", writes=["r5"])

            def block(b: SegmentBuilder, first: bool) -> None:
                self._block(b, k_tiles, k_tiles > 1 or first, ("r12",))
                self.li(b, "r14")
                b.scalar("add", writes=["r5"])
                self.li(b, "r7")
                b.scalar("add", writes=["r8"])
            b.control("loopi")
            block(b, True)
            b.repeat(blocks - 1, lambda b: block(b, False))
            b.scalar("addi", writes=["r11"])
            self.li(b, "r3")
            b.scalar("sub", writes=["r4"])
            return b.close(("dma", "matrix"))
        if n_tiles > 1:
            items.append(SegmentGroup((column(True),), n_tiles - 1))
        items.append(column(False))
        if bias:
            load = self.builder(label)
            self.li(load, "a0", "a0", "r1", "r2", "r3")
            load.dma("dld.v", "bf16", 1, n)
            items.append(load.close(("dma",)))
            add = self.builder(label)
            self.li(add, "r1")

            def bias_row(b: SegmentBuilder) -> None:
                self.li(b, "r2")

                def chunk(b: SegmentBuilder) -> None:
                    b.vector("vadd", reads=("y", "bias"), writes=("y",), registers=("r1", "r2"))
                    self.li(b, "r1", "r2")
                b.loop(_ceil(n, vlen), chunk)
            add.loop(rows, bias_row)
            items.append(add.close(("vector",)))
        return items

    # ---- attention -----------------------------------------------------------------------------
    def attention(self, label: str, heads: int, kv_heads: int, queries: int, keys: int, head_dim: int) -> list:
        config = self.config
        mlen, blen, vlen = config.mlen, config.blen, config.vlen
        chunks, dim_tiles = _ceil(keys, mlen), _ceil(head_dim, mlen)
        slots, slot = chunks * mlen, dim_tiles * mlen
        subrows, masked = slots // vlen, slots // vlen - keys // vlen
        fmt = config.formats.kv_cache
        stride = row_bytes(fmt, slot, config.mx_block)
        group = max(1, heads // max(kv_heads, 1))

        head_start = self.builder(label)
        self.li(head_start, "r13", "a3", "a3", "a4", "a4", "r11", "r12")
        head_start.control("loopi")
        head_start.control("bne", reads=["r13"])

        load = self.builder(label)
        for register in ("a3", "a4"):
            load.scalar("aaddi", writes=["a1"])
            self.li(load, "r3", "r1", "r2", "r4", "r5")
            load.control("loopi")

            def key_tile(b: SegmentBuilder, register=register) -> None:
                b.loop(dim_tiles, lambda b: (b.dma("dld.m", fmt, mlen, mlen, dstride=stride, registers=("a1", "r3")),
                                             b.scalar("aaddi", writes=["a1"]), b.scalar("add", writes=["r3"])))
                b.scalar("aadd", writes=["a1"])
            load.repeat(chunks, key_tile)
        self.li(load, "r14")
        load.scalar("aadd", writes=["a3"])
        load.scalar("aadd", writes=["a4"])
        self.li(load, "r13")
        load_segment = load.close(("dma",))

        scores = self.builder(label)
        scores.scalar("addi", writes=["r13"])
        scores.scalar("add", writes=["r8"])
        scores.scalar("add", writes=["r9"])
        scores.control("loopi")
        self.li(scores, "r1", "r2", "r3", "r4", "r5")

        def key_chunk(b: SegmentBuilder) -> None:
            b.scalar("add", writes=["r6"])
            b.matrix("mmt", new_tile=True, registers=("r6", "r2", "r4"))
            b.scalar("add", writes=["r4"])
            if dim_tiles > 1:
                b.loop(dim_tiles - 1, lambda b: (b.scalar("addi", writes=["r6"]),
                                                 b.matrix("mmta", new_tile=True, registers=("r6", "r2", "r4")),
                                                 b.scalar("add", writes=["r4"])))
            b.matrix("mwb", registers=("r1", "r3"))
            b.scalar("addi", writes=["r1"])
        scores.loop(chunks, key_chunk)
        scores_segment = scores.close(("matrix",))

        row_max = self.builder(label)
        row_max.scalar("add", writes=["r2"])
        row_max.loop(subrows, lambda b: (b.vector("vmuls", reads=("s",), writes=("s",), registers=("r2", "f6")),
                                         b.scalar("addi", reads=["r2"], writes=["r2"])))
        for _ in range(masked):
            self.li(row_max, "r2", "r3")
            row_max.vector("vadd", reads=("s", "mask"), writes=("s",), registers=("r2", "r3"))
        row_max.scalar("flui", writes=["f0"])
        row_max.scalar("add", writes=["r2"])
        row_max.loop(subrows, lambda b: (b.vector("vmaxr", reads=("s",), registers=("r2",)),
                                         b.scalar("addi", reads=["r2"], writes=["r2"])))
        row_max_segment = row_max.close(("vector",))

        row_sum = self.builder(label)
        row_sum.scalar("flui", writes=["f1"])
        row_sum.scalar("add", writes=["r2"])
        row_sum.loop(subrows, lambda b: (b.vector("vsubs", reads=("s",), writes=("s",), registers=("r2", "f0")),
                                         b.vector("vexp", reads=("s",), writes=("s",), registers=("r2",)),
                                         b.vector("vsum", reads=("s",), registers=("r2",)),
                                         b.scalar("addi", reads=["r2"], writes=["r2"])))
        row_sum_segment = row_sum.close(("vector",))

        pv = self.builder(label)
        pv.scalar("frecip", reads=["f1"], writes=["f2"])
        pv.scalar("fsw", reads=["f2", "r7"])
        pv.scalar("addi", writes=["r7"])
        self.li(pv, "r3")
        pv.scalar("add", writes=["r1"])
        self.li(pv, "r1", "r2", "r3", "r4", "r5", "r6", "r14")

        def value_tile(b: SegmentBuilder) -> None:
            b.scalar("add", writes=["r7"])
            b.scalar("add", writes=["r10"])
            b.matrix("mm", new_tile=True, registers=("r7", "r3", "r10"))
            if chunks > 1:
                b.loop(chunks - 1, lambda b: (b.scalar("addi", writes=["r7"]), b.scalar("add", writes=["r10"]),
                                              b.matrix("mma", new_tile=True, registers=("r7", "r3", "r10"))))
            b.matrix("mwb", registers=("r4", "r6"))
            b.scalar("addi", writes=["r4"])
            b.scalar("add", writes=["r1"])
        pv.loop(dim_tiles, value_tile)
        pv_segment = pv.close(("matrix",))

        out = self.builder(label)
        self.li(out, "r1")
        out.scalar("add", writes=["r3"])
        self.li(out, "r7", "r5")

        def out_row(b: SegmentBuilder) -> None:
            b.scalar("flw", reads=["r7"], writes=["f2"])
            b.scalar("add", writes=["r2"])
            b.scalar("add", writes=["r4"])
            b.loop(slot // vlen, lambda b: (b.vector("vmuls", reads=("o",), writes=("y",), registers=("r4", "r2", "f2")),
                                            b.scalar("addi", writes=["r2"]), b.scalar("addi", writes=["r4"])))
            b.scalar("addi", writes=["r7"])
            b.scalar("addi", writes=["r1"])
            b.scalar("add", writes=["r3"])
        out.loop(blen, out_row)
        out_segment = out.close(("vector",))

        rows_group = SegmentGroup((row_max_segment, row_sum_segment), blen)
        block = SegmentGroup((scores_segment, rows_group, pv_segment, out_segment), _ceil(queries, blen))
        per_kv_head = SegmentGroup((load_segment, block, SegmentGroup((block,), group - 1)), 1)
        return [self.opening(label), head_start.close(("dma", "matrix")),
                SegmentGroup((per_kv_head,), max(kv_heads, 1)), self.opening(label)]

    # ---- LM head + sampling ----------------------------------------------------------------------
    def _argmax_rows(self) -> tuple[Segment, ...]:
        """Per row and logits tile: the running argmax, up to its `wait vector` (1 or 2 segments)."""
        config, sub = self.config, self.config.mlen // self.config.vlen
        b = self.builder(SAMPLING_LABEL)
        for register in ("f1", "f0", "r12"):  # the previous row's state back to FP / INT SRAM
            b.scalar("fsw" if register[0] == "f" else "sw", reads=[register])
        self.li(b, "r10", "r5")
        b.scalar("flw", writes=["f0"])
        b.scalar("fmov", reads=["f0"], writes=["f3"])
        b.scalar("lw", writes=["r12"])
        if config.dllm_instructions:
            for _ in range(sub):
                self.li(b, "r14", "r13")
                b.vector("vargmax", reads=("tile",), registers=("r14", "r13"))
            return (b.close(("vector",)),)
        b.scalar("flui", writes=["f5"])  # generic: the tile maximum, then a search for its first lane
        for _ in range(sub):
            self.li(b, "r14")
            b.vector("vmaxr", reads=("tile",), registers=("r14",))
        first = b.close(("vector",))
        b = self.builder(SAMPLING_LABEL)
        b.scalar("flui", writes=["f6"])
        self.li(b, "r3")
        for _ in range(sub):
            self.li(b, "r14", "r13")
            b.vector("vges", reads=("tile",), writes=("hit",), registers=("r14", "f5", "r3"))
            b.vector("vmul", reads=("hit", "ramp"), writes=("hit",), registers=("r13",))
            b.vector("vmaxr", reads=("hit",))
        return first, b.close(("vector",))

    def _sum_row(self) -> Segment:
        """Per row and logits tile: rescale the running sum, add sum(exp(tile - max))."""
        config, sub = self.config, self.config.mlen // self.config.vlen
        b = self.builder(SAMPLING_LABEL)
        if not config.dllm_instructions:  # lane -> index, keep the better of old and new
            b.scalar("flw", writes=["f7"])
            b.scalar("fsub", reads=["f7", "f6"], writes=["f6"])
            b.scalar("fcvt.i.f", reads=["f6"], writes=["r3"])
            b.scalar("add", reads=["r3"], writes=["r3"])
            b.scalar("flt", writes=["r13"])
            b.scalar("sub", reads=["r3"], writes=["r3"])
            b.scalar("mul", reads=["r3", "r13"], writes=["r3"])
            b.scalar("add", reads=["r3"], writes=["r12"])
            b.scalar("fmax", writes=["f0"])
        b.scalar("fsub", reads=["f0", "f3"], writes=["f4"])
        b.scalar("fexp", reads=["f4"], writes=["f4"])
        b.scalar("flw", writes=["f1"])
        b.scalar("fmul", reads=["f1", "f4"], writes=["f1"])
        for _ in range(sub):
            self.li(b, "r14")
            b.vector("vsubs", reads=("tile",), writes=("tile",), registers=("r14", "f0"))
            b.vector("vexp", reads=("tile",), writes=("tile",), registers=("r14",))
            b.vector("vsum", reads=("tile",), registers=("r14",))
        return b.close(("vector",))

    def _block_prologue(self) -> Segment:
        """After `wait matrix`: how many of the block's rows are real (no wait of its own)."""
        b = self.builder(SAMPLING_LABEL)
        b.scalar("lw", writes=["r1"])
        self.li(b, "r2")
        b.scalar("sub", reads=["r2", "r1"], writes=["r2"])
        self.li(b, "r3")
        b.scalar("min", reads=["r2", "r3"], writes=["r2"])
        b.scalar("addi", reads=["r1"], writes=["r3"])
        b.scalar("sw", reads=["r3"])
        self.li(b, "r5")
        b.scalar("add", reads=["r1"], writes=["r10"])
        b.control("loop", reads=["r2"])
        return b.close(())

    def lm_head_sampling(self, label: str, rows: int, d_model: int, vocab: int) -> list:
        """The LM head over the sampled rows with the argmax / confidence epilogue per logits tile."""
        config = self.config
        mlen, blen = config.mlen, config.blen
        blocks, k_tiles, n_tiles = _ceil(rows, blen), _ceil(d_model, mlen), _ceil(vocab, mlen)
        fmt = config.formats.weights
        init = self.builder(SAMPLING_LABEL)
        init.scalar("flui", writes=["f0"])
        init.scalar("flui", writes=["f1"])
        self.li(init, "r1")
        init.loop(rows, lambda b: (b.scalar("fsw"), b.scalar("fsw"), b.scalar("sw"),
                                   b.scalar("addi", reads=["r1"], writes=["r1"])))
        items = [self.opening(SAMPLING_LABEL), init.close(ALL_UNITS),
                 self._gemm_head(label, k_tiles, k_tiles * mlen, fmt)]
        row = SegmentGroup(self._argmax_rows() + (self._sum_row(),), 1)
        prologue = self._block_prologue()

        def block_matrix(first_in_column: bool, prefetch: bool) -> Segment:
            b = self.builder(label)
            if first_in_column:
                self._column_start(b, k_tiles, k_tiles * mlen, fmt, prefetch)
                b.scalar("sw")
                b.control("loopi")
            self._block(b, k_tiles, k_tiles > 1 or first_in_column, ("r12", "r5"))
            return b.close(("matrix",))

        def column(prefetch: bool) -> SegmentGroup:
            parts = []
            for index in range(blocks):
                count = min(blen, rows - index * blen)
                parts += [block_matrix(index == 0, prefetch), prologue,
                          SegmentGroup((row,), count)]
            tail = self.builder(label)
            self.li(tail, "r7")
            tail.scalar("add", writes=["r8"])
            tail.scalar("addi", writes=["r11"])
            self.li(tail, "r3")
            tail.scalar("sub", writes=["r4"])
            parts.append(tail.close(("dma", "matrix")))
            return SegmentGroup(tuple(parts), 1)
        if n_tiles > 1:
            items.append(SegmentGroup((column(True),), n_tiles - 1))
        items.append(column(False))
        return items

    def commit(self, rows: int, rule: str) -> list:
        """confidence = 1 / sum per row, the commit rule, the token update, the outputs to DRAM."""
        vlen = self.config.vlen
        chunks = _ceil(rows, vlen)
        b = self.builder(SAMPLING_LABEL)
        self.li(b, "r1")
        b.loop(rows, lambda b: (b.scalar("flw", writes=["f1"]), b.scalar("frecip", reads=["f1"], writes=["f1"]),
                                b.scalar("fsw", reads=["f1"]), b.scalar("addi", writes=["r1"])))
        items = [self.opening(SAMPLING_LABEL)]
        if self.config.dllm_instructions:
            self.li(b, "r1", "r2", "r3")
            for _ in range(chunks):
                self.li(b, "r4", "r5")
                b.vector("vldf", writes=("conf",), registers=("r5", "r4"))
                self.li(b, "r4", "r6")
                b.vector("vieq", writes=("elig",), registers=("r6", "r4", "r1"))
                self.li(b, "r7")
                b.vector("vsel", reads=("conf", "elig"), writes=("score",), registers=("r7", "r5", "r2", "r6"))
                self.li(b, "r4")
                b.vector("vsti", registers=("r4", "r3"))
            for _ in range(chunks * chunks):
                self.li(b, "r4", "r5", "r6")
                b.vector("vrank", reads=("score",), registers=("r4", "r5", "r6"))
            b.scalar("lw", writes=["r8"])
            self.li(b, "r9")
            b.scalar("flw", writes=["f1"])
            for _ in range(chunks):
                self.li(b, "r4", "r5", "r6")
                if rule == "topk":
                    b.vector("vtopk", writes=("mask",), registers=("r6", "r4", "r5", "r8"))
                else:
                    self.li(b, "r7")
                    b.vector("vtopk", writes=("m1",), registers=("r7", "r4", "r5", "r9"))
                    self.li(b, "r10")
                    b.vector("vthresh", writes=("mask",), registers=("r6", "r10", "r5", "f1"))
                    b.vector("vmax", reads=("mask", "m1"), writes=("mask",), registers=("r6", "r7"))
                self.li(b, "r4", "r5")
                b.vector("vseli", reads=("mask",), registers=("r4", "r5", "r6"))
                self.li(b, "r5")
                b.vector("vsti", reads=("mask",), registers=("r5", "r6"))
            items.append(b.close(("vector",)))
        else:
            self.li(b, "r1", "r2")
            for _ in range(chunks):
                self.li(b, "r3")
                b.vector("vldf", writes=("row",), registers=("r2", "r3"))
                self.li(b, "r3")
                b.vector("vstf", reads=("row",), registers=("r3", "r2"))
                self.li(b, "r3")
                b.vector("vieq", writes=("row",), registers=("r2", "r3", "r1"))
                self.li(b, "r3")
                b.vector("vsti", reads=("row",), registers=("r3", "r2"))
            items.append(b.close(("vector",)))
            rank = self.builder(SAMPLING_LABEL)
            rank.scalar("lw", writes=["r9"])
            rank.scalar("flw", writes=["f2"])
            self.li(rank, "r1")

            def position(b: SegmentBuilder) -> None:
                b.scalar("flw", reads=["r1"], writes=["f0"])
                self.li(b, "r3", "r2")

                def other(b: SegmentBuilder) -> None:
                    b.scalar("flw", reads=["r2"], writes=["f1"])
                    b.scalar("lw", reads=["r2"], writes=["r5"])
                    b.scalar("flt", reads=["f0", "f1"], writes=["r6"])
                    b.scalar("feq", reads=["f0", "f1"], writes=["r7"])
                    b.scalar("slt", reads=["r2", "r1"], writes=["r8"])
                    b.scalar("and", reads=["r7", "r8"], writes=["r7"])
                    b.scalar("or", reads=["r6", "r7"], writes=["r6"])
                    b.scalar("and", reads=["r6", "r5"], writes=["r6"])
                    b.scalar("add", reads=["r3", "r6"], writes=["r3"])
                    b.scalar("addi", reads=["r2"], writes=["r2"])
                b.loop(rows, other)
                b.scalar("lw", reads=["r1"], writes=["r5"])
                if rule == "topk":
                    b.scalar("slt", reads=["r3", "r9"], writes=["r6"])
                else:
                    b.scalar("fle", reads=["f2", "f0"], writes=["r6"])
                    b.scalar("slti", reads=["r3"], writes=["r7"])
                    b.scalar("or", reads=["r6", "r7"], writes=["r6"])
                b.scalar("and", reads=["r6", "r5"], writes=["r6"])
                b.scalar("sw", reads=["r6", "r1"])
                b.scalar("lw", reads=["r1"], writes=["r7"])
                b.scalar("lw", reads=["r1"], writes=["r8"])
                b.scalar("sub", reads=["r7", "r8"], writes=["r7"])
                b.scalar("mul", reads=["r7", "r6"], writes=["r7"])
                b.scalar("add", reads=["r8", "r7"], writes=["r8"])
                b.scalar("sw", reads=["r8", "r1"])
                b.scalar("addi", reads=["r1"], writes=["r1"])
            rank.loop(rows, position)
            items.append(rank.close(ALL_UNITS))
        store = self.builder(SAMPLING_LABEL)
        store.scalar("lw", writes=["r1"])
        store.scalar("lw", writes=["r2"])
        store.scalar("add", reads=["r1", "r2"], writes=["r1"])
        self.li(store, "r3", "a0", "a0")
        store.scalar("amac", reads=["r1", "r3"], writes=["a1"])
        self.li(store, "r5", "r6")
        for fmt, target in (("int32", "dst.i"), ("int32", "dst.i"), ("fp32", "dst.f"), ("int32", "dst.i")):
            self.li(store, "a1", "a1", "r4")
            store.dma(target, fmt, 1, rows, registers=("a1", "r4"))
        items.append(store.close(("dma",)))
        return items


@dataclass(frozen=True)
class NpuStepModel:
    """Per-operator and per-step costs of denoising steps on one dnpu machine."""

    config: NPUConfig
    params: LatencyParameters | None = None  # None: the technology of `config`
    energy: EnergyTable | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def peak_flops(self) -> float:
        return self.config.peak_flops_per_s

    @property
    def peak_bandwidth(self) -> float:
        return self.config.peak_dram_bytes_per_s

    def _evaluate(self, items: list, parts: dict[str, tuple[str, str, float]]) -> list[OperatorCost]:
        """Time one operator's segments; `parts` maps a segment label to (name, kind, flops).

        DRAM bytes and energy are shared out between the parts in proportion to their time.
        """
        totals = SegmentClock(self.config).run(items)
        actions = {key: value for key, value in totals.actions.items() if value}
        cycles = totals.cycles
        report = energy_report(actions, self.config, round(cycles), self.energy)
        dram = actions.get("dram_read_bytes", 0) + actions.get("dram_write_bytes", 0)
        costs = []
        for label, (name, kind, flops) in parts.items():
            share = totals.by_label.get(label, 0.0) if len(parts) > 1 else cycles
            fraction = share / cycles if cycles else 0.0
            bound = _npu_bound(totals.by_label_resources.get(label, totals.resources))
            costs.append(OperatorCost(
                name=name, kind=kind, seconds=share / self.config.clock_hz, flops=flops,
                dram_bytes=dram * fraction, bound=bound, roofline=roofline_bound(bound),
                phase="sampling" if label == SAMPLING_LABEL else "transformer",
                energy_j=report.total_pj * fraction * 1e-12))
        return costs

    def compiled_operators(self, model: ModelConfig, shape: StepShape) -> list[Operator]:
        """The step's operators as the compiler lowers them: rows padded to BLEN, head slots to
        MLEN, the final RMSNorm and the LM head on the sampled rows only, K/V written to the DRAM
        cache in every mode ("none" included), and the preamble in place of the RoPE table."""
        config = self.config
        slot = _ceil(model.head_dim, config.mlen) * config.mlen
        rows = _ceil(shape.query_length, config.blen) * config.blen
        sampled = _ceil(shape.sample_length, config.blen) * config.blen
        padded = []
        for op in step_operators(model, shape):
            changes: dict = {}
            if op.kind in ("rmsnorm", "rope", "elementwise", "embedding", "gemm"):
                changes["rows"] = rows
            if op.name == "final_norm":
                changes["rows"] = shape.sample_length
            if op.name == "lm_head":
                changes["rows"] = sampled
            if op.kind == "rope_table":
                changes.update(kind="preamble", rows=rows, out=shape.kv_length, heads=shape.sample_length)
            if op.kind == "gemm" and op.name.endswith(("q_proj", "k_proj", "v_proj")):
                heads = model.n_heads if op.name.endswith("q_proj") else model.n_kv_heads
                changes["out"] = heads * slot
            if op.kind == "gemm" and op.name.endswith("o_proj"):
                changes["width"] = model.n_heads * slot
            if op.kind == "attention" and shape.cache_mode == "none":
                padded.append(Operator(op.name.replace("matmul", "kv_cache_write"), "kv_write", shape.query_length,
                                       model.head_dim, heads=model.n_kv_heads, op="k"))
            padded.append(replace(op, **changes))
        return padded

    def operator_costs(self, model: ModelConfig, shape: StepShape) -> list[OperatorCost]:
        """The cost of every operator of one step (LM head and sampling fused, see the module doc).

        Operators of identical shape (the layers) are costed once.
        """
        recipes = _Recipes(self.config, self.params)
        costs: list[OperatorCost] = []
        known: dict[Operator, list[OperatorCost]] = {}
        for op in self.compiled_operators(model, shape):
            if op.kind == "sampling" or (op.kind == "kv_write" and op.op == "v"):
                continue  # costed with the LM head / with the K write (one compiled loop each)
            key = replace(op, name="", weight="")
            if key not in known:
                if op.name == "lm_head":
                    items = recipes.lm_head_sampling(op.name, shape.sample_length, op.width, op.out)
                    parts = {op.name: (op.name, "gemm", 2.0 * op.rows * op.width * op.out),
                             SAMPLING_LABEL: ("sampling", "sampling", 0.0)}
                else:
                    label = SAMPLING_LABEL if op.kind == "commit" else op.name
                    parts = {label: (op.name, op.kind, 2.0 * op.macs)}
                    items = self._recipe(recipes, op)
                known[key] = self._evaluate(items, parts)
            costs += [cost if cost.phase == "sampling" else cost.renamed(op.name) for cost in known[key]]
        return costs

    def _recipe(self, recipes: _Recipes, op: Operator) -> list:
        kind, label, rows = op.kind, op.name, op.rows
        if kind == "gemm":
            return recipes.gemm(label, rows, op.width, op.out, op.bias)
        if kind == "attention":
            return recipes.attention(label, op.heads, op.kv_heads or op.heads, op.rows, op.out, op.width)
        if kind == "rmsnorm":
            return recipes.rmsnorm(label, rows, op.width)
        if kind == "rope":
            return recipes.rope(label, op.rows, op.heads, op.width)
        if kind == "elementwise":
            return recipes.elementwise(label, {"add": "vadd", "mul": "vmul", "sub": "vsub", "silu": "vsilu",
                                               "exp": "vexp", "reciprocal": "vrecip", "scale": "vmuls"}[op.op],
                                       op.rows * op.width, op.op in ("add", "mul", "sub"))
        if kind == "embedding":
            return recipes.embedding(label, op.rows, op.width)
        if kind == "kv_write":
            return recipes.kv_write(label, op.rows, op.heads, op.width)
        if kind == "preamble":
            return recipes.preamble(label, op.rows, op.width, op.out, op.heads)
        if kind == "commit":
            return recipes.commit(op.rows, op.op)
        raise ValueError(f"no NPU recipe for operator kind {kind!r}")

    def step(self, model: ModelConfig, shape: StepShape) -> StepCost:
        return StepCost(self.name, shape, tuple(self.operator_costs(model, shape)), self.peak_flops,
                        self.peak_bandwidth)


def _npu_bound(resources) -> str:
    """The resource with the most cycles: frontend, vector, matrix, weight_load, dma_port or dram."""
    candidates = {name: resources.get(name, 0.0) for name in ("frontend", "vector", "matrix", "weight_load",
                                                             "dma_port", "dram")}
    return max(candidates, key=candidates.get)

