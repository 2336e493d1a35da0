"""The dnpu graph IR: one denoising step exported from PyTorch, validated, and interpreted."""

from npu.ir.export import ExportError, export_step
from npu.ir.graph import (
    IR_VERSION,
    OPS,
    Graph,
    GraphStats,
    IRError,
    Node,
    NodeCost,
    Value,
    from_json,
    graph_from_dict,
    graph_stats,
    load_graph,
    save_graph,
    to_json,
)
from npu.ir.interpret import random_weights, run_graph, weights_from_model

__all__ = [
    "IR_VERSION", "OPS", "ExportError", "Graph", "GraphStats", "IRError", "Node", "NodeCost", "Value",
    "export_step", "from_json", "graph_from_dict", "graph_stats", "load_graph", "run_graph", "save_graph",
    "random_weights", "to_json", "weights_from_model",
]
