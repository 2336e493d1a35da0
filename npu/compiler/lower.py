"""compile_step: one IR step graph -> a dnpu program, its DRAM map and its statistics.

The lowering recognises the step graph that `npu.ir.export_step` produces (it re-exports the
graph from the metadata and compares node by node, naming the first node that differs) and
emits one fused kernel per group of nodes, in graph order:

    embedding | per layer: rmsnorm, q/k/v linear (+bias), rope, kv_cache_write, attention
    (kv_cache_read .. matmul, scale, softmax, matmul), o_proj + residual, rmsnorm, gate/up
    linear, silu*mul, down_proj + residual | final rmsnorm (sampled rows only), lm_head fused
    with forbid_token, argmax, max/exp/sum/reciprocal, then topk_mask|threshold_mask + select.

Row tiling. The residual stream x of all query rows always stays in vector SRAM. When a
layer's attention or MLP buffers for all rows do not fit, that stage runs per block of
rows (the largest multiple of BLEN that fits, `plan_rows`), re-streaming its weights per block;
attention then runs the K/V half (projections, RoPE, cache write) of every block before the Q
half, since each query attends to all keys. Every row's arithmetic is the same as untiled, so
the reference needs no tiling, and a step that fits is the untiled program unchanged.

The program reads its run-time parameters from DRAM: q0 (first query position), s0 (first
sampled row, relative to q0), k (top-k) and tau (threshold), so one program serves every block
of a generation. `npu.compiler.reference` walks the same kernels in numpy.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from npu.compiler.asm import Asm, CompileError
from npu.compiler.attention import emit_attention, emit_kv_write
from npu.compiler.attention_reference import key_mask
from npu.compiler.context import FP_EPS, FP_INV_D, FP_MLEN, FP_SCALE, INT_Q0, INT_S0, Emit, ScalarLayout, StepSpec
from npu.compiler.layout import (AllocationError, Allocator, CONSTANTS_BYTES, DramMap, Shapes, packed_shape, plan_dram,
                                 roundup)
from npu.compiler.linear import emit_linear
from npu.compiler.sampling import add_noise_region, biased_subrows, emit_commit, emit_lm_head, ramp, vocab_bias
from npu.compiler.vector_ops import emit_elementwise, emit_embedding, emit_rmsnorm, emit_rope, emit_silu_mul
from npu.hw.config import NPUConfig
from npu.ir.graph import Graph
from npu.isa.assembler import assemble
from npu.io import atomic_write_bytes
from npu.models.transformer import ModelConfig


@dataclass
class CompiledStep:
    """A step program plus everything needed to run it and to report on it."""

    spec: StepSpec
    program: np.ndarray  # uint32 words
    listing: str  # assembly text
    dram: DramMap
    constants: bytes  # the program's constants region image
    stats: dict = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)  # label -> pc, the `op_` regions included

    @property
    def dram_map(self) -> dict:
        return self.dram.to_dict()


def spec_from_graph(graph: Graph, npu: NPUConfig) -> StepSpec:
    """Read the step's shapes from the graph and check it is the standard step graph."""
    from npu.ir.export import export_step

    meta = graph.metadata
    for key in ("model", "cache_mode", "query_length", "sampling", "sample_range"):
        if key not in meta:
            raise CompileError(f"graph {graph.name!r}: metadata lacks {key!r}; export it with npu.ir.export_step")
    if meta.get("batch", 1) != 1:
        raise CompileError(f"graph {graph.name!r}: batch={meta['batch']}; the NPU runs batch 1")
    model = ModelConfig(**meta["model"])
    mode, lq = meta["cache_mode"], meta["query_length"]
    kv = meta.get("kv_length") or lq
    expected = export_step(model, cache_mode=mode, query_length=lq, kv_length=None if mode == "none" else kv,
                           sampling=meta["sampling"], sample_range=tuple(meta["sample_range"]),
                           forbid_mask_token=meta.get("forbid_mask_token", True),
                           include_logits="logits" in graph.outputs)
    if len(expected.nodes) != len(graph.nodes):
        raise CompileError(f"graph {graph.name!r}: {len(graph.nodes)} nodes, the step pattern has {len(expected.nodes)}")
    for got, want in zip(graph.nodes, expected.nodes):
        if (got.op, got.inputs, got.attrs) != (want.op, want.inputs, want.attrs):
            raise CompileError(f"graph {graph.name!r}: node {got.name!r} ({got.op}) does not match the step "
                               f"pattern (expected {want.name!r} ({want.op}) with inputs {list(want.inputs)})")
    if not meta.get("forbid_mask_token", True):
        raise CompileError(f"graph {graph.name!r}: the NPU sampling pass always forbids [MASK]")
    start, stop = meta["sample_range"]
    spec = StepSpec(Shapes(model, npu, kv), lq, stop - start, meta["sampling"], default_s0=start)
    spec.check()
    return spec


def constants_image(spec: StepSpec) -> tuple[bytes, dict[str, tuple[int, int, str]]]:
    """The constants region: fp32 scalars, int rows and bf16 rows; returns (bytes, name -> (offset, n, fmt))."""
    npu, m, sh = spec.npu, spec.model, spec.shapes
    bias = vocab_bias(m.vocab_size, sh.vocab_pad, m.mask_token_id)
    special = [c for c in range(sh.vocab_pad // npu.mlen) if biased_subrows(bias, c, npu.mlen, npu.vlen)]
    scalars = np.zeros(16, np.float32)
    scalars[FP_INV_D] = 1.0 / m.d_model
    scalars[FP_EPS] = m.norm_eps
    scalars[FP_SCALE] = 1.0 / math.sqrt(m.head_dim)
    scalars[FP_MLEN] = npu.mlen
    parts = [
        ("scalars", scalars, "fp32"),
        ("zeros", np.zeros(npu.blen, np.int32), "int32"),
        ("minus_ones", np.full(spec.sample_pad, -1, np.int32), "int32"),
        ("key_mask", key_mask(sh.seq_len, sh.kv_slots), "bf16"),
        ("vocab_bias", np.concatenate([bias[c * npu.mlen:(c + 1) * npu.mlen] for c in special]), "bf16"),
        ("ramp", ramp(npu.mlen), "bf16"),
    ]
    blob, index = bytearray(), {}
    for name, values, fmt in parts:
        if fmt == "bf16":
            raw = (np.asarray(values, np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
        else:
            raw = np.asarray(values).astype("<f4" if fmt == "fp32" else "<i4").tobytes()
        index[name] = (len(blob), len(values), fmt)
        blob += raw
        blob += bytes(roundup(len(blob), 8) - len(blob))
    if len(blob) > CONSTANTS_BYTES:
        raise CompileError(f"constants need {len(blob)} bytes, the region holds {CONSTANTS_BYTES}")
    return bytes(blob), index


def _preamble(e: Emit, index: dict) -> None:
    asm, sc, spec, sh = e.asm, e.scalars, e.spec, e.shapes
    base = e.dram["constants"].address
    asm.comment("preamble: parameters, constants, token ids, rope rows")
    asm.li("r2", 1)
    asm.li("r3", 16)
    for region, first, kind, fmt in (("constants", 0, "f", "fp32"), ("fparams", 16, "f", "fp32"),
                                     ("params", 0, "i", "int32")):
        asm.la("a0", e.dram[region].address)
        asm.li("r1", first)
        asm(f"dld.{kind} a0, r1, r2, r3, r0, r3, {fmt}", dram_read=64)
    for name in ("key_mask", "vocab_bias", "ramp"):
        offset, n, _ = index[name]
        asm.la("a0", base + offset)
        asm.li("r1", e.constants[name])
        asm.li("r3", n)
        asm("dld.v a0, r1, r2, r3, r0, r3, bf16", dram_read=2 * n)
    pad_rows = spec.rows - spec.query_length
    for name, target, n in (("zeros", sc.tok + spec.query_length, pad_rows), ("minus_ones", sc.blk, spec.sample_pad)):
        asm.la("a0", base + index[name][0])
        asm.li("r1", target)
        asm.li("r3", n)
        asm("dld.i a0, r1, r2, r3, r0, r3, int32", dram_read=4 * n)
    asm("wait dma")
    asm(f"lw r6, {INT_Q0}(r0)")
    asm.li("r7", 4)
    asm.la("a0", e.dram["tokens"].address)
    asm("amac a1, a0, r6, r7")
    asm.li("r1", sc.tok)
    asm.li("r3", spec.query_length)
    asm("dld.i a1, r1, r2, r3, r0, r3, int32", dram_read=4 * spec.query_length)
    asm(f"lw r8, {INT_S0}(r0)")
    asm("add r8, r6, r8")
    asm("amac a1, a0, r8, r7")
    asm.li("r1", sc.blk)
    asm.li("r3", spec.sample_length)
    asm("dld.i a1, r1, r2, r3, r0, r3, int32", dram_read=4 * spec.sample_length)
    width = sh.rope_width
    asm.li("r7", 2 * width)
    asm.li("r4", spec.rows)
    asm.li("r5", width)
    for name in ("cos", "sin"):
        asm.la("a0", e.dram[f"rope.{name}"].address)
        asm("amac a1, a0, r6, r7")
        asm.li("r1", e.constants[name])
        asm("dld.v a1, r1, r4, r5, r7, r5, bf16", dram_read=2 * width * spec.rows)
    asm("flui f0, -inf")
    asm("flui f1, 0.0")
    asm.li("r1", e.constants["neg_inf"])
    asm("vbcast r1, f0")
    asm.li("r1", e.constants["zero"])
    asm("vbcast r1, f1")
    asm("wait dma|vector")


def _attention_rows(e: Emit, layer: int, x: int, r0: int, n: int, kv: bool = True, q: bool = True) -> None:
    """Attention sublayer of query rows r0..r0+n: the K/V half (rmsnorm, k/v proj, rope, cache
    write) and/or the Q half (rmsnorm, q proj, rope, attention, o_proj + residual).

    Both halves over all rows at once is the untiled program; a row-tiled layer runs the K/V half
    of every block first, because each query row attends to the keys of all rows.
    """
    spec, sh, vec = e.spec, e.shapes, e.vec
    m = spec.model
    d = sh.d_model_pad
    p = f"blocks.{layer}."
    x_rows = x + r0 * d
    hn = vec.alloc("hn", n * d)
    e.asm.operator(p + "attn_norm")
    emit_rmsnorm(e, x_rows, hn, n, p + "attn_norm.weight")
    outs = []
    if q:
        outs.append(("q", vec.alloc("q", n * sh.q_width), sh.q_width))
    if kv:
        outs.append(("k", vec.alloc("k", n * sh.kv_width), sh.kv_width))
        outs.append(("v", vec.alloc("v", n * sh.kv_width), sh.kv_width))
    for name, out, width in outs:
        e.asm.operator(p + f"attn.{name}_proj")
        emit_linear(e, hn, n, d, p + f"attn.{name}_proj.weight", width, out,
                    bias_region=p + f"attn.{name}_proj.bias" if m.qkv_bias else None)
    vec.free("hn")
    addr = {name: out for name, out, _ in outs}
    cos = e.constants["cos"] + r0 * sh.rope_width
    sin = e.constants["sin"] + r0 * sh.rope_width
    if q:
        e.asm.operator(p + "attn.apply_rope")
        emit_rope(e, addr["q"], m.n_heads, cos, sin, n)
    if kv:
        e.asm.operator(p + "attn.apply_rope_1")
        emit_rope(e, addr["k"], m.n_kv_heads, cos, sin, n)
        e.asm.operator(p + "attn.kv_cache_write")
        emit_kv_write(e, layer, addr["k"], addr["v"], r0, min(n, spec.query_length - r0))
        vec.free("v")
        vec.free("k")
    if not q:
        return
    attn = vec.alloc("attn", n * sh.q_width)
    e.asm.operator(p + "attn.matmul")
    emit_attention(e, layer, sh.seq_len, addr["q"], attn, n)
    vec.free("q")
    o = vec.alloc("o", n * d)
    e.asm.operator(p + "attn.o_proj")
    emit_linear(e, attn, n, sh.q_width, p + "attn.o_proj.weight", d, o)
    vec.free("attn")
    e.asm.operator(p + "add")
    emit_elementwise(e, "vadd", x_rows, x_rows, o, n * d)
    vec.free("o")


def _mlp_rows(e: Emit, layer: int, x: int, r0: int, n: int) -> None:
    """MLP sublayer of rows r0..r0+n: rmsnorm, gate/up, silu*mul, down_proj + residual."""
    vec = e.vec
    d, f = e.shapes.d_model_pad, e.shapes.d_ff_pad
    p = f"blocks.{layer}."
    x_rows = x + r0 * d
    hn = vec.alloc("hn", n * d)
    e.asm.operator(p + "mlp_norm")
    emit_rmsnorm(e, x_rows, hn, n, p + "mlp_norm.weight")
    gate = vec.alloc("gate", n * f)
    up = vec.alloc("up", n * f)
    e.asm.operator(p + "mlp.gate_proj")
    emit_linear(e, hn, n, d, p + "mlp.gate_proj.weight", f, gate)
    e.asm.operator(p + "mlp.up_proj")
    emit_linear(e, hn, n, d, p + "mlp.up_proj.weight", f, up)
    vec.free("hn")
    e.asm.operator(p + "mlp.silu")  # silu and mul in one pass
    emit_silu_mul(e, gate, up, n * f)
    vec.free("up")
    down = vec.alloc("down", n * d)
    e.asm.operator(p + "mlp.down_proj")
    emit_linear(e, gate, n, f, p + "mlp.down_proj.weight", d, down)
    vec.free("gate")
    e.asm.operator(p + "add_1")
    emit_elementwise(e, "vadd", x_rows, x_rows, down, n * d)
    vec.free("down")


RowStage = Callable[[Emit, int, int, int, int], None]  # (e, layer, x, r0, n)

STAGES: dict[str, RowStage] = {
    "attention": _attention_rows,
    "attention.kv": partial(_attention_rows, q=False),
    "attention.q": partial(_attention_rows, kv=False),
    "mlp": _mlp_rows,
}


def _allocation_error(e: Emit, stage: RowStage, x: int, n: int) -> AllocationError | None:
    """Why one block of n rows of `stage` does not fit vector SRAM (None if it does), found by
    emitting it into scratch copies of the assembly and the allocator."""
    trial = dataclasses.replace(e, asm=Asm(), vec=copy.deepcopy(e.vec))
    try:
        stage(trial, 0, x, 0, n)
    except AllocationError as error:
        return error
    return None


def _row_block(e: Emit, name: str, x: int) -> int:
    """The largest multiple of BLEN rows (at most all rows) whose block of stage `name` fits."""
    blen, rows = e.npu.blen, e.spec.rows
    error = None
    for n in range(rows, 0, -blen):
        error = _allocation_error(e, STAGES[name], x, n)
        if error is None:
            return n
    raise AllocationError(f"{error}; not even one row block of blen={blen} rows of the {name} stage fits")


def plan_rows(e: Emit, x: int) -> dict[str, int]:
    """Rows per block of each layer stage, in execution order: all rows when they fit vector
    SRAM (the untiled program), otherwise the largest multiple of BLEN that fits; weights
    are then re-streamed once per block. Every layer has the same shapes and the same SRAM state
    at its start, so one plan serves all layers."""
    rows = e.spec.rows
    if _allocation_error(e, STAGES["attention"], x, rows) is None:
        plan = {"attention": rows}
    else:
        plan = {"attention.kv": _row_block(e, "attention.kv", x), "attention.q": _row_block(e, "attention.q", x)}
    plan["mlp"] = _row_block(e, "mlp", x)
    return plan


def _layer(e: Emit, layer: int, x: int, plan: dict[str, int]) -> None:
    rows = e.spec.rows
    for name, block in plan.items():
        for r0 in range(0, rows, block):
            n = min(block, rows - r0)
            if block < rows:
                e.asm.comment(f"layer {layer} {name}: row block {r0}..{r0 + n} of {rows}")
            STAGES[name](e, layer, x, r0, n)


def packed_weight_shapes(model: ModelConfig, shapes: Shapes) -> dict[str, tuple[int, ...]]:
    """Shapes of the padded weights (see layout.pack_weights), in state-dict order."""
    from npu.models.transformer import build_model

    meta = build_model(model, "meta")
    return {name: packed_shape(name, tuple(p.shape), shapes) for name, p in meta.named_parameters()}


def compile_spec(spec: StepSpec) -> CompiledStep:
    """Lower one step (see module docstring)."""
    spec.check()
    npu, sh, m = spec.npu, spec.shapes, spec.model
    dram = plan_dram(sh, packed_weight_shapes(m, sh))
    if spec.temperature:
        add_noise_region(dram, sh)
    blob, index = constants_image(spec)
    vec = Allocator(f"{npu.name}: vector_sram.size_bytes", npu.vector_sram.size_bytes // npu.vector_element_bytes, npu.vlen)
    constants = {
        "neg_inf": vec.alloc("neg_inf", npu.vlen),
        "zero": vec.alloc("zero", npu.vlen),
        "row_tmp": vec.alloc("row_tmp", npu.vlen),
        "ramp": vec.alloc("ramp", npu.mlen),
        "key_mask": vec.alloc("key_mask", sh.kv_slots),
        "vocab_bias": vec.alloc("vocab_bias", index["vocab_bias"][1]),
        "cos": vec.alloc("cos", spec.rows * sh.rope_width),
        "sin": vec.alloc("sin", spec.rows * sh.rope_width),
    }
    e = Emit(Asm(), spec, dram, vec, ScalarLayout(spec), constants)
    e.asm.operator("rope_cos_sin")  # the preamble loads the queried positions' RoPE rows
    _preamble(e, index)
    d = sh.d_model_pad  # the residual stream's padded width; the norms divide by the true d_model
    x = vec.alloc("x", spec.rows * d)
    plan = plan_rows(e, x)
    e.asm.operator("embed")
    emit_embedding(e, x)
    for layer in range(m.n_layers):
        _layer(e, layer, x, plan)
    h = vec.alloc("h", spec.sample_rows * d)
    e.asm.operator("final_norm")
    e.asm(f"lw r9, {INT_S0}(r0)")
    e.asm.li("r10", d)
    e.asm("mul r9, r9, r10")
    e.asm.li("r10", x)
    e.asm("add r9, r9, r10")
    emit_rmsnorm(e, "r9", h, spec.sample_length, "final_norm.weight")
    pad = (spec.sample_rows - spec.sample_length) * d
    if pad:
        e.asm("flui f0, 0.0")
        e.asm.li("r1", h + spec.sample_length * d)
        with e.asm.loop(pad // npu.vlen):
            e.asm("vbcast r1, f0")
            e.asm(f"addi r1, r1, {npu.vlen}")
        e.asm("wait vector")
    vec.free("x")
    emit_lm_head(e, h)
    vec.free("h")
    e.asm.operator("committed")
    emit_commit(e)
    e.asm("halt")
    listing = e.asm.text()
    program = assemble(listing, source=f"{m.name}.step")
    stats = _stats(e, len(program))
    stats["row_blocks"] = {name: -(-spec.rows // block) for name, block in plan.items()}
    return CompiledStep(spec, program.words, listing, dram, blob, stats, program.labels)


def compile_step(graph: Graph, npu_config: NPUConfig) -> CompiledStep:
    """Compile an `export_step` graph for one NPU configuration."""
    return compile_spec(spec_from_graph(graph, npu_config))


def _stats(e: Emit, words: int) -> dict:
    npu, spec = e.npu, e.spec
    executed = {k: int(round(v)) for k, v in sorted(e.asm.executed.items())}
    return {
        "program_words": words,
        "program_bytes": 4 * words,
        "executed_by_class": executed,
        "executed_total": sum(executed.values()),
        "macs": int(round(e.asm.macs)),
        "dram_read_bytes": int(round(e.asm.dma_bytes["dram_read"])),
        "dram_write_bytes": int(round(e.asm.dma_bytes["dram_write"])),
        "weight_bytes": sum(r.nbytes for n, r in e.dram.regions.items()
                            if n.startswith(("blocks.", "lm_head", "final_norm"))),
        "peak_sram_bytes": {
            "vector_sram": e.vec.peak * npu.vector_element_bytes,
            "fp_sram": 4 * e.scalars.fp_end,
            "int_sram": 4 * e.scalars.int_end,
            "matrix_sram": 2 * e.matrix_peak,
        },
        "query_length": spec.query_length,
        "sample_length": spec.sample_length,
        "seq_len": spec.shapes.seq_len,
        "npu": npu.name,
        "model": spec.model.name,
        "sampling": spec.sampling,
    }


def write_artifacts(step: CompiledStep, out_dir: str | Path, name: str = "step") -> list[Path]:
    """program.bin (little-endian words), .s listing, DRAM map and statistics as JSON."""
    out = Path(out_dir)
    paths = [out / f"{name}.bin", out / f"{name}.s", out / f"{name}.dram_map.json", out / f"{name}.stats.json"]
    contents = [step.program.astype("<u4").tobytes(), step.listing.encode(),
                json.dumps(step.dram_map, indent=1).encode(), json.dumps(step.stats, indent=1).encode()]
    return [atomic_write_bytes(path, data) for path, data in zip(paths, contents)]
