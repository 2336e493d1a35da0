"""Loading LLaDA / Dream checkpoints from a local directory, and writing LLaDA ones."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from npu.models.loading import (
    CheckpointError,
    load_pretrained,
    model_config_from_hf,
    save_in_llada_layout,
)
from npu.models.transformer import ModelConfig, build_model

REPO_ROOT = Path(__file__).resolve().parents[1]

TINY = ModelConfig(
    name="tiny", vocab_size=40, mask_token_id=39, n_layers=2, d_model=32, n_heads=4,
    n_kv_heads=2, head_dim=8, d_ff=48, max_seq_len=64, norm_eps=1e-5, rope_theta=10000.0,
)

# Public config.json of GSAI-ML/LLaDA-8B-Instruct (the keys that define shapes and maths).
LLADA_8B_CONFIG = {
    "architectures": ["LLaDAModelLM"], "model_type": "llada", "activation_type": "silu",
    "block_type": "llama", "layer_norm_type": "rms", "rope": True, "alibi": False,
    "d_model": 4096, "n_heads": 32, "n_kv_heads": 32, "n_layers": 32, "mlp_hidden_size": 12288,
    "mlp_ratio": 4, "vocab_size": 126464, "embedding_size": 126464, "mask_token_id": 126336,
    "max_sequence_length": 4096, "rope_theta": 500000.0, "rms_norm_eps": 1e-05,
    "include_bias": False, "include_qkv_bias": False, "weight_tying": False,
}
# Public config.json of Dream-org/Dream-v0-Instruct-7B (Qwen2.5-7B shapes).
DREAM_7B_CONFIG = {
    "architectures": ["DreamModel"], "model_type": "Dream", "hidden_act": "silu",
    "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
    "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064,
    "mask_token_id": 151666, "max_position_embeddings": 131072, "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0, "rope_scaling": None, "tie_word_embeddings": False,
}


def tiny_model(config: ModelConfig = TINY, seed: int = 0):
    model = build_model(config).init_weights(seed)
    # Non-unit norms and non-zero biases, so a swapped norm or dropped bias changes the logits.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight") or name.endswith("bias"):
                param.copy_(torch.rand(param.shape, generator=torch.Generator().manual_seed(len(name))) + 0.5)
    return model.eval()


def tokens() -> torch.Tensor:
    return torch.randint(0, TINY.vocab_size, (2, 11), generator=torch.Generator().manual_seed(7))


def write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value))


def assert_same_logits(original, loaded) -> None:
    with torch.no_grad():
        assert torch.equal(original(tokens()), loaded(tokens()))


# --------------------------------------------------------------------------- config.json


def test_public_llada_8b_config_matches_our_preset(tmp_path):
    write_json(tmp_path / "config.json", LLADA_8B_CONFIG)
    preset = yaml.safe_load((REPO_ROOT / "config/models/llada-8b.yaml").read_text())["architecture"]
    assert model_config_from_hf(tmp_path).to_dict() == {"name": tmp_path.name, **preset}


def test_public_dream_7b_config_matches_our_preset_except_context_length(tmp_path):
    write_json(tmp_path / "config.json", DREAM_7B_CONFIG)
    preset = yaml.safe_load((REPO_ROOT / "config/models/dream-7b.yaml").read_text())["architecture"]
    config = model_config_from_hf(tmp_path)
    assert config.max_seq_len == 131072
    assert replace(config, max_seq_len=preset["max_seq_len"]).to_dict() == {"name": tmp_path.name, **preset}


def test_config_with_unsupported_option_is_refused_by_key(tmp_path):
    write_json(tmp_path / "config.json", {**LLADA_8B_CONFIG, "activation_type": "gelu"})
    with pytest.raises(CheckpointError, match=r"config\.json.*activation_type='gelu'"):
        model_config_from_hf(tmp_path)


def test_config_missing_a_required_key_names_it(tmp_path):
    broken = {k: v for k, v in DREAM_7B_CONFIG.items() if k != "mask_token_id"}
    write_json(tmp_path / "config.json", broken)
    with pytest.raises(CheckpointError, match=r"config\.json.*'mask_token_id'"):
        model_config_from_hf(tmp_path)


def test_unknown_model_family_is_refused(tmp_path):
    write_json(tmp_path / "config.json", {"model_type": "gpt2"})
    with pytest.raises(CheckpointError, match="neither LLaDA"):
        model_config_from_hf(tmp_path)


def test_missing_directory_and_missing_config_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_pretrained(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_pretrained(tmp_path)


# --------------------------------------------------------------------------- round trips


def test_unsharded_llada_checkpoint_reproduces_logits_exactly(tmp_path):
    model = tiny_model()
    save_in_llada_layout(model, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_pretrained(tmp_path)
    assert loaded.config == replace(TINY, name=tmp_path.name)
    assert not loaded.training
    assert_same_logits(model, loaded)


def test_sharded_llada_checkpoint_reproduces_logits_exactly(tmp_path):
    model = tiny_model(replace(TINY, qkv_bias=True))
    save_in_llada_layout(model, tmp_path, shard_size_bytes=30_000)
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) == 3 and shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    assert index["metadata"]["total_size"] == sum(p.numel() * 4 for p in model.parameters())
    assert_same_logits(model, load_pretrained(tmp_path))


def test_saving_again_unsharded_removes_stale_shards(tmp_path):
    model = tiny_model()
    save_in_llada_layout(model, tmp_path, shard_size_bytes=30_000)
    save_in_llada_layout(model, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]


def test_llada_layout_uses_llada_tensor_names(tmp_path):
    save_in_llada_layout(tiny_model(), tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), framework="pt") as handle:
        names = set(handle.keys())
    block = "model.transformer.blocks.1"
    assert {
        "model.transformer.wte.weight", "model.transformer.ln_f.weight",
        "model.transformer.ff_out.weight", f"{block}.attn_norm.weight", f"{block}.ff_norm.weight",
        f"{block}.q_proj.weight", f"{block}.k_proj.weight", f"{block}.v_proj.weight",
        f"{block}.attn_out.weight", f"{block}.ff_proj.weight", f"{block}.up_proj.weight",
        f"{block}.ff_out.weight",
    } <= names
    assert len(names) == 3 + 2 * 9


def test_llada_ff_proj_is_the_silu_gate(tmp_path):
    """LLaDALlamaBlock computes ff_out(silu(ff_proj(x)) * up_proj(x))."""
    save_in_llada_layout(tiny_model(), tmp_path)
    raw = load_file(str(tmp_path / "model.safetensors"))
    block = "model.transformer.blocks.0"
    x = torch.randn(3, TINY.d_model, generator=torch.Generator().manual_seed(1))
    by_llada = F.linear(
        F.silu(F.linear(x, raw[f"{block}.ff_proj.weight"])) * F.linear(x, raw[f"{block}.up_proj.weight"]),
        raw[f"{block}.ff_out.weight"],
    )
    with torch.no_grad():
        ours = load_pretrained(tmp_path).blocks[0].mlp(x)
    assert torch.allclose(ours, by_llada, atol=1e-6)


def dream_tensors(model) -> dict[str, torch.Tensor]:
    """Our weights under Dream's (Qwen2) names, spelled out independently of loading.py."""
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    out = {
        "model.embed_tokens.weight": state.pop("embed.weight"),
        "model.norm.weight": state.pop("final_norm.weight"),
        "lm_head.weight": state.pop("lm_head.weight"),
    }
    renames = {
        "attn_norm.weight": "input_layernorm.weight", "mlp_norm.weight": "post_attention_layernorm.weight",
        "attn.q_proj.weight": "self_attn.q_proj.weight", "attn.q_proj.bias": "self_attn.q_proj.bias",
        "attn.k_proj.weight": "self_attn.k_proj.weight", "attn.k_proj.bias": "self_attn.k_proj.bias",
        "attn.v_proj.weight": "self_attn.v_proj.weight", "attn.v_proj.bias": "self_attn.v_proj.bias",
        "attn.o_proj.weight": "self_attn.o_proj.weight", "mlp.gate_proj.weight": "mlp.gate_proj.weight",
        "mlp.up_proj.weight": "mlp.up_proj.weight", "mlp.down_proj.weight": "mlp.down_proj.weight",
    }
    for name, tensor in state.items():
        _, layer, rest = name.split(".", 2)
        out[f"model.layers.{layer}.{renames[rest]}"] = tensor
    return out


def dream_config_json(config: ModelConfig) -> dict:
    return {
        "architectures": ["DreamModel"], "model_type": "Dream", "hidden_act": "silu",
        "hidden_size": config.d_model, "intermediate_size": config.d_ff,
        "num_hidden_layers": config.n_layers, "num_attention_heads": config.n_heads,
        "num_key_value_heads": config.n_kv_heads, "vocab_size": config.vocab_size,
        "mask_token_id": config.mask_token_id, "max_position_embeddings": config.max_seq_len,
        "rms_norm_eps": config.norm_eps, "rope_theta": config.rope_theta, "rope_scaling": None,
        "tie_word_embeddings": False,
    }


def test_dream_checkpoint_reproduces_logits_exactly(tmp_path):
    model = tiny_model(replace(TINY, qkv_bias=True))
    write_json(tmp_path / "config.json", dream_config_json(model.config))
    save_file(dream_tensors(model), str(tmp_path / "model.safetensors"))
    assert_same_logits(model, load_pretrained(tmp_path))


def test_bfloat16_checkpoint_loads_in_the_requested_dtype(tmp_path):
    model = tiny_model(replace(TINY, qkv_bias=True)).to(torch.bfloat16)
    write_json(tmp_path / "config.json", dream_config_json(model.config))
    save_file(dream_tensors(model), str(tmp_path / "model.safetensors"))
    as_bf16 = load_pretrained(tmp_path, dtype=torch.bfloat16)
    assert {p.dtype for p in as_bf16.parameters()} == {torch.bfloat16}
    assert torch.equal(as_bf16.blocks[1].attn.k_proj.bias, model.blocks[1].attn.k_proj.bias)
    upcast = load_pretrained(tmp_path)  # default float32: an exact upcast of the bf16 weights
    assert_same_logits(model.float(), upcast)


def test_dream_gate_proj_is_the_silu_gate(tmp_path):
    """Dream's MLP (Qwen2) computes down_proj(silu(gate_proj(x)) * up_proj(x))."""
    model = tiny_model(replace(TINY, qkv_bias=True))
    write_json(tmp_path / "config.json", dream_config_json(model.config))
    raw = dream_tensors(model)
    save_file(raw, str(tmp_path / "model.safetensors"))
    layer = "model.layers.1.mlp"
    x = torch.randn(3, TINY.d_model, generator=torch.Generator().manual_seed(2))
    by_dream = F.linear(
        F.silu(F.linear(x, raw[f"{layer}.gate_proj.weight"])) * F.linear(x, raw[f"{layer}.up_proj.weight"]),
        raw[f"{layer}.down_proj.weight"],
    )
    with torch.no_grad():
        ours = load_pretrained(tmp_path).blocks[1].mlp(x)
    assert torch.allclose(ours, by_dream, atol=1e-6)


# --------------------------------------------------------------------------- broken checkpoints


@pytest.fixture
def llada_single(tmp_path) -> Path:
    save_in_llada_layout(tiny_model(), tmp_path)
    return tmp_path


@pytest.fixture
def llada_sharded(tmp_path) -> Path:
    save_in_llada_layout(tiny_model(), tmp_path, shard_size_bytes=30_000)
    return tmp_path


def rewrite_weights(directory: Path, edit) -> None:
    tensors = load_file(str(directory / "model.safetensors"))
    edit(tensors)
    save_file(tensors, str(directory / "model.safetensors"))


def test_missing_tensor_is_named_with_its_file(llada_single):
    rewrite_weights(llada_single, lambda t: t.pop("model.transformer.blocks.1.up_proj.weight"))
    expected = r"model\.safetensors: missing tensor 'model\.transformer\.blocks\.1\.up_proj\.weight'"
    with pytest.raises(CheckpointError, match=expected):
        load_pretrained(llada_single)


def test_unexpected_tensor_is_named_with_its_file(llada_single):
    extra = "model.transformer.blocks.2.q_proj.weight"  # the model has only blocks 0 and 1
    rewrite_weights(llada_single, lambda t: t.update({extra: torch.zeros(1)}))
    with pytest.raises(CheckpointError, match=rf"model\.safetensors: unexpected tensor '{extra}'"):
        load_pretrained(llada_single)


def test_shape_mismatch_is_named_with_both_shapes(llada_single):
    rewrite_weights(llada_single, lambda t: t.update({"model.transformer.ln_f.weight": torch.ones(31)}))
    expected = r"model\.safetensors: tensor 'model\.transformer\.ln_f\.weight' has shape \(31,\).*\(32,\)"
    with pytest.raises(CheckpointError, match=expected):
        load_pretrained(llada_single)


def test_truncated_safetensors_file_is_named(llada_single):
    path = llada_single / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=r"model\.safetensors: not a readable safetensors file"):
        load_pretrained(llada_single)


def test_corrupt_shard_is_named(llada_sharded):
    assert (llada_sharded / "model-00003-of-00003.safetensors").is_file()
    (llada_sharded / "model-00002-of-00003.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match=r"model-00002-of-00003\.safetensors: not a readable"):
        load_pretrained(llada_sharded)


def test_index_pointing_at_missing_shard_names_index_and_shard(llada_sharded):
    (llada_sharded / "model-00003-of-00003.safetensors").unlink()
    expected = r"model\.safetensors\.index\.json puts tensor .* in shard 'model-00003-of-00003\.safetensors'"
    with pytest.raises(FileNotFoundError, match=expected):
        load_pretrained(llada_sharded)


def test_index_listing_a_tensor_its_shard_lacks_is_named(llada_sharded):
    index_path = llada_sharded / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    index["weight_map"]["model.transformer.wte.weight"] = "model-00003-of-00003.safetensors"
    write_json(index_path, index)
    expected = r"'model\.transformer\.wte\.weight' in model-00003-of-00003\.safetensors"
    with pytest.raises(CheckpointError, match=expected):
        load_pretrained(llada_sharded)


def test_directory_without_weights_is_named(llada_single):
    (llada_single / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="neither model.safetensors.index.json nor model.safetensors"):
        load_pretrained(llada_single)


def test_tied_lm_head_reuses_the_embedding(llada_single):
    config_path = llada_single / "config.json"
    write_json(config_path, {**json.loads(config_path.read_text()), "weight_tying": True})
    rewrite_weights(llada_single, lambda t: t.pop("model.transformer.ff_out.weight"))
    loaded = load_pretrained(llada_single)
    assert torch.equal(loaded.lm_head.weight, loaded.embed.weight)


def test_llada_layout_refuses_heads_that_do_not_tile_d_model(tmp_path):
    model = build_model(replace(TINY, head_dim=4), device="meta")
    with pytest.raises(ValueError, match=r"head_dim \* n_heads == d_model"):
        save_in_llada_layout(model, tmp_path)


def test_loaded_model_holds_real_tensors_not_meta_placeholders(llada_single):
    loaded = load_pretrained(llada_single)
    assert {p.device.type for p in loaded.parameters()} == {"cpu"}
