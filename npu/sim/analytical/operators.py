"""The operators of one denoising step, read from an IR graph or written down from its shapes.

An `Operator` is the unit the analytical models cost: one linear layer (GEMM), one fused
attention (kv_cache_read .. matmul, scale, softmax, matmul), one vector pass (RMSNorm, RoPE, an
element-wise op), a KV-cache write, the embedding gather, the sampling pass (vocabulary-wide
argmax + softmax confidence) and the commit (top-k or threshold mask + select). Views
(reshape, transpose, slice, repeat_interleave) cost nothing and do not appear.

`operators_from_graph(graph)` reads them from a graph `npu.ir.export_step` produced;
`step_operators(model, shape)` writes the same list down from the shapes alone, which is what
design-space sweeps use (no export, microseconds per step). tests check the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from npu.ir.graph import Graph
from npu.models.transformer import ModelConfig

KINDS = ("rope_table", "embedding", "rmsnorm", "gemm", "rope", "kv_write", "attention", "elementwise",
         "sampling", "commit")
_SAMPLING_OPS = ("slice", "forbid_token", "argmax", "reduce_max", "sub", "exp", "reduce_sum", "reciprocal")
_FREE_OPS = ("reshape", "transpose", "slice", "repeat_interleave", "kv_cache_read")


@dataclass(frozen=True)
class StepShape:
    """One forward pass + sampling pass: which positions are queried, cached and sampled."""

    cache_mode: str        # "none", "prefix" or "dual"
    query_length: int      # positions the transformer pass computes
    kv_length: int         # positions attention reads (the whole sequence in every mode)
    sample_length: int     # positions the sampling pass reads (the current block)
    sampling: str = "topk"  # or "threshold"

    def __post_init__(self) -> None:
        if not 0 < self.sample_length <= self.query_length <= self.kv_length:
            raise ValueError(f"StepShape needs 0 < sample_length <= query_length <= kv_length, got {self}")
        if self.cache_mode == "none" and self.kv_length != self.query_length:
            raise ValueError("cache mode 'none' attends over the query itself: kv_length must equal query_length")
        if self.sampling not in ("topk", "threshold"):
            raise ValueError(f"StepShape.sampling={self.sampling!r} must be 'topk' or 'threshold'")


@dataclass(frozen=True)
class Operator:
    """One costed operator. Field meaning by kind:

    gemm: rows x width @ (width x out), `weight` its weight name, `bias` a bias add.
    attention: `heads` query heads of `rows` queries over `out` keys, head dim `width`, `kv_heads`.
    rmsnorm / elementwise: `rows` rows of `width` (elementwise: `op` = add, mul, silu, ...).
    rope: `rows` positions x `heads` heads of `width`.  kv_write: `rows` slots x `heads` KV heads of
    `width`, `op` = "k" or "v".  embedding: `rows` tokens of `width`.  rope_table: `rows` x `width`.
    sampling: `rows` positions over a vocabulary of `width`.  commit: `rows` positions, `op` the rule.
    """

    name: str
    kind: str
    rows: int
    width: int = 0
    out: int = 0
    heads: int = 0
    kv_heads: int = 0
    op: str = ""
    weight: str = ""
    bias: bool = False

    @property
    def macs(self) -> int:
        if self.kind == "gemm":
            return self.rows * self.width * self.out
        if self.kind == "attention":
            return 2 * self.heads * self.rows * self.out * self.width
        return 0

    @property
    def weight_elements(self) -> int:
        if self.kind == "gemm":
            return self.width * self.out + (self.out if self.bias else 0)
        if self.kind == "rmsnorm":
            return self.width
        if self.kind == "embedding":
            return self.rows * self.width  # only the looked-up rows
        return 0

    @property
    def elements(self) -> int:
        """Elements the operator produces (vector work, bytes written)."""
        if self.kind == "gemm":
            return self.rows * self.out
        if self.kind == "attention":
            return self.heads * self.rows * self.width
        if self.kind in ("rope", "kv_write"):
            return self.rows * self.heads * self.width
        if self.kind == "commit":
            return self.rows
        return self.rows * self.width


def _rows(shape: tuple[int, ...]) -> int:
    return prod(shape[:-1])


def operators_from_graph(graph: Graph) -> list[Operator]:
    """The operators of a step graph, in execution order (see the module docstring)."""
    values = graph.values()
    kv_heads = graph.metadata.get("model", {}).get("n_kv_heads", 0)
    operators: list[Operator] = []
    attention: dict | None = None
    last_linear = max((i for i, n in enumerate(graph.nodes) if n.op == "linear"), default=-1)
    sampling_rows = vocab = 0
    for index, node in enumerate(graph.nodes):
        ins = [values[name] for name in node.inputs]
        out = node.outputs[0]
        if index > last_linear and node.op in _SAMPLING_OPS:
            if node.op == "argmax":
                sampling_rows, vocab = _rows(ins[0].shape), ins[0].shape[-1]
                operators.append(Operator(node.name, "sampling", sampling_rows, vocab))
            continue
        if node.op in ("topk_mask", "threshold_mask"):
            rule = "topk" if node.op == "topk_mask" else "threshold"
            operators.append(Operator(node.name, "commit", ins[0].numel, op=rule))
            continue
        if node.op == "select" or (node.op in _FREE_OPS and attention is None) or node.op == "kv_cache_read":
            continue
        if node.op == "matmul" and attention is None:
            batch_heads = prod(ins[0].shape[:-2])
            attention = {"name": node.name, "rows": ins[0].shape[-2], "width": ins[0].shape[-1],
                         "out": ins[1].shape[-1], "heads": batch_heads}
            continue
        if attention is not None:
            if node.op == "matmul":
                operators.append(Operator(attention["name"], "attention", attention["rows"], attention["width"],
                                          attention["out"], attention["heads"], kv_heads))
                attention = None
            continue  # scale, softmax and views inside the attention
        if node.op == "rope_table":
            operators.append(Operator(node.name, "rope_table", out.shape[0], out.shape[1]))
        elif node.op == "embedding":
            operators.append(Operator(node.name, "embedding", ins[0].numel, out.shape[-1], weight=node.inputs[1]))
        elif node.op == "rmsnorm":
            operators.append(Operator(node.name, "rmsnorm", _rows(out.shape), out.shape[-1], weight=node.inputs[1]))
        elif node.op == "linear":
            operators.append(Operator(node.name, "gemm", _rows(ins[0].shape), ins[0].shape[-1], out.shape[-1],
                                      weight=node.inputs[1], bias=len(node.inputs) == 3))
        elif node.op == "rope":
            shape = ins[0].shape
            operators.append(Operator(node.name, "rope", shape[-2], shape[-1], heads=prod(shape[:-2])))
        elif node.op == "kv_cache_write":
            cache, positions = ins[0], ins[1]
            operators.append(Operator(node.name, "kv_write", positions.numel, cache.shape[3],
                                      heads=cache.shape[0] * cache.shape[1], op=node.attrs["kind"]))
        elif node.op in ("add", "sub", "mul", "silu", "exp", "reciprocal", "scale"):
            operators.append(Operator(node.name, "elementwise", _rows(out.shape), out.shape[-1], op=node.op))
        elif node.op in _FREE_OPS:
            continue
        else:
            raise ValueError(f"node {node.name!r}: op {node.op!r} has no analytical cost")
    return operators


def step_operators(model: ModelConfig, shape: StepShape) -> list[Operator]:
    """The operators `operators_from_graph(export_step(model, ...))` gives, from shapes alone."""
    lq, kv, d, f = shape.query_length, shape.kv_length, model.d_model, model.d_ff
    hd, heads, kvh = model.head_dim, model.n_heads, model.n_kv_heads
    cached = shape.cache_mode != "none"
    ops = [Operator("rope_cos_sin", "rope_table", lq, hd),
           Operator("embed", "embedding", lq, d, weight="embed.weight")]
    for layer in range(model.n_layers):
        p = f"blocks.{layer}."
        ops.append(Operator(p + "attn_norm", "rmsnorm", lq, d, weight=p + "attn_norm.weight"))
        for proj, width in (("q_proj", heads * hd), ("k_proj", kvh * hd), ("v_proj", kvh * hd)):
            ops.append(Operator(p + f"attn.{proj}", "gemm", lq, d, width, weight=p + f"attn.{proj}.weight",
                                bias=model.qkv_bias))
        ops.append(Operator(p + "attn.apply_rope", "rope", lq, hd, heads=heads))
        ops.append(Operator(p + "attn.apply_rope_1", "rope", lq, hd, heads=kvh))
        if cached:
            ops.append(Operator(p + "attn.kv_cache_write", "kv_write", lq, hd, heads=kvh, op="k"))
            ops.append(Operator(p + "attn.kv_cache_write_1", "kv_write", lq, hd, heads=kvh, op="v"))
        ops.append(Operator(p + "attn.matmul", "attention", lq, hd, kv, heads, kvh))
        ops.append(Operator(p + "attn.o_proj", "gemm", lq, heads * hd, d, weight=p + "attn.o_proj.weight"))
        ops.append(Operator(p + "add", "elementwise", lq, d, op="add"))
        ops.append(Operator(p + "mlp_norm", "rmsnorm", lq, d, weight=p + "mlp_norm.weight"))
        ops.append(Operator(p + "mlp.gate_proj", "gemm", lq, d, f, weight=p + "mlp.gate_proj.weight"))
        ops.append(Operator(p + "mlp.silu", "elementwise", lq, f, op="silu"))
        ops.append(Operator(p + "mlp.up_proj", "gemm", lq, d, f, weight=p + "mlp.up_proj.weight"))
        ops.append(Operator(p + "mlp.mul", "elementwise", lq, f, op="mul"))
        ops.append(Operator(p + "mlp.down_proj", "gemm", lq, f, d, weight=p + "mlp.down_proj.weight"))
        ops.append(Operator(p + "add_1", "elementwise", lq, d, op="add"))
    ops.append(Operator("final_norm", "rmsnorm", lq, d, weight="final_norm.weight"))
    ops.append(Operator("lm_head", "gemm", lq, d, model.vocab_size, weight="lm_head.weight"))
    ops.append(Operator("x0", "sampling", shape.sample_length, model.vocab_size))
    ops.append(Operator("committed", "commit", shape.sample_length, op=shape.sampling))
    return ops
