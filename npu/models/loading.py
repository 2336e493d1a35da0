"""Load LLaDA / Dream checkpoints from a local Hugging Face directory, and write LLaDA ones.

A checkpoint directory holds `config.json` plus either one `model.safetensors` or shards
`model-0000X-of-0000Y.safetensors` listed by `model.safetensors.index.json`. Nothing is ever
downloaded: the user points us at a directory they already have.

Two public naming schemes map onto our MaskedDiffusionTransformer:

* LLaDA (GSAI-ML `modeling_llada.py`, LLaDALlamaBlock): `model.transformer.wte`, per block
  `q_proj/k_proj/v_proj`, `attn_out`, `attn_norm`, `ff_norm`, `ff_proj`, `up_proj`, `ff_out`,
  then `model.transformer.ln_f` and `model.transformer.ff_out` (the LM head). Its MLP computes
  `ff_out(silu(ff_proj(x)) * up_proj(x))`, so `ff_proj` is the SiLU gate and `up_proj` the
  linear branch.
* Dream (Qwen2 names): `model.embed_tokens`, `model.layers.{i}.self_attn.{q,k,v,o}_proj`
  (q/k/v with bias), `input_layernorm`, `post_attention_layernorm`,
  `mlp.{gate,up,down}_proj`, then `model.norm` and `lm_head`.

Both apply RoPE in the rotate-half layout (the two halves of each head are rotated against
each other) that transformer.py implements, so no permutation of Q/K weights is needed.

Loading is lazy: the model is built on the 'meta' device (no memory) and each tensor is read
from its shard, cast to the requested dtype and assigned, so an 8B checkpoint costs about one
copy of the weights, not two.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from npu.errors import UserError
from npu.io import atomic_write_with
from npu.models.transformer import MaskedDiffusionTransformer, ModelConfig, build_model

CONFIG_FILE = "config.json"
SINGLE_WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
_SHARD_NAME = re.compile(r"model-\d{5}-of-\d{5}\.safetensors")


class CheckpointError(UserError, ValueError):
    """A checkpoint's contents do not fit our model; the message names the file and tensor."""


# --------------------------------------------------------------------------- config.json


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: expected a JSON object at the top level")
    return value


def _require(hf_config: dict, key: str, path: Path):
    if hf_config.get(key) is None:
        raise CheckpointError(f"{path}: required key {key!r} is missing")
    return hf_config[key]


def _checkpoint_family(hf_config: dict, path: Path) -> str:
    """'llada' or 'dream', from model_type / architectures."""
    model_type = str(hf_config.get("model_type", "")).lower()
    architectures = [str(a) for a in hf_config.get("architectures") or []]
    if model_type == "llada" or any(a.startswith("LLaDA") for a in architectures):
        return "llada"
    if model_type == "dream" or any(a.startswith("Dream") for a in architectures):
        return "dream"
    raise CheckpointError(
        f"{path}: model_type={hf_config.get('model_type')!r}, architectures={architectures} is "
        "neither LLaDA (model_type 'llada') nor Dream (model_type 'Dream')"
    )


def _reject_unsupported(hf_config: dict, path: Path, expected: dict) -> None:
    """Fail loudly on options that would change the maths our transformer implements."""
    for key, allowed in expected.items():
        if key in hf_config and hf_config[key] not in allowed:
            raise CheckpointError(
                f"{path}: {key}={hf_config[key]!r} is not supported (supported: {list(allowed)})"
            )


def _llada_config(hf_config: dict, name: str, path: Path) -> ModelConfig:
    _reject_unsupported(
        hf_config,
        path,
        {
            "block_type": ("llama",),
            "activation_type": ("silu",),
            "layer_norm_type": ("rms", "rms_norm"),
            "layer_norm_with_affine": (True,),
            "rope": (True,),
            "alibi": (False,),
            "include_bias": (False,),
            "attention_layer_norm": (False,),
            "input_emb_norm": (False,),
            "scale_logits": (False,),
            "block_group_size": (1,),
        },
    )
    d_model = _require(hf_config, "d_model", path)
    n_heads = _require(hf_config, "n_heads", path)
    if d_model % n_heads:
        raise CheckpointError(f"{path}: d_model={d_model} is not a multiple of n_heads={n_heads}")
    n_kv_heads = hf_config.get("n_kv_heads")
    if hf_config.get("multi_query_attention"):
        n_kv_heads = 1
    mlp_hidden_size = hf_config.get("mlp_hidden_size")
    if mlp_hidden_size is None:
        mlp_hidden_size = _require(hf_config, "mlp_ratio", path) * d_model
    # The embedding table has `embedding_size` rows (>= vocab_size, padded); shapes follow it.
    vocab_rows = hf_config.get("embedding_size") or _require(hf_config, "vocab_size", path)
    return ModelConfig(
        name=name,
        vocab_size=vocab_rows,
        mask_token_id=_require(hf_config, "mask_token_id", path),
        n_layers=_require(hf_config, "n_layers", path),
        d_model=d_model,
        n_heads=n_heads,
        n_kv_heads=n_kv_heads or n_heads,
        head_dim=d_model // n_heads,
        d_ff=mlp_hidden_size,
        max_seq_len=_require(hf_config, "max_sequence_length", path),
        norm_eps=float(hf_config.get("rms_norm_eps", 1e-5)),
        rope_theta=float(hf_config.get("rope_theta", 10000.0)),
        qkv_bias=bool(hf_config.get("include_qkv_bias", False)),
    )


def _dream_config(hf_config: dict, name: str, path: Path) -> ModelConfig:
    _reject_unsupported(hf_config, path, {"hidden_act": ("silu",), "rope_scaling": (None,)})
    d_model = _require(hf_config, "hidden_size", path)
    n_heads = _require(hf_config, "num_attention_heads", path)
    if d_model % n_heads:
        raise CheckpointError(
            f"{path}: hidden_size={d_model} is not a multiple of num_attention_heads={n_heads}"
        )
    return ModelConfig(
        name=name,
        vocab_size=_require(hf_config, "vocab_size", path),
        mask_token_id=_require(hf_config, "mask_token_id", path),
        n_layers=_require(hf_config, "num_hidden_layers", path),
        d_model=d_model,
        n_heads=n_heads,
        n_kv_heads=hf_config.get("num_key_value_heads") or n_heads,
        head_dim=d_model // n_heads,
        d_ff=_require(hf_config, "intermediate_size", path),
        max_seq_len=_require(hf_config, "max_position_embeddings", path),
        norm_eps=float(hf_config.get("rms_norm_eps", 1e-6)),
        rope_theta=float(hf_config.get("rope_theta", 10000.0)),
        qkv_bias=True,  # Dream's q/k/v projections always carry a bias (Qwen2 style)
    )


def _read_hf_config(directory: str | os.PathLike) -> tuple[ModelConfig, str, bool]:
    """(our ModelConfig, family, whether the LM head is tied to the embedding) for a directory."""
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"checkpoint directory {root} does not exist")
    path = root / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint directory {root} has no {CONFIG_FILE}")
    hf_config = _read_json(path)
    family = _checkpoint_family(hf_config, path)
    name = root.resolve().name
    tied_key = "weight_tying" if family == "llada" else "tie_word_embeddings"
    lm_head_tied = bool(hf_config.get(tied_key, False))
    try:
        if family == "llada":
            return _llada_config(hf_config, name, path), family, lm_head_tied
        return _dream_config(hf_config, name, path), family, lm_head_tied
    except (TypeError, ValueError) as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(f"{path}: {error}") from None


def model_config_from_hf(directory: str | os.PathLike) -> ModelConfig:
    """Our ModelConfig for the LLaDA or Dream checkpoint in `directory` (reads config.json)."""
    return _read_hf_config(directory)[0]


# --------------------------------------------------------------------------- tensor names


def hf_tensor_names(config: ModelConfig, family: str) -> dict[str, str]:
    """Our parameter name -> the checkpoint's tensor name, for family 'llada' or 'dream'."""
    if family == "llada":
        prefix = "model.transformer"
        names = {
            "embed.weight": f"{prefix}.wte.weight",
            "final_norm.weight": f"{prefix}.ln_f.weight",
            "lm_head.weight": f"{prefix}.ff_out.weight",
        }
        per_block = {
            "attn_norm.weight": "attn_norm.weight",
            "attn.q_proj.weight": "q_proj.weight",
            "attn.k_proj.weight": "k_proj.weight",
            "attn.v_proj.weight": "v_proj.weight",
            "attn.o_proj.weight": "attn_out.weight",
            "mlp_norm.weight": "ff_norm.weight",
            "mlp.gate_proj.weight": "ff_proj.weight",  # SiLU is applied to ff_proj's output
            "mlp.up_proj.weight": "up_proj.weight",
            "mlp.down_proj.weight": "ff_out.weight",
        }
        bias_names = {f"attn.{p}.bias": f"{p}.bias" for p in ("q_proj", "k_proj", "v_proj")}
        block_prefix = f"{prefix}.blocks"
    elif family == "dream":
        names = {
            "embed.weight": "model.embed_tokens.weight",
            "final_norm.weight": "model.norm.weight",
            "lm_head.weight": "lm_head.weight",
        }
        per_block = {
            "attn_norm.weight": "input_layernorm.weight",
            "attn.q_proj.weight": "self_attn.q_proj.weight",
            "attn.k_proj.weight": "self_attn.k_proj.weight",
            "attn.v_proj.weight": "self_attn.v_proj.weight",
            "attn.o_proj.weight": "self_attn.o_proj.weight",
            "mlp_norm.weight": "post_attention_layernorm.weight",
            "mlp.gate_proj.weight": "mlp.gate_proj.weight",
            "mlp.up_proj.weight": "mlp.up_proj.weight",
            "mlp.down_proj.weight": "mlp.down_proj.weight",
        }
        bias_names = {f"attn.{p}.bias": f"self_attn.{p}.bias" for p in ("q_proj", "k_proj", "v_proj")}
        block_prefix = "model.layers"
    else:
        raise ValueError(f"unknown checkpoint family {family!r}; expected 'llada' or 'dream'")
    if config.qkv_bias:
        per_block = {**per_block, **bias_names}
    for layer in range(config.n_layers):
        for ours, theirs in per_block.items():
            names[f"blocks.{layer}.{ours}"] = f"{block_prefix}.{layer}.{theirs}"
    return names


# --------------------------------------------------------------------------- loading


def _weight_locations(root: Path) -> tuple[dict[str, Path], Path]:
    """Checkpoint tensor name -> shard file, and the file that vouches for that list."""
    index_path = root / INDEX_FILE
    if index_path.is_file():
        weight_map = _read_json(index_path).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise CheckpointError(f"{index_path}: 'weight_map' is missing or empty")
        locations = {}
        for tensor_name, shard in weight_map.items():
            shard_path = root / str(shard)
            if not shard_path.is_file():
                raise FileNotFoundError(
                    f"{index_path} puts tensor {tensor_name!r} in shard {shard!r}, "
                    f"which does not exist in {root}"
                )
            locations[tensor_name] = shard_path
        return locations, index_path
    single_path = root / SINGLE_WEIGHTS_FILE
    if single_path.is_file():
        with _open_safetensors(single_path) as handle:
            return {name: single_path for name in handle.keys()}, single_path
    raise FileNotFoundError(
        f"checkpoint directory {root} has neither {INDEX_FILE} nor {SINGLE_WEIGHTS_FILE}"
    )


def _open_safetensors(path: Path):
    try:
        return safe_open(str(path), framework="pt", device="cpu")
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from None


def load_pretrained(
    directory: str | os.PathLike, dtype: torch.dtype = torch.float32
) -> MaskedDiffusionTransformer:
    """Build our model from a LLaDA or Dream checkpoint directory, in `dtype`, in eval mode.

    Every tensor the model needs must be present with the right shape, and every tensor in
    the checkpoint must be used; otherwise a CheckpointError names the file and tensor.
    """
    root = Path(directory)
    config, family, lm_head_tied = _read_hf_config(root)
    expected_names = hf_tensor_names(config, family)
    if lm_head_tied:
        del expected_names["lm_head.weight"]  # the LM head reuses the embedding table
    locations, listing_file = _weight_locations(root)

    ours_by_theirs = {theirs: ours for ours, theirs in expected_names.items()}
    for tensor_name, shard_path in locations.items():
        if tensor_name not in ours_by_theirs:
            raise CheckpointError(
                f"{shard_path}: unexpected tensor {tensor_name!r} (not part of a {family} model "
                f"with {config.n_layers} layers, qkv_bias={config.qkv_bias})"
            )
    for theirs in ours_by_theirs:
        if theirs not in locations:
            raise CheckpointError(f"{listing_file}: missing tensor {theirs!r}")

    model = build_model(config, device="meta")
    expected_shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    state: dict[str, torch.Tensor] = {}
    names_by_shard: dict[Path, list[str]] = {}
    for tensor_name, shard_path in locations.items():
        names_by_shard.setdefault(shard_path, []).append(tensor_name)
    for shard_path, tensor_names in sorted(names_by_shard.items()):
        with _open_safetensors(shard_path) as handle:
            present = set(handle.keys())
            for tensor_name in tensor_names:
                if tensor_name not in present:
                    raise CheckpointError(
                        f"{listing_file} lists tensor {tensor_name!r} in {shard_path.name}, "
                        "but that shard does not contain it"
                    )
                ours = ours_by_theirs[tensor_name]
                shape = tuple(handle.get_slice(tensor_name).get_shape())
                if shape != expected_shapes[ours]:
                    raise CheckpointError(
                        f"{shard_path}: tensor {tensor_name!r} has shape {shape}, but "
                        f"config.json implies {expected_shapes[ours]}"
                    )
                try:
                    tensor = handle.get_tensor(tensor_name)
                except (SafetensorError, OSError) as error:
                    raise CheckpointError(
                        f"{shard_path}: cannot read tensor {tensor_name!r} ({error})"
                    ) from None
                if not tensor.is_floating_point():
                    raise CheckpointError(
                        f"{shard_path}: tensor {tensor_name!r} has dtype {tensor.dtype}; "
                        "only floating-point (unquantized) checkpoints are supported"
                    )
                state[ours] = tensor.to(dtype)
    if "lm_head.weight" not in state:
        state["lm_head.weight"] = state["embed.weight"]
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


# --------------------------------------------------------------------------- saving


def _llada_hf_config(config: ModelConfig) -> dict:
    """config.json in LLaDA's key names (as in GSAI-ML/LLaDA-8B), for our model's shapes."""
    return {
        "architectures": ["LLaDAModelLM"],
        "model_type": "llada",
        "d_model": config.d_model,
        "n_heads": config.n_heads,
        "n_kv_heads": config.n_kv_heads,
        "n_layers": config.n_layers,
        "mlp_hidden_size": config.d_ff,
        "mlp_ratio": 4,
        "vocab_size": config.vocab_size,
        "embedding_size": config.vocab_size,
        "mask_token_id": config.mask_token_id,
        "max_sequence_length": config.max_seq_len,
        "rope": True,
        "rope_theta": config.rope_theta,
        "rms_norm_eps": config.norm_eps,
        "layer_norm_type": "rms",
        "layer_norm_with_affine": True,
        "activation_type": "silu",
        "block_type": "llama",
        "block_group_size": 1,
        "include_bias": False,
        "include_qkv_bias": config.qkv_bias,
        "weight_tying": False,
        "alibi": False,
        "attention_layer_norm": False,
        "input_emb_norm": False,
        "scale_logits": False,
        "multi_query_attention": None,
    }


def _write_json(path: Path, value: dict) -> None:
    def write(temp_name: str) -> None:
        with open(temp_name, "w", encoding="utf-8") as out:
            json.dump(value, out, indent=2, sort_keys=True)
            out.write("\n")

    atomic_write_with(path, write)


def _write_safetensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    atomic_write_with(path, lambda temp_name: save_file(tensors, temp_name, metadata={"format": "pt"}))


def _split_into_shards(
    tensors: dict[str, torch.Tensor], shard_size_bytes: int | None
) -> list[dict[str, torch.Tensor]]:
    """Greedy, order-preserving split; a tensor larger than the limit gets a shard of its own."""
    if shard_size_bytes is None:
        return [tensors]
    if shard_size_bytes <= 0:
        raise ValueError(f"shard_size_bytes must be positive, got {shard_size_bytes}")
    shards: list[dict[str, torch.Tensor]] = [{}]
    used = 0
    for name, tensor in tensors.items():
        size = tensor.numel() * tensor.element_size()
        if shards[-1] and used + size > shard_size_bytes:
            shards.append({})
            used = 0
        shards[-1][name] = tensor
        used += size
    return shards


def save_in_llada_layout(
    model: MaskedDiffusionTransformer,
    directory: str | os.PathLike,
    shard_size_bytes: int | None = None,
) -> None:
    """Write config.json and safetensors weights in LLaDA's naming, in the model's dtype.

    With shard_size_bytes set and the weights larger than it, the tensors are split into
    model-0000X-of-0000Y.safetensors plus model.safetensors.index.json; otherwise one
    model.safetensors. Checkpoint files left over from an earlier save are removed.
    """
    config = model.config
    if config.n_heads * config.head_dim != config.d_model:
        raise ValueError(
            f"model {config.name!r}: LLaDA's layout requires head_dim * n_heads == d_model, got "
            f"{config.head_dim} * {config.n_heads} != {config.d_model}"
        )
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    names = hf_tensor_names(config, "llada")
    parameters = dict(model.named_parameters())
    # Cloned so tied or viewed parameters become separate contiguous tensors safetensors accepts.
    tensors = {
        theirs: parameters[ours].detach().to("cpu").contiguous().clone()
        for ours, theirs in names.items()
    }
    shards = _split_into_shards(tensors, shard_size_bytes)

    written: set[str] = set()
    if len(shards) == 1:
        _write_safetensors(root / SINGLE_WEIGHTS_FILE, shards[0])
        written.add(SINGLE_WEIGHTS_FILE)
    else:
        weight_map = {}
        for number, shard in enumerate(shards, start=1):
            shard_name = f"model-{number:05d}-of-{len(shards):05d}.safetensors"
            _write_safetensors(root / shard_name, shard)
            weight_map.update({name: shard_name for name in shard})
            written.add(shard_name)
        total_size = sum(t.numel() * t.element_size() for t in tensors.values())
        index = {"metadata": {"total_size": total_size}, "weight_map": weight_map}
        _write_json(root / INDEX_FILE, index)
        written.add(INDEX_FILE)
    _write_json(root / CONFIG_FILE, _llada_hf_config(config))

    for stale in root.iterdir():
        is_checkpoint_file = stale.name in (SINGLE_WEIGHTS_FILE, INDEX_FILE) or bool(
            _SHARD_NAME.fullmatch(stale.name)
        )
        if is_checkpoint_file and stale.name not in written:
            stale.unlink()
