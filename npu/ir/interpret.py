"""Reference interpreter of the dnpu graph IR in plain numpy (float32).

It is the executable meaning of every op in npu/ir/graph.py and the oracle the compiler and the
simulators are checked against. It runs nodes in list order, one numpy kernel per op, and never
mutates the caller's arrays (kv_cache_write returns an updated copy; on the NPU it is in place).
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import torch

from npu.ir.graph import FLOAT_DTYPES, INT_DTYPES, Graph, IRError, Node

_NUMPY_DTYPE = {"float32": np.float32, "bfloat16": np.float32, "float16": np.float32,
                "int32": np.int32, "int64": np.int64, "bool": np.bool_}


def _rotate_half(x: np.ndarray) -> np.ndarray:
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def _rope_table(positions: np.ndarray, head_dim: int, theta: float) -> list[np.ndarray]:
    """Same recipe as transformer.rope_cos_sin: angles in float64, tables rounded to float32."""
    inv_freq = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    angles = positions.astype(np.float64)[:, None] * inv_freq[None, :]
    angles = np.concatenate([angles, angles], axis=-1)
    return [np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)]


def _kv_cache_write(cache: np.ndarray, positions: np.ndarray, new: np.ndarray, axis: int) -> np.ndarray:
    if positions.size and (positions.min() < 0 or positions.max() >= cache.shape[axis]):
        raise ValueError(f"positions {positions.tolist()} fall outside the {cache.shape[axis]} cache slots")
    if len(np.unique(positions)) != len(positions):
        raise ValueError(f"positions {positions.tolist()} name a slot twice")
    out = cache.copy()
    index = (slice(None),) * axis + (positions,)
    out[index] = new
    return out


def _forbid_token(x: np.ndarray, token: int) -> np.ndarray:
    out = x.copy()
    out[..., token] = -np.inf
    return out


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def _silu(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-x) = inf for very negative x gives the right limit 0
        return x * (np.float32(1.0) / (np.float32(1.0) + np.exp(-x)))


def _ranked_eligible(scores: np.ndarray, eligible: np.ndarray, row: int) -> np.ndarray:
    """Eligible positions of one row, best first; equal scores go to the lowest position."""
    candidates = np.flatnonzero(eligible[row])
    if np.isnan(scores[row, candidates]).any():
        raise ValueError(f"row {row}: a score is NaN at an eligible position")
    return candidates[np.argsort(-scores[row, candidates], kind="stable")]


def _topk_mask(scores: np.ndarray, eligible: np.ndarray, k: np.ndarray) -> np.ndarray:
    out = np.zeros(scores.shape, dtype=bool)
    for row in range(scores.shape[0]):
        order = _ranked_eligible(scores, eligible, row)
        if not 0 <= k[row] <= len(order):
            raise ValueError(f"row {row}: k={int(k[row])} must lie between 0 and the eligible count {len(order)}")
        out[row, order[: k[row]]] = True
    return out


def _threshold_mask(scores: np.ndarray, eligible: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    out = eligible & (scores >= threshold.astype(np.float32))
    for row in range(scores.shape[0]):
        order = _ranked_eligible(scores, eligible, row)
        if len(order):
            out[row, order[0]] = True  # always commit the best eligible position
    return out


Kernel = Callable[[list[np.ndarray], dict], list[np.ndarray]]

KERNELS: dict[str, Kernel] = {
    "embedding": lambda x, a: [x[1][x[0]]],
    "linear": lambda x, a: [np.matmul(x[0], x[1].T) + (x[2] if len(x) == 3 else np.float32(0))],
    "matmul": lambda x, a: [np.matmul(x[0], x[1])],
    "add": lambda x, a: [x[0] + x[1]],
    "sub": lambda x, a: [x[0] - x[1]],
    "mul": lambda x, a: [x[0] * x[1]],
    "scale": lambda x, a: [x[0] * np.float32(a["factor"])],
    "exp": lambda x, a: [np.exp(x[0])],
    "reciprocal": lambda x, a: [np.float32(1.0) / x[0]],
    "silu": lambda x, a: [_silu(x[0])],
    "rmsnorm": lambda x, a: [
        x[0] * (np.float32(1.0) / np.sqrt((x[0] * x[0]).mean(axis=-1, keepdims=True) + np.float32(a["eps"]))) * x[1]
    ],
    "rope_table": lambda x, a: _rope_table(x[0], a["head_dim"], a["theta"]),
    "rope": lambda x, a: [x[0] * x[1] + _rotate_half(x[0]) * x[2]],
    "kv_cache_write": lambda x, a: [_kv_cache_write(x[0], x[1], x[2], a["axis"])],
    "kv_cache_read": lambda x, a: [x[0]],
    "repeat_interleave": lambda x, a: [np.repeat(x[0], a["repeats"], axis=a["axis"])],
    "reshape": lambda x, a: [x[0].reshape(a["shape"])],
    "transpose": lambda x, a: [np.ascontiguousarray(np.transpose(x[0], a["perm"]))],
    "slice": lambda x, a: [np.take(x[0], np.arange(a["start"], a["stop"]), axis=a["axis"])],
    "forbid_token": lambda x, a: [_forbid_token(x[0], a["token"])],
    "softmax": lambda x, a: [_softmax(x[0], a["axis"])],
    "reduce_max": lambda x, a: [x[0].max(axis=a["axis"], keepdims=a["keepdims"])],
    "reduce_sum": lambda x, a: [x[0].sum(axis=a["axis"], keepdims=a["keepdims"])],
    "argmax": lambda x, a: [x[0].argmax(axis=a["axis"]).astype(np.int32)],
    "topk_mask": lambda x, a: [_topk_mask(x[0], x[1], x[2])],
    "threshold_mask": lambda x, a: [_threshold_mask(x[0], x[1], x[2])],
    "select": lambda x, a: [np.where(x[0], x[1], x[2])],
}


def _as_array(value, spec, what: str) -> np.ndarray:
    """Check shape and dtype kind of one input/weight and convert it to the kernel dtype."""
    if isinstance(value, torch.Tensor):
        value = value.detach().to("cpu")
        value = (value.float() if value.is_floating_point() else value).numpy()
    array = np.asarray(value)
    if tuple(array.shape) != spec.shape:
        raise IRError(f"{what} {spec.name!r}: shape {list(array.shape)} but the graph declares {list(spec.shape)}")
    kind_ok = {
        "f": spec.dtype in FLOAT_DTYPES,
        "i": spec.dtype in INT_DTYPES,
        "u": spec.dtype in INT_DTYPES,
        "b": spec.dtype == "bool",
    }.get(array.dtype.kind, False)
    if not kind_ok:
        raise IRError(f"{what} {spec.name!r}: dtype {array.dtype} does not fit the declared {spec.dtype}")
    if spec.dtype == "int32" and array.size and (array.min() < -2**31 or array.max() >= 2**31):
        raise IRError(f"{what} {spec.name!r}: values do not fit int32")
    return array.astype(_NUMPY_DTYPE[spec.dtype], copy=False)


def run_graph(
    graph: Graph, weights: Mapping[str, np.ndarray], inputs: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Run the graph on numpy (or torch) arrays; return {output name: array}.

    `weights` maps state_dict names to arrays (extra entries are ignored); `inputs` must hold
    exactly the graph's inputs. Float work is float32 throughout.
    """
    unknown = sorted(set(inputs) - {v.name for v in graph.inputs})
    if unknown:
        raise IRError(f"graph {graph.name!r}: unknown input(s) {unknown}")
    env: dict[str, np.ndarray] = {}
    for spec in graph.inputs:
        if spec.name not in inputs:
            raise IRError(f"graph {graph.name!r}: input {spec.name!r} is missing")
        env[spec.name] = _as_array(inputs[spec.name], spec, "input")
    for spec in graph.weights:
        if spec.name not in weights:
            raise IRError(f"graph {graph.name!r}: weight {spec.name!r} is missing")
        env[spec.name] = _as_array(weights[spec.name], spec, "weight")
    for node in graph.nodes:
        _run_node(node, env)
    return {name: env[name] for name in graph.outputs}


def _run_node(node: Node, env: dict[str, np.ndarray]) -> None:
    kernel = KERNELS.get(node.op)
    if kernel is None:
        raise IRError(f"node {node.name!r}: op {node.op!r} has no interpreter kernel")
    try:
        results = kernel([env[name] for name in node.inputs], node.attrs)
    except ValueError as exc:
        raise IRError(f"node {node.name!r} ({node.op}): {exc}") from None
    for value, result in zip(node.outputs, results):
        result = np.asarray(result).astype(_NUMPY_DTYPE[value.dtype], copy=False)
        if result.shape != value.shape:
            raise IRError(f"node {node.name!r} ({node.op}): kernel gave shape {list(result.shape)}, "
                          f"declared {list(value.shape)}")
        env[value.name] = result


def weights_from_model(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """The model's parameters as float32 numpy arrays keyed by state_dict name."""
    return {name: p.detach().to("cpu", torch.float32).numpy() for name, p in model.named_parameters()}


def random_weights(config, seed: int = 0) -> dict[str, np.ndarray]:
    """A randomly initialised model's weights whose norm weights and biases are perturbed away
    from their initial ones and zeros, so that a compiled program which drops one is caught."""
    from npu.models.transformer import build_model

    model = build_model(config).init_weights(seed)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or name.endswith("norm.weight"):
                p.add_(0.1 * torch.randn(p.shape, generator=generator))
    return weights_from_model(model)
