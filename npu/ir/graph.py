"""The dnpu graph IR: one denoising step as a flat, typed, topologically ordered list of ops.

This is what the NPU compiler reads, so it is deliberately plain:

- every tensor is a named `Value` with a static shape and a dtype; names are unique in a graph;
- a `Node` applies one op from the closed set `OPS` to named inputs and defines named outputs;
  attributes (axes, eps, RoPE theta, ...) are plain JSON numbers and lists;
- weights are not embedded: a graph lists them by their `state_dict` name, shape and dtype, and a
  node names a weight among its inputs exactly like any other value;
- nodes come in execution order, so a single pass over the list runs the graph.

`Graph.validate()` checks all of that (version, known ops, every input defined before use, the
declared output shapes equal the shapes the op implies) and names the offending node.
The op semantics are documented in docs/ir.md; npu/ir/interpret.py is the executable reference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from math import prod
from pathlib import Path
from typing import Any, Callable

from npu.errors import UserError
from npu.io import atomic_write_text

IR_VERSION = "dnpu-ir/1"

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "int32": 4, "int64": 8, "bool": 1}
FLOAT_DTYPES = ("float32", "bfloat16", "float16")
INT_DTYPES = ("int32", "int64")


class IRError(UserError, ValueError):
    """A graph is malformed; the message names the node (or graph field) at fault."""


@dataclass(frozen=True)
class Value:
    """A named tensor: graph input, weight, or node output."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def numel(self) -> int:
        return prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * DTYPE_BYTES[self.dtype]

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class Node:
    """One op application. `inputs` are value names; `outputs` are the values it defines."""

    name: str
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[Value, ...]
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "op": self.op,
            "inputs": list(self.inputs),
            "outputs": [v.to_dict() for v in self.outputs],
            "attrs": self.attrs,
        }


# ---------------------------------------------------------------------------------------------
# The closed op set. Each op has an arity, required attributes, and a shape/dtype rule that maps
# input (shape, dtype) pairs and attributes to output (shape, dtype) pairs. A rule raises
# ValueError with a short reason; `Graph.validate` prefixes it with the node.
# ---------------------------------------------------------------------------------------------

Spec = tuple[tuple[int, ...], str]


def _need(condition: bool, reason: str) -> None:
    if not condition:
        raise ValueError(reason)


def _axis(axis: int, rank: int) -> int:
    _need(isinstance(axis, int) and -rank <= axis < rank, f"axis {axis!r} is out of range for rank {rank}")
    return axis % rank


def _float(spec: Spec, what: str) -> None:
    _need(spec[1] in FLOAT_DTYPES, f"{what} must be a float tensor, got {spec[1]}")


def _int(spec: Spec, what: str) -> None:
    _need(spec[1] in INT_DTYPES, f"{what} must be an integer tensor, got {spec[1]}")


def _broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    out = []
    for i in range(max(len(a), len(b))):
        x = a[len(a) - 1 - i] if i < len(a) else 1
        y = b[len(b) - 1 - i] if i < len(b) else 1
        _need(x == y or x == 1 or y == 1, f"shapes {list(a)} and {list(b)} do not broadcast")
        out.append(max(x, y))
    return tuple(reversed(out))


def _rule_embedding(ins, attrs):
    ids, table = ins
    _int(ids, "ids")
    _float(table, "table")
    _need(len(table[0]) == 2, f"table must be 2-D (vocab, dim), got {list(table[0])}")
    return [(ids[0] + (table[0][1],), "float32")]


def _rule_linear(ins, attrs):
    x, weight = ins[0], ins[1]
    _float(x, "x")
    _float(weight, "weight")
    _need(len(weight[0]) == 2, f"weight must be 2-D (out, in), got {list(weight[0])}")
    _need(x[0][-1:] == weight[0][1:], f"x {list(x[0])} does not end in the weight's in-features {weight[0][1]}")
    if len(ins) == 3:
        _float(ins[2], "bias")
        _need(ins[2][0] == weight[0][:1], f"bias {list(ins[2][0])} must be [{weight[0][0]}]")
    return [(x[0][:-1] + (weight[0][0],), "float32")]


def _rule_matmul(ins, attrs):
    a, b = ins
    _float(a, "a")
    _float(b, "b")
    _need(len(a[0]) >= 2 and len(a[0]) == len(b[0]), f"a {list(a[0])} and b {list(b[0])} need equal rank >= 2")
    _need(a[0][:-2] == b[0][:-2], f"batch dims of a {list(a[0])} and b {list(b[0])} differ")
    _need(a[0][-1] == b[0][-2], f"a {list(a[0])} @ b {list(b[0])}: inner dims differ")
    return [(a[0][:-1] + b[0][-1:], "float32")]


def _rule_binary(ins, attrs):
    a, b = ins
    _float(a, "a")
    _float(b, "b")
    return [(_broadcast(a[0], b[0]), "float32")]


def _rule_unary(ins, attrs):
    _float(ins[0], "x")
    return [(ins[0][0], "float32")]


def _rule_scale(ins, attrs):
    _need(isinstance(attrs["factor"], (int, float)), "attribute 'factor' must be a number")
    return _rule_unary(ins, attrs)


def _rule_rmsnorm(ins, attrs):
    x, weight = ins
    _float(x, "x")
    _need(weight[0] == x[0][-1:], f"weight {list(weight[0])} must be [{x[0][-1]}] (last dim of x)")
    _need(isinstance(attrs["eps"], float) and attrs["eps"] > 0, "attribute 'eps' must be a positive float")
    return [(x[0], "float32")]


def _rule_rope_table(ins, attrs):
    (positions,) = ins
    _int(positions, "positions")
    _need(len(positions[0]) == 1, f"positions must be 1-D, got {list(positions[0])}")
    head_dim = attrs["head_dim"]
    _need(isinstance(head_dim, int) and head_dim > 0 and head_dim % 2 == 0, "attribute 'head_dim' must be even")
    table = (positions[0] + (head_dim,), "float32")
    return [table, table]


def _rule_rope(ins, attrs):
    x, cos, sin = ins
    _float(x, "x")
    _need(cos[0] == sin[0] and len(cos[0]) == 2, f"cos {list(cos[0])} and sin {list(sin[0])} must be equal 2-D")
    _need(x[0][-2:] == cos[0], f"x {list(x[0])} must end in the table shape {list(cos[0])}")
    return [(x[0], "float32")]


def _rule_kv_cache_write(ins, attrs):
    cache, positions, new = ins
    _float(cache, "cache")
    _int(positions, "positions")
    axis = _axis(attrs["axis"], len(cache[0]))
    _need(len(positions[0]) == 1, f"positions must be 1-D, got {list(positions[0])}")
    expected = cache[0][:axis] + positions[0] + cache[0][axis + 1 :]
    _need(new[0] == expected, f"new slots {list(new[0])} must be {list(expected)}")
    return [cache]


def _rule_kv_cache_read(ins, attrs):
    _float(ins[0], "cache")
    return [(ins[0][0], "float32")]


def _rule_repeat_interleave(ins, attrs):
    (x,) = ins
    axis = _axis(attrs["axis"], len(x[0]))
    repeats = attrs["repeats"]
    _need(isinstance(repeats, int) and repeats >= 1, "attribute 'repeats' must be an int >= 1")
    shape = list(x[0])
    shape[axis] *= repeats
    return [(tuple(shape), x[1])]


def _rule_reshape(ins, attrs):
    (x,) = ins
    shape = tuple(attrs["shape"])
    _need(all(isinstance(d, int) and d >= 0 for d in shape), f"attribute 'shape' {list(shape)} must be sizes")
    _need(prod(shape) == prod(x[0]), f"cannot reshape {list(x[0])} to {list(shape)}")
    return [(shape, x[1])]


def _rule_transpose(ins, attrs):
    (x,) = ins
    perm = list(attrs["perm"])
    _need(sorted(perm) == list(range(len(x[0]))), f"attribute 'perm' {perm} is not a permutation of rank {len(x[0])}")
    return [(tuple(x[0][p] for p in perm), x[1])]


def _rule_slice(ins, attrs):
    (x,) = ins
    axis = _axis(attrs["axis"], len(x[0]))
    start, stop = attrs["start"], attrs["stop"]
    _need(isinstance(start, int) and isinstance(stop, int) and 0 <= start < stop <= x[0][axis],
          f"slice [{start}, {stop}) is not a non-empty range inside axis {axis} of size {x[0][axis]}")
    shape = list(x[0])
    shape[axis] = stop - start
    return [(tuple(shape), x[1])]


def _rule_forbid_token(ins, attrs):
    (x,) = ins
    _float(x, "x")
    _need(_axis(attrs["axis"], len(x[0])) == len(x[0]) - 1, "attribute 'axis' must be the last axis")
    token = attrs["token"]
    _need(isinstance(token, int) and 0 <= token < x[0][-1], f"attribute 'token' {token!r} is outside [0, {x[0][-1]})")
    return [(x[0], "float32")]


def _rule_softmax(ins, attrs):
    _axis(attrs["axis"], len(ins[0][0]))
    return _rule_unary(ins, attrs)


def _reduced(shape: tuple[int, ...], attrs) -> tuple[int, ...]:
    axis = _axis(attrs["axis"], len(shape))
    _need(isinstance(attrs["keepdims"], bool), "attribute 'keepdims' must be a bool")
    if attrs["keepdims"]:
        return shape[:axis] + (1,) + shape[axis + 1 :]
    return shape[:axis] + shape[axis + 1 :]


def _rule_reduce(ins, attrs):
    _float(ins[0], "x")
    return [(_reduced(ins[0][0], attrs), "float32")]


def _rule_argmax(ins, attrs):
    _float(ins[0], "x")
    return [(_reduced(ins[0][0], {**attrs, "keepdims": False}), "int32")]


def _rule_mask_select(ins, attrs, rule: str):
    scores, eligible, limit = ins
    _float(scores, "scores")
    _need(len(scores[0]) == 2, f"scores must be (batch, length), got {list(scores[0])}")
    _need(eligible == (scores[0], "bool"),
          f"eligible must be bool {list(scores[0])}, got {eligible[1]} {list(eligible[0])}")
    if rule == "topk":
        _int(limit, "k")
        _need(limit[0] == scores[0][:1], f"k must be [{scores[0][0]}] (one per batch row), got {list(limit[0])}")
    else:
        _float(limit, "threshold")
        _need(limit[0] == (), f"threshold must be a scalar, got {list(limit[0])}")
    return [(scores[0], "bool")]


def _rule_select(ins, attrs):
    cond, a, b = ins
    _need(cond[1] == "bool", f"condition must be bool, got {cond[1]}")
    _need(a[1] == b[1], f"both branches need one dtype, got {a[1]} and {b[1]}")
    return [(_broadcast(_broadcast(cond[0], a[0]), b[0]), a[1])]


@dataclass(frozen=True)
class OpSpec:
    """Arity, required attributes and shape rule of one op; `doc` is its one-line meaning."""

    min_inputs: int
    max_inputs: int
    attrs: tuple[str, ...]
    rule: Callable[[list[Spec], dict], list[Spec]]
    doc: str


OPS: dict[str, OpSpec] = {
    "embedding": OpSpec(2, 2, (), _rule_embedding, "out = table[ids]"),
    "linear": OpSpec(2, 3, (), _rule_linear, "out = x @ weight.T (+ bias); weight is (out, in)"),
    "matmul": OpSpec(2, 2, (), _rule_matmul, "batched a @ b over the last two dims"),
    "add": OpSpec(2, 2, (), _rule_binary, "a + b with numpy broadcasting"),
    "sub": OpSpec(2, 2, (), _rule_binary, "a - b with numpy broadcasting"),
    "mul": OpSpec(2, 2, (), _rule_binary, "a * b with numpy broadcasting"),
    "scale": OpSpec(1, 1, ("factor",), _rule_scale, "x * factor (a constant)"),
    "exp": OpSpec(1, 1, (), _rule_unary, "exp(x)"),
    "reciprocal": OpSpec(1, 1, (), _rule_unary, "1 / x"),
    "silu": OpSpec(1, 1, (), _rule_unary, "x * sigmoid(x)"),
    "rmsnorm": OpSpec(2, 2, ("eps",), _rule_rmsnorm, "x * rsqrt(mean(x^2, -1) + eps) * weight"),
    "rope_table": OpSpec(1, 1, ("head_dim", "theta"), _rule_rope_table, "cos, sin tables of the positions"),
    "rope": OpSpec(3, 3, (), _rule_rope, "x * cos + rotate_half(x) * sin"),
    "kv_cache_write": OpSpec(3, 3, ("axis", "layer", "kind"), _rule_kv_cache_write,
                             "cache with slots `positions` along `axis` overwritten by new (in place)"),
    "kv_cache_read": OpSpec(1, 1, ("layer", "kind"), _rule_kv_cache_read,
                            "every slot of the cache, as attention sees it"),
    "repeat_interleave": OpSpec(1, 1, ("repeats", "axis"), _rule_repeat_interleave,
                                "each slice along axis repeated `repeats` times in place (GQA)"),
    "reshape": OpSpec(1, 1, ("shape",), _rule_reshape, "same elements in row-major order, new shape"),
    "transpose": OpSpec(1, 1, ("perm",), _rule_transpose, "out.shape[i] = x.shape[perm[i]]"),
    "slice": OpSpec(1, 1, ("axis", "start", "stop"), _rule_slice, "x[start:stop] along axis"),
    "forbid_token": OpSpec(1, 1, ("axis", "token"), _rule_forbid_token,
                           "x with x[..., token] = -inf: that token is never proposed ([MASK])"),
    "softmax": OpSpec(1, 1, ("axis",), _rule_softmax, "exp(x - max) / sum(exp(x - max)) along axis"),
    "reduce_max": OpSpec(1, 1, ("axis", "keepdims"), _rule_reduce, "max along axis"),
    "reduce_sum": OpSpec(1, 1, ("axis", "keepdims"), _rule_reduce, "sum along axis"),
    "argmax": OpSpec(1, 1, ("axis",), _rule_argmax, "index of the first maximum along axis (int32)"),
    "topk_mask": OpSpec(3, 3, (), lambda i, a: _rule_mask_select(i, a, "topk"),
                        "per row, the k[b] eligible positions of highest score; ties to the lowest position"),
    "threshold_mask": OpSpec(3, 3, (), lambda i, a: _rule_mask_select(i, a, "threshold"),
                             "eligible & (score >= threshold | best eligible position)"),
    "select": OpSpec(3, 3, (), _rule_select, "where(cond, a, b)"),
}


# ---------------------------------------------------------------------------------------------
# The graph
# ---------------------------------------------------------------------------------------------


@dataclass
class Graph:
    """One exported step. `outputs` names the values a run returns; `metadata` is free-form JSON."""

    name: str
    inputs: list[Value]
    weights: list[Value]
    nodes: list[Node]
    outputs: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)
    version: str = IR_VERSION

    def values(self) -> dict[str, Value]:
        """Every value of the graph by name (inputs, weights, node outputs)."""
        table = {v.name: v for v in self.inputs}
        table.update((v.name, v) for v in self.weights)
        for node in self.nodes:
            table.update((v.name, v) for v in node.outputs)
        return table

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"graph {self.name!r} has no node {name!r}")

    def validate(self) -> "Graph":
        """Raise IRError naming the first problem; return self when the graph is well formed."""
        if self.version != IR_VERSION:
            raise IRError(f"graph {self.name!r}: version {self.version!r} is not supported (expected {IR_VERSION!r})")
        defined: dict[str, Value] = {}

        def define(value: Value, where: str) -> None:
            if not isinstance(value.name, str) or not value.name:
                raise IRError(f"{where}: a value has no name")
            if value.name in defined:
                raise IRError(f"{where}: value {value.name!r} is defined twice")
            if value.dtype not in DTYPE_BYTES:
                raise IRError(f"{where}: value {value.name!r} has unknown dtype {value.dtype!r}")
            if not all(isinstance(d, int) and d >= 0 for d in value.shape):
                raise IRError(f"{where}: value {value.name!r} has a bad shape {list(value.shape)}")
            defined[value.name] = value

        for value in self.inputs:
            define(value, f"graph input {value.name!r}")
        for value in self.weights:
            define(value, f"weight {value.name!r}")
        node_names: set[str] = set()
        for node in self.nodes:
            where = f"node {node.name!r} ({node.op})"
            if node.name in node_names:
                raise IRError(f"{where}: node name is used twice")
            node_names.add(node.name)
            spec = OPS.get(node.op)
            if spec is None:
                raise IRError(f"node {node.name!r}: unknown op {node.op!r} (known: {', '.join(sorted(OPS))})")
            if not spec.min_inputs <= len(node.inputs) <= spec.max_inputs:
                raise IRError(f"{where}: takes {spec.min_inputs}..{spec.max_inputs} inputs, got {len(node.inputs)}")
            missing_attrs = [a for a in spec.attrs if a not in node.attrs]
            if missing_attrs:
                raise IRError(f"{where}: missing attribute(s) {missing_attrs}")
            for name in node.inputs:
                if name not in defined:
                    raise IRError(f"{where}: input {name!r} is not defined before this node (dangling value)")
            try:
                expected = spec.rule([(defined[n].shape, defined[n].dtype) for n in node.inputs], node.attrs)
            except (ValueError, TypeError, KeyError, IndexError) as exc:
                raise IRError(f"{where}: {exc}") from None
            if len(expected) != len(node.outputs):
                raise IRError(f"{where}: defines {len(node.outputs)} outputs, the op has {len(expected)}")
            for value, (shape, dtype) in zip(node.outputs, expected):
                if (value.shape, value.dtype) != (tuple(shape), dtype):
                    raise IRError(
                        f"{where}: output {value.name!r} is declared {value.dtype} {list(value.shape)} "
                        f"but the op gives {dtype} {list(shape)} (shape mismatch)"
                    )
            for value in node.outputs:
                define(value, where)
        for name in self.outputs:
            if name not in defined:
                raise IRError(f"graph output {name!r} is not defined by any input, weight or node")
        return self

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "name": self.name,
            "metadata": self.metadata,
            "inputs": [v.to_dict() for v in self.inputs],
            "weights": [v.to_dict() for v in self.weights],
            "nodes": [n.to_dict() for n in self.nodes],
            "outputs": list(self.outputs),
        }


def to_json(graph: Graph, indent: int | None = 1) -> str:
    """Serialise a validated graph (validation first, so no malformed file is ever written)."""
    return json.dumps(graph.validate().to_dict(), indent=indent)


def _value_from(data: Any, where: str) -> Value:
    if not isinstance(data, dict) or set(data) != {"name", "shape", "dtype"}:
        raise IRError(f"{where}: a value must be an object with exactly name, shape, dtype; got {data!r}")
    if not isinstance(data["shape"], list):
        raise IRError(f"{where}: value {data['name']!r} has shape {data['shape']!r}, expected a list")
    return Value(data["name"], tuple(data["shape"]), data["dtype"])


def graph_from_dict(data: Any, source: str = "<dict>") -> Graph:
    """Build and validate a Graph from its JSON object form; errors name `source` and the node."""
    try:
        if not isinstance(data, dict):
            raise IRError("the top level must be a JSON object")
        expected = {"version", "name", "metadata", "inputs", "weights", "nodes", "outputs"}
        if set(data) != expected:
            raise IRError(f"top-level keys must be {sorted(expected)}, got {sorted(data)}")
        if data["version"] != IR_VERSION:
            raise IRError(f"version {data['version']!r} is not supported (expected {IR_VERSION!r})")
        nodes = []
        for index, item in enumerate(data["nodes"]):
            label = item.get("name", f"#{index}") if isinstance(item, dict) else f"#{index}"
            where = f"node {label!r}"
            if not isinstance(item, dict) or set(item) != {"name", "op", "inputs", "outputs", "attrs"}:
                raise IRError(f"{where}: a node must have exactly name, op, inputs, outputs, attrs")
            if not isinstance(item["attrs"], dict):
                raise IRError(f"{where}: attrs must be an object")
            outputs = tuple(_value_from(v, where) for v in item["outputs"])
            nodes.append(Node(item["name"], item["op"], tuple(item["inputs"]), outputs, dict(item["attrs"])))
        graph = Graph(
            name=data["name"],
            inputs=[_value_from(v, "graph inputs") for v in data["inputs"]],
            weights=[_value_from(v, "graph weights") for v in data["weights"]],
            nodes=nodes,
            outputs=list(data["outputs"]),
            metadata=dict(data["metadata"]),
            version=data["version"],
        )
        return graph.validate()
    except IRError as exc:
        raise IRError(f"{source}: {exc}") from None


def from_json(text: str, source: str = "<json>") -> Graph:
    """Parse and validate a graph from JSON text."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IRError(f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    return graph_from_dict(data, source)


def save_graph(graph: Graph, path: str | Path) -> None:
    """Write the graph as JSON atomically (temp file in the same folder, then rename)."""
    atomic_write_text(path, to_json(graph) + "\n")


def load_graph(path: str | Path) -> Graph:
    """Read and validate a graph file; errors name the file and the node."""
    path = Path(path)
    if not path.is_file():
        raise IRError(f"{path}: no such graph file")
    return from_json(path.read_text(), source=str(path))


# ---------------------------------------------------------------------------------------------
# Cost of a graph: MACs and bytes per node, what later stages (roofline, compiler) start from.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeCost:
    name: str
    op: str
    macs: int  # multiply-accumulates on the matrix unit
    vector_elements: int  # elements produced by vector-unit work (0 for pure data movement)
    weight_bytes: int  # weights read
    bytes_read: int  # activations and cache read
    bytes_written: int  # activations and cache written


@dataclass(frozen=True)
class GraphStats:
    params: int
    weight_bytes: int
    macs: int
    vector_elements: int
    bytes_read: int
    bytes_written: int
    nodes: tuple[NodeCost, ...]

    def by_op(self) -> dict[str, dict[str, int]]:
        """Totals per op name: count, macs, vector_elements, weight/read/written bytes."""
        table: dict[str, dict[str, int]] = {}
        for cost in self.nodes:
            row = table.setdefault(cost.op, {"count": 0, "macs": 0, "vector_elements": 0,
                                             "weight_bytes": 0, "bytes_read": 0, "bytes_written": 0})
            row["count"] += 1
            for key in ("macs", "vector_elements", "weight_bytes", "bytes_read", "bytes_written"):
                row[key] += getattr(cost, key)
        return table


_MOVEMENT_OPS = {"reshape", "transpose", "slice", "repeat_interleave", "kv_cache_write", "kv_cache_read", "embedding"}


def graph_stats(graph: Graph) -> GraphStats:
    """MACs and memory traffic of every node, assuming each node reads its inputs once.

    kv_cache_write is in place: it reads and writes only the new slots, not the whole cache.
    reshape is free (no bytes). Weights are counted once per node that uses them.
    """
    values = graph.values()
    weight_names = {w.name for w in graph.weights}
    costs = []
    for node in graph.nodes:
        ins = [values[n] for n in node.inputs]
        out = node.outputs[0]
        macs = 0
        if node.op in ("linear", "matmul"):
            macs = sum(v.numel for v in node.outputs) * ins[0].shape[-1]
        weight_bytes = sum(v.nbytes for v in ins if v.name in weight_names)
        activations = [v for v in ins if v.name not in weight_names]
        bytes_read = sum(v.nbytes for v in activations)
        bytes_written = sum(v.nbytes for v in node.outputs)
        if node.op == "embedding":  # only the looked-up rows of the table are read
            weight_bytes = ins[0].numel * ins[1].shape[1] * DTYPE_BYTES[ins[1].dtype]
        if node.op == "kv_cache_read":  # streamed to attention, not stored again
            bytes_written = 0
        if node.op == "kv_cache_write":
            bytes_read = ins[2].nbytes + ins[1].nbytes
            bytes_written = ins[2].nbytes
        if node.op == "reshape":
            bytes_read = bytes_written = 0
        vector = 0 if node.op in _MOVEMENT_OPS or macs else sum(v.numel for v in node.outputs)
        if node.op == "forbid_token":  # one element per row is overwritten, in place
            vector = bytes_read = bytes_written = out.numel // out.shape[-1]
        costs.append(NodeCost(node.name, node.op, macs, vector, weight_bytes, bytes_read, bytes_written))
    return GraphStats(
        params=sum(w.numel for w in graph.weights),
        weight_bytes=sum(w.nbytes for w in graph.weights),
        macs=sum(c.macs for c in costs),
        vector_elements=sum(c.vector_elements for c in costs),
        bytes_read=sum(c.bytes_read for c in costs),
        bytes_written=sum(c.bytes_written for c in costs),
        nodes=tuple(costs),
    )
