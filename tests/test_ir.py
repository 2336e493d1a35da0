"""The graph IR: export of one denoising step, its numpy interpreter, JSON form and validation."""

import json

import numpy as np
import pytest
import torch

from npu.ir import (
    IR_VERSION,
    ExportError,
    Graph,
    IRError,
    Node,
    Value,
    export_step,
    from_json,
    graph_from_dict,
    graph_stats,
    load_graph,
    run_graph,
    save_graph,
    to_json,
    weights_from_model,
)
from npu.ir.verify import graph_inputs, reference_step, relative_error, step_state
from npu.models.decoding import commit_mask
from npu.models.presets import load_model_spec
from npu.models.transformer import KVCache, ModelConfig, build_model

SEQ_LEN = 16
BLOCK = (8, 12)  # the current block: positions [8, 12)
MASK_ID = 39


def tiny_model(n_kv_heads: int = 4, qkv_bias: bool = False, seed: int = 0):
    config = ModelConfig(
        name="tiny-ir", vocab_size=40, mask_token_id=MASK_ID, n_layers=2, d_model=32, n_heads=4,
        n_kv_heads=n_kv_heads, head_dim=8, d_ff=48, max_seq_len=32, qkv_bias=qkv_bias,
    )
    model = build_model(config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # larger than init_weights' 0.02 so logits are peaked and biases nonzero
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    return model.eval()


def step_case(model, cache_mode: str, batch: int = 1, seed: int = 1):
    """A mid-generation step: tokens with the block partly masked, the cache from a full pass."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, MASK_ID, (batch, SEQ_LEN), generator=generator)
    tokens[:, BLOCK[0]:] = MASK_ID
    tokens[0, BLOCK[0] + 1] = 5  # one block position already decoded
    state = step_state(model, tokens, BLOCK, cache_mode)
    eligible = tokens[:, BLOCK[0]:BLOCK[1]] == MASK_ID
    return state, eligible, torch.tensor([2] * batch)


@pytest.mark.parametrize("cache_mode", ["none", "prefix", "dual"])
@pytest.mark.parametrize("n_kv_heads, qkv_bias", [(4, False), (2, True)], ids=["mha", "gqa-bias"])
def test_interpreter_reproduces_pytorch_step_in_every_cache_mode(cache_mode, n_kv_heads, qkv_bias):
    model = tiny_model(n_kv_heads, qkv_bias)
    state, eligible, k = step_case(model, cache_mode, batch=2)
    graph = export_step(model, cache_mode=cache_mode, query_length=state.query[1] - state.query[0],
                        kv_length=SEQ_LEN, batch=2, sample_range=state.sample)
    expected = reference_step(model, state, k=k)
    out = run_graph(graph, weights_from_model(model), graph_inputs(graph, state, MASK_ID, k=k))

    assert out["logits"].shape == tuple(expected["logits"].shape)
    assert relative_error(out["logits"], expected["logits"]) <= 1e-5
    np.testing.assert_allclose(out["confidence"], expected["confidence"].numpy(), rtol=1e-5)
    np.testing.assert_array_equal(out["x0"], expected["x0"].numpy())
    np.testing.assert_array_equal(out["committed"], expected["committed"].numpy())
    np.testing.assert_array_equal(out["tokens_out"], expected["tokens_out"].numpy())
    assert out["committed"].sum() == 4  # k = 2 per row
    if cache_mode != "none":
        for layer in range(model.config.n_layers):
            assert relative_error(out[f"cache_k.{layer}.out"], expected["cache"].k[layer]) <= 1e-5
            assert relative_error(out[f"cache_v.{layer}.out"], expected["cache"].v[layer]) <= 1e-5


@pytest.mark.parametrize("passing", ["all", "some", "none"])
def test_threshold_rule_commits_like_commit_mask(passing):
    model = tiny_model(2, True, seed=3)
    state, eligible, _ = step_case(model, "dual", batch=2, seed=4)
    graph = export_step(model, cache_mode="dual", query_length=4, kv_length=SEQ_LEN, batch=2, sampling="threshold")
    confidence = reference_step(model, state, k=torch.tensor([0, 0]))["confidence"]
    ranked = confidence[eligible].sort().values
    middle = len(ranked) // 2  # halfway between two confidences, far from rounding ties
    threshold = {"all": 0.0, "some": float(ranked[middle - 1] + ranked[middle]) / 2, "none": 1.0}[passing]
    expected = reference_step(model, state, threshold=threshold)
    out = run_graph(graph, weights_from_model(model), graph_inputs(graph, state, MASK_ID, threshold=threshold))
    np.testing.assert_array_equal(out["committed"], expected["committed"].numpy())
    np.testing.assert_array_equal(out["tokens_out"], expected["tokens_out"].numpy())
    assert 1 <= out["committed"].sum() <= eligible.sum()


def sampling_only_graph(length: int, batch: int) -> Graph:
    return Graph(
        name="topk-only",
        inputs=[Value("confidence", (batch, length), "float32"), Value("eligible", (batch, length), "bool"),
                Value("k", (batch,), "int32")],
        weights=[],
        nodes=[Node("committed", "topk_mask", ("confidence", "eligible", "k"),
                    (Value("committed", (batch, length), "bool"),))],
        outputs=["committed"],
    ).validate()


def test_topk_mask_breaks_ties_to_the_lowest_position_like_commit_mask():
    generator = torch.Generator().manual_seed(0)
    graph = sampling_only_graph(length=24, batch=3)
    for trial in range(20):
        confidence = torch.randint(0, 3, (3, 24), generator=generator).float() / 2  # many ties
        eligible = torch.rand((3, 24), generator=generator) < 0.7
        k = torch.minimum(torch.tensor([1, 5, 9]), eligible.sum(dim=1))
        out = run_graph(graph, {}, {"confidence": confidence, "eligible": eligible, "k": k})
        np.testing.assert_array_equal(out["committed"], commit_mask(confidence, eligible, k=k).numpy())


def test_json_round_trip_preserves_the_graph(tmp_path):
    graph = export_step(tiny_model(2, True), cache_mode="dual", query_length=4, kv_length=SEQ_LEN)
    assert from_json(to_json(graph)) == graph
    path = tmp_path / "step.json"
    save_graph(graph, path)
    assert load_graph(path) == graph
    assert json.loads(path.read_text())["version"] == IR_VERSION


def malformed(edit) -> dict:
    data = export_step(tiny_model(), cache_mode="dual", query_length=4, kv_length=SEQ_LEN).to_dict()
    edit(data)
    return data


def node_named(data: dict, name: str) -> dict:
    return next(n for n in data["nodes"] if n["name"] == name)


def test_wrong_version_is_rejected():
    data = malformed(lambda d: d.update(version="dnpu-ir/0"))
    with pytest.raises(IRError, match="version 'dnpu-ir/0' is not supported"):
        graph_from_dict(data)


def test_unknown_op_is_rejected_naming_the_node():
    data = malformed(lambda d: node_named(d, "blocks.0.mlp.silu").update(op="gelu"))
    with pytest.raises(IRError, match="node 'blocks.0.mlp.silu': unknown op 'gelu'"):
        graph_from_dict(data)


def test_dangling_value_is_rejected_naming_the_node():
    def detach(d):
        node_named(d, "blocks.1.attn.o_proj")["inputs"][0] = "nowhere"
    data = malformed(detach)
    with pytest.raises(IRError, match=r"node 'blocks.1.attn.o_proj' \(linear\): input 'nowhere' is not defined"):
        graph_from_dict(data)


def test_use_before_definition_is_rejected():
    def swap(d):
        d["nodes"][3], d["nodes"][4] = d["nodes"][4], d["nodes"][3]
    data = malformed(swap)
    with pytest.raises(IRError, match="is not defined before this node"):
        graph_from_dict(data)


def test_shape_mismatch_is_rejected_naming_the_node():
    data = malformed(lambda d: node_named(d, "lm_head")["outputs"][0].update(shape=[1, 4, 41]))
    with pytest.raises(IRError, match=r"node 'lm_head' \(linear\): output 'logits' is declared float32 \[1, 4, 41\]"):
        graph_from_dict(data)


def test_inconsistent_weight_shape_is_rejected_naming_the_consumer():
    def shrink(d):
        next(w for w in d["weights"] if w["name"] == "blocks.0.attn.k_proj.weight")["shape"] = [32, 31]
    with pytest.raises(IRError, match=r"node 'blocks.0.attn.k_proj' \(linear\)"):
        graph_from_dict(malformed(shrink))


def test_bad_json_names_the_source_and_line():
    with pytest.raises(IRError, match=r"step.json: not valid JSON \(line 2"):
        from_json('{"version":\n oops}', source="step.json")


def test_interpreter_rejects_a_wrong_input_shape_by_name():
    model = tiny_model()
    state, _, k = step_case(model, "dual")
    graph = export_step(model, cache_mode="dual", query_length=4, kv_length=SEQ_LEN)
    inputs = graph_inputs(graph, state, MASK_ID, k=k)
    inputs["cache_v.1"] = inputs["cache_v.1"][:, :, :8]
    with pytest.raises(IRError, match=r"input 'cache_v.1': shape \[1, 4, 8, 8\]"):
        run_graph(graph, weights_from_model(model), inputs)


@pytest.mark.parametrize("kwargs, message", [
    ({"cache_mode": "paged", "query_length": 4, "kv_length": 16}, "cache_mode='paged'"),
    ({"cache_mode": "dual", "query_length": 8, "kv_length": 4}, "kv_length=4"),
    ({"cache_mode": "dual", "query_length": 4}, "needs kv_length"),
    ({"cache_mode": "none", "query_length": 40}, "exceeds max_seq_len=32"),
    ({"cache_mode": "none", "query_length": 4, "sample_range": (2, 9)}, "sample_range"),
])
def test_export_rejects_impossible_steps(kwargs, message):
    with pytest.raises(ExportError, match=message):
        export_step(tiny_model().config, **kwargs)


def expected_macs(config: ModelConfig, batch: int, query: int, kv: int) -> int:
    """Linear layers over the query tokens plus QK^T and PV over all kv slots."""
    c = config
    per_layer = c.d_model * (2 * c.n_heads + 2 * c.n_kv_heads) * c.head_dim + 3 * c.d_model * c.d_ff
    linear = batch * query * (c.n_layers * per_layer + c.d_model * c.vocab_size)
    attention = batch * c.n_layers * 2 * c.n_heads * query * kv * c.head_dim
    return linear + attention


def test_llada_8b_exports_shape_only_with_the_right_shapes_and_cost():
    config = load_model_spec("llada-8b").architecture
    graph = export_step(config, cache_mode="dual", query_length=32, kv_length=1024)
    values = graph.values()
    assert values["logits"].shape == (1, 32, 126464)
    assert values["cache_k.31"].shape == values["cache_v.31.out"].shape == (1, 32, 1024, 128)
    assert values["x0"].shape == values["committed"].shape == (1, 32)
    stats = graph_stats(graph)
    assert stats.params == build_model(config, "meta").num_parameters()
    assert stats.macs == expected_macs(config, 1, 32, 1024)
    assert stats.by_op()["kv_cache_write"]["count"] == 64


def test_dream_7b_exports_gqa_with_qkv_bias():
    model = build_model(load_model_spec("dream-7b").architecture, "meta")
    graph = export_step(model, cache_mode="prefix", query_length=64, kv_length=512, sample_range=(0, 32))
    values = graph.values()
    assert values["logits"].shape == (1, 64, 152064)
    assert values["cache_k.0"].shape == (1, 4, 512, 128)
    assert values["blocks.27.attn.k_proj.bias"].shape == (512,)
    assert values["x0"].shape == (1, 32)
    repeats = {n.attrs["repeats"] for n in graph.nodes if n.op == "repeat_interleave"}
    assert repeats == {7}
    stats = graph_stats(graph)
    assert stats.params == model.num_parameters()
    assert stats.macs == expected_macs(model.config, 1, 64, 512)
