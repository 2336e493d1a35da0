"""Export one denoising step (transformer pass + sampling pass) of a dLLM to the dnpu graph IR.

The transformer pass is captured with torch.fx from the model's own forward,
`MaskedDiffusionTransformer.forward(tokens, positions, cache)`, so the IR cannot drift from the
PyTorch reference. Three choices make that capture simple and fast:

- the model is traced on device "meta" and every proxy carries a meta tensor, so the model's
  Python sees concrete shapes (`batch, length, _ = x.shape`) and a full-size model traces in
  about a second without allocating weights;
- Linear, Embedding and RMSNorm are leaf modules (one IR op each), and the RoPE helpers are
  leaf functions (`rope_table`, `rope`);
- the KV cache handed to the model is a stand-in whose `write`/`read` record `kv_cache_write`
  (in-place overwrite of the query slots) and `kv_cache_read` nodes on per-layer cache inputs.

The sampling pass is appended op by op and matches npu.models.decoding exactly (temperature 0):
[MASK]'s logit set to -inf, x0 = argmax over the vocabulary,
confidence = 1 / sum(exp(logits - max)) (= softmax prob of x0),
a top-k or threshold commit mask over the eligible positions, and a masked select of token ids.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from npu.errors import UserError
from npu.ir.graph import OPS, Graph, IRError, Node, Value
from npu.models.decoding import CACHE_MODES
from npu.models.transformer import (
    MaskedDiffusionTransformer,
    ModelConfig,
    RMSNorm,
    build_model,
)

# Underscore aliases: fx's autowrap patches public globals that name these functions (in this
# module too, while tracing), and the converter must compare node targets with the originals.
from npu.models.transformer import apply_rope as _apply_rope
from npu.models.transformer import rope_cos_sin as _rope_cos_sin

SAMPLING_RULES = ("topk", "threshold")
_IR_DTYPE = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


class ExportError(UserError, ValueError):
    """The model or the requested step cannot be expressed in the IR."""


def kv_cache_write(
    cache: torch.Tensor, positions: torch.Tensor, new: torch.Tensor, layer: int, kind: str
) -> torch.Tensor:
    """Functional KVCache.write: `cache` with slots `positions` (axis 2) replaced by `new`."""
    out = cache.clone()
    out[:, :, positions] = new.to(out.dtype)
    return out


def kv_cache_read(cache: torch.Tensor, layer: int, kind: str) -> torch.Tensor:
    """Functional KVCache.read: every slot of one layer's K or V cache."""
    return cache


# ---------------------------------------------------------------------------------------------
# Tracing
# ---------------------------------------------------------------------------------------------


class _MetaProxy(fx.Proxy):
    """An fx proxy that knows its meta tensor, so shapes and dtypes are concrete Python values."""

    @property
    def meta(self) -> Any:
        return self.node.meta["val"]

    @property
    def shape(self) -> torch.Size:
        return self.meta.shape

    @property
    def dtype(self) -> torch.dtype:
        return self.meta.dtype

    @property
    def device(self) -> torch.device:
        return self.meta.device

    def size(self, dim: int | None = None):
        return self.meta.size() if dim is None else self.meta.size(dim)

    def dim(self) -> int:
        return self.meta.dim()

    def __iter__(self):
        if isinstance(self.meta, tuple):  # e.g. `cos, sin = rope_cos_sin(...)`
            return iter([self[i] for i in range(len(self.meta))])
        return super().__iter__()


def _meta_of(value: Any) -> Any:
    return value.node.meta["val"] if isinstance(value, fx.Proxy) else value


class _StepTracer(fx.Tracer):
    """symbolic_trace with meta values on every node and the IR's leaf modules/functions."""

    def __init__(self, placeholder_metas: dict[str, torch.Tensor]):
        super().__init__(autowrap_functions=(_rope_cos_sin, _apply_rope))
        self.placeholder_metas = placeholder_metas

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return isinstance(module, (nn.Linear, nn.Embedding, RMSNorm))

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return _MetaProxy(node, self)

    def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None, proxy_factory_fn=None):
        proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
        proxy.node.meta["scope"] = self.scope.module_path
        proxy.node.meta["val"] = self._meta_value(kind, target, args, kwargs, proxy.node.name)
        return proxy

    def _meta_value(self, kind: str, target: Any, args: tuple, kwargs: dict, node_name: str) -> Any:
        args = fx.node.map_aggregate(args, _meta_of)
        kwargs = fx.node.map_aggregate(kwargs, _meta_of)
        if kind == "placeholder":
            return self.placeholder_metas.get(target)
        if kind == "call_module":
            module = self.root.get_submodule(target)
            x = args[0]
            if isinstance(module, nn.Linear):
                return x.new_empty(x.shape[:-1] + (module.out_features,))
            if isinstance(module, nn.Embedding):
                return torch.empty(x.shape + (module.embedding_dim,), device="meta")
            return torch.empty_like(x)  # RMSNorm
        if kind == "call_function":
            if target is _rope_cos_sin:
                table = torch.empty((args[0].shape[0], args[1]), device="meta")
                return table, table
            if target in (kv_cache_write, kv_cache_read):
                return torch.empty_like(args[0])
            return target(*args, **kwargs)
        if kind == "call_method":
            return getattr(args[0], target)(*args[1:], **kwargs)
        raise ExportError(f"fx node {node_name!r}: {kind} {target!r} is not supported "
                          f"(parameters may only be used by Linear, Embedding or RMSNorm)")


class _TracingCache:
    """Stands in for KVCache during tracing: per-layer cache inputs, functional write/read."""

    def __init__(self, tracer: _StepTracer, n_layers: int, kv_length: int):
        self.tracer = tracer
        self.seq_len = kv_length
        self.k: list[fx.Proxy | None] = [None] * n_layers
        self.v: list[fx.Proxy | None] = [None] * n_layers

    def _current(self, kind: str, layer: int) -> fx.Proxy:
        slots = self.k if kind == "k" else self.v
        if slots[layer] is None:
            slots[layer] = self.tracer.create_proxy("placeholder", f"cache_{kind}.{layer}", (), {})
        return slots[layer]

    def write(self, layer: int, positions, k, v) -> None:
        for kind, new in (("k", k), ("v", v)):
            updated = self.tracer.create_proxy(
                "call_function", kv_cache_write, (self._current(kind, layer), positions, new, layer, kind), {}
            )
            (self.k if kind == "k" else self.v)[layer] = updated

    def read(self, layer: int):
        return tuple(
            self.tracer.create_proxy("call_function", kv_cache_read, (self._current(kind, layer), layer, kind), {})
            for kind in ("k", "v")
        )


class _StepModule(nn.Module):
    """The traced root: the model's forward with the tracing cache bound in."""

    def __init__(self, model: MaskedDiffusionTransformer, cache: _TracingCache | None):
        super().__init__()
        self.model = model
        self.cache = cache

    def forward(self, tokens, positions):
        return self.model(tokens, positions, self.cache)


# ---------------------------------------------------------------------------------------------
# fx graph -> IR
# ---------------------------------------------------------------------------------------------


class _Builder:
    """Appends IR nodes, inferring each output's shape and dtype from the op's rule."""

    def __init__(self, values: dict[str, Value]):
        self.values = dict(values)
        self.nodes: list[Node] = []

    def emit(self, op: str, name: str, inputs: list[str], attrs: dict | None = None,
             outputs: list[str] | None = None) -> list[str]:
        attrs = attrs or {}
        outputs = outputs or [name]
        try:
            specs = OPS[op].rule([(self.values[n].shape, self.values[n].dtype) for n in inputs], attrs)
        except (ValueError, KeyError) as exc:
            raise ExportError(f"node {name!r} ({op}): {exc}") from None
        values = tuple(Value(o, tuple(s), d) for o, (s, d) in zip(outputs, specs))
        for value in values:
            if value.name in self.values:
                raise ExportError(f"node {name!r} ({op}): value {value.name!r} is defined twice")
            self.values[value.name] = value
        self.nodes.append(Node(name, op, tuple(inputs), values, attrs))
        return list(outputs)


def _scoped_name(node: fx.Node) -> str:
    scope = node.meta.get("scope", "").removeprefix("model").lstrip(".")
    return f"{scope}.{node.name}" if scope else node.name


def _convert(fx_graph: fx.Graph, root: _StepModule, builder: _Builder, input_names: dict[str, str],
             result_names: dict[fx.Node, str]) -> str:
    """Emit IR nodes for the traced transformer pass; return the logits value name."""
    name_of: dict[fx.Node, Any] = {}  # IR value name, or a tuple of names for tuple-valued nodes

    def value(arg: Any) -> str:
        if not isinstance(arg, fx.Node):
            raise ExportError(f"expected a tensor, got the constant {arg!r}")
        return name_of[arg]

    for node in fx_graph.nodes:
        target = node.target
        if node.op == "placeholder":
            if target not in input_names:
                raise ExportError(f"fx placeholder {target!r} has no IR input")
            name_of[node] = input_names[target]
            continue
        if node.op == "output":
            return name_of[node.args[0]]
        if node.op == "call_module":
            name = target.removeprefix("model.")
        else:
            name = _scoped_name(node)
        out = result_names.get(node, name)
        meta = node.meta["val"]
        args, kwargs = node.args, node.kwargs

        def single(op: str, inputs: list[str], attrs: dict | None = None) -> str:
            return builder.emit(op, name, inputs, attrs, outputs=[out])[0]

        if node.op == "call_module":
            module = root.get_submodule(target)
            if isinstance(module, nn.Linear):
                bias = [f"{name}.bias"] if module.bias is not None else []
                name_of[node] = single("linear", [value(args[0]), f"{name}.weight"] + bias)
            elif isinstance(module, nn.Embedding):
                name_of[node] = single("embedding", [value(args[0]), f"{name}.weight"])
            else:
                name_of[node] = single("rmsnorm", [value(args[0]), f"{name}.weight"], {"eps": float(module.eps)})
        elif node.op == "call_function" and target is _rope_cos_sin:
            name_of[node] = tuple(builder.emit("rope_table", name, [value(args[0])],
                                               {"head_dim": int(args[1]), "theta": float(args[2])},
                                               outputs=[f"{name}.cos", f"{name}.sin"]))
        elif node.op == "call_function" and target is operator.getitem and isinstance(name_of.get(args[0]), tuple):
            name_of[node] = name_of[args[0]][args[1]]
        elif node.op == "call_function" and target is _apply_rope:
            name_of[node] = single("rope", [value(a) for a in args])
        elif node.op == "call_function" and target is kv_cache_write:
            cache, positions, new, layer, kind = args
            name_of[node] = single("kv_cache_write", [value(cache), value(positions), value(new)],
                                   {"axis": 2, "layer": layer, "kind": kind})
        elif node.op == "call_function" and target is kv_cache_read:
            cache, layer, kind = args
            name_of[node] = single("kv_cache_read", [value(cache)], {"layer": layer, "kind": kind})
        elif node.op == "call_function" and target in (operator.matmul, torch.matmul):
            name_of[node] = single("matmul", [value(args[0]), value(args[1])])
        elif node.op == "call_function" and target in (operator.add, operator.sub, operator.mul, operator.truediv):
            a, b = args
            if isinstance(a, fx.Node) and isinstance(b, fx.Node) and target is not operator.truediv:
                op = {operator.add: "add", operator.sub: "sub", operator.mul: "mul"}[target]
                name_of[node] = single(op, [value(a), value(b)])
            elif isinstance(a, fx.Node) and isinstance(b, (int, float)) and target in (operator.mul, operator.truediv):
                factor = float(b) if target is operator.mul else 1.0 / float(b)
                name_of[node] = single("scale", [value(a)], {"factor": factor})
            else:
                raise ExportError(f"fx node {node.name!r}: {target.__name__}{args} is not in the IR op set")
        elif node.op == "call_function" and target is F.silu:
            name_of[node] = single("silu", [value(args[0])])
        elif node.op == "call_method" and target in ("view", "reshape"):
            name_of[node] = single("reshape", [value(args[0])], {"shape": list(meta.shape)})
        elif node.op == "call_method" and target == "transpose":
            rank = meta.dim()
            perm = list(range(rank))
            a, b = args[1] % rank, args[2] % rank
            perm[a], perm[b] = perm[b], perm[a]
            name_of[node] = single("transpose", [value(args[0])], {"perm": perm})
        elif node.op == "call_method" and target == "softmax":
            axis = kwargs["dim"] if "dim" in kwargs else args[1]
            name_of[node] = single("softmax", [value(args[0])], {"axis": axis % meta.dim()})
        elif node.op == "call_method" and target == "repeat_interleave":
            repeats = kwargs["repeats"] if "repeats" in kwargs else args[1]
            axis = kwargs["dim"] if "dim" in kwargs else args[2]
            name_of[node] = single("repeat_interleave", [value(args[0])],
                                   {"repeats": int(repeats), "axis": axis % meta.dim()})
        elif node.op == "call_method" and target in ("to", "contiguous"):
            source = args[0].meta["val"]
            if meta.dtype != source.dtype:
                raise ExportError(f"fx node {node.name!r}: a dtype change {source.dtype} -> {meta.dtype} "
                                  f"is not in the IR")
            name_of[node] = value(args[0])  # no-op: same values, same dtype
        else:
            raise ExportError(f"fx node {node.name!r}: {node.op} {getattr(target, '__name__', target)!r} "
                              f"is not in the IR op set")
        if isinstance(name_of[node], str) and tuple(builder.values[name_of[node]].shape) != tuple(meta.shape):
            raise ExportError(f"node {name!r}: IR shape {list(builder.values[name_of[node]].shape)} "
                              f"differs from PyTorch's {list(meta.shape)}")
    raise ExportError("the traced graph has no output")


# ---------------------------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------------------------


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ExportError(f"export_step: {name}={value!r} must be an int >= {minimum}")
    return value


def export_step(
    model_or_config: MaskedDiffusionTransformer | ModelConfig,
    *,
    cache_mode: str,
    query_length: int,
    kv_length: int | None = None,
    batch: int = 1,
    sampling: str = "topk",
    sample_range: tuple[int, int] | None = None,
    forbid_mask_token: bool = True,
    include_logits: bool = True,
) -> Graph:
    """One denoising step as an IR graph: transformer pass, then the sampling pass.

    cache_mode "none" runs the whole sequence (kv_length defaults to, and must equal,
    query_length); "prefix" and "dual" query `query_length` positions against a cache of
    `kv_length` slots whose query slots are overwritten in place. `sampling` is "topk" (input k,
    one per batch row) or "threshold" (scalar input threshold). `sample_range` = [start, stop) of
    the query positions the sampling pass reads (the current block); default all of them.
    `forbid_mask_token` sets [MASK]'s logit to -inf before sampling, as decoding.generate does.

    Inputs: tokens (batch, query_length) int32, positions (query_length,) int32,
    cache_k.<l> / cache_v.<l> (batch, kv_heads, kv_length, head_dim) for cached modes,
    eligible (batch, sample) bool, k (batch,) int32 or threshold () float32.
    Outputs: logits (optional), x0, confidence, committed, tokens_out, cache_{k,v}.<l>.out.
    Weights are only referenced (state_dict names), so a model on device "meta" exports too.
    """
    if isinstance(model_or_config, MaskedDiffusionTransformer):
        config = model_or_config.config
        weight_dtypes = {n: p.dtype for n, p in model_or_config.named_parameters()}
    elif isinstance(model_or_config, ModelConfig):
        config, weight_dtypes = model_or_config, {}
    else:
        raise ExportError(f"export_step: expected a MaskedDiffusionTransformer or a ModelConfig, "
                          f"got {type(model_or_config).__name__}")
    if cache_mode not in CACHE_MODES:
        raise ExportError(f"export_step: cache_mode={cache_mode!r} is not one of {CACHE_MODES}")
    if sampling not in SAMPLING_RULES:
        raise ExportError(f"export_step: sampling={sampling!r} is not one of {SAMPLING_RULES}")
    _check_int("batch", batch, 1)
    _check_int("query_length", query_length, 1)
    if cache_mode == "none":
        kv_length = query_length if kv_length is None else kv_length
        if kv_length != query_length:
            raise ExportError(f"export_step: cache_mode 'none' attends over the query itself, so "
                              f"kv_length={kv_length} must equal query_length={query_length}")
    else:
        if kv_length is None:
            raise ExportError(f"export_step: cache_mode {cache_mode!r} needs kv_length (cache slots)")
        _check_int("kv_length", kv_length, query_length)
    if kv_length > config.max_seq_len:
        raise ExportError(f"export_step: kv_length={kv_length} exceeds max_seq_len={config.max_seq_len} "
                          f"of model {config.name!r}")
    start, stop = sample_range if sample_range is not None else (0, query_length)
    if not (isinstance(start, int) and isinstance(stop, int) and 0 <= start < stop <= query_length):
        raise ExportError(f"export_step: sample_range={sample_range!r} must be [start, stop) inside "
                          f"the {query_length} query positions")

    # Graph inputs and weights.
    cached = cache_mode != "none"
    cache_shape = (batch, config.n_kv_heads, kv_length, config.head_dim)
    inputs = [Value("tokens", (batch, query_length), "int32"), Value("positions", (query_length,), "int32")]
    if cached:
        for layer in range(config.n_layers):
            inputs += [Value(f"cache_{kind}.{layer}", cache_shape, "float32") for kind in ("k", "v")]
    sample_length = stop - start
    inputs.append(Value("eligible", (batch, sample_length), "bool"))
    inputs.append(Value("k", (batch,), "int32") if sampling == "topk" else Value("threshold", (), "float32"))

    meta_model = build_model(config, "meta")
    weights = []
    for name, param in meta_model.named_parameters():
        dtype = weight_dtypes.get(name, param.dtype)
        if dtype not in _IR_DTYPE:
            raise ExportError(f"export_step: weight {name!r} has dtype {dtype}, not one of {list(_IR_DTYPE)}")
        weights.append(Value(name, tuple(param.shape), _IR_DTYPE[dtype]))

    # Transformer pass.
    placeholder_metas = {
        "tokens": torch.empty((batch, query_length), dtype=torch.long, device="meta"),
        "positions": torch.empty((query_length,), dtype=torch.long, device="meta"),
    }
    for layer in range(config.n_layers):
        for kind in ("k", "v"):
            placeholder_metas[f"cache_{kind}.{layer}"] = torch.empty(cache_shape, device="meta")
    tracer = _StepTracer(placeholder_metas)
    cache = _TracingCache(tracer, config.n_layers, kv_length) if cached else None
    root = _StepModule(meta_model, cache)
    fx_graph = tracer.trace(root)
    input_names = {v.name: v.name for v in inputs}
    output_node = next(n for n in fx_graph.nodes if n.op == "output")
    result_names = {output_node.args[0]: "logits"}
    if cached:
        for layer in range(config.n_layers):
            result_names[cache.k[layer].node] = f"cache_k.{layer}.out"
            result_names[cache.v[layer].node] = f"cache_v.{layer}.out"
    builder = _Builder({v.name: v for v in inputs + weights})
    logits = _convert(fx_graph, root, builder, input_names, result_names)
    if logits != "logits":
        raise ExportError(f"the model's output {logits!r} was not produced by lm_head")

    # Sampling pass (npu.models.decoding: token_confidence, commit_mask, commit_tokens).
    scores, tokens = "logits", "tokens"
    if (start, stop) != (0, query_length):
        scores = builder.emit("slice", "sample.logits", ["logits"], {"axis": 1, "start": start, "stop": stop})[0]
        tokens = builder.emit("slice", "sample.tokens", ["tokens"], {"axis": 1, "start": start, "stop": stop})[0]
    if forbid_mask_token:
        scores = builder.emit("forbid_token", "sample.forbid_mask", [scores],
                              {"axis": 2, "token": config.mask_token_id})[0]
    builder.emit("argmax", "x0", [scores], {"axis": 2})
    builder.emit("reduce_max", "sample.peak", [scores], {"axis": 2, "keepdims": True})
    builder.emit("sub", "sample.shifted", [scores, "sample.peak"])
    builder.emit("exp", "sample.exp", ["sample.shifted"])
    builder.emit("reduce_sum", "sample.total", ["sample.exp"], {"axis": 2, "keepdims": False})
    builder.emit("reciprocal", "confidence", ["sample.total"])
    if sampling == "topk":
        builder.emit("topk_mask", "committed", ["confidence", "eligible", "k"])
    else:
        builder.emit("threshold_mask", "committed", ["confidence", "eligible", "threshold"])
    builder.emit("select", "tokens_out", ["committed", "x0", tokens])

    outputs = (["logits"] if include_logits else []) + ["x0", "confidence", "committed", "tokens_out"]
    if cached:
        for layer in range(config.n_layers):
            outputs += [f"cache_k.{layer}.out", f"cache_v.{layer}.out"]
    graph = Graph(
        name=f"{config.name}.step.{cache_mode}.q{query_length}.kv{kv_length}.b{batch}.{sampling}",
        inputs=inputs,
        weights=weights,
        nodes=builder.nodes,
        outputs=outputs,
        metadata={
            "model": config.to_dict(),
            "cache_mode": cache_mode,
            "query_length": query_length,
            "kv_length": kv_length,
            "batch": batch,
            "sampling": sampling,
            "sample_range": [start, stop],
            "forbid_mask_token": forbid_mask_token,
            "temperature": 0.0,
        },
    )
    try:
        return graph.validate()
    except IRError as exc:
        raise ExportError(f"export_step produced an invalid graph: {exc}") from None
