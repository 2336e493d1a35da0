"""Checkpoints of trained models: a folder with `model.safetensors` and `meta.json`.

meta.json holds the ModelConfig, the SHA-256 of the weights file and whatever the caller adds
under `extra` (training recipe, log, task). Both files are written atomically (temporary file in
the same folder, then os.replace), weights first and meta.json last, so a folder whose meta.json
exists and whose weights match its hash is complete. Loading checks the hash, so a truncated or
swapped weights file is a clear error naming the file, never a silently wrong model.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from npu.errors import UserError
from npu.io import atomic_write_bytes
from npu.models.transformer import MaskedDiffusionTransformer, ModelConfig, build_model

WEIGHTS_FILE = "model.safetensors"
META_FILE = "meta.json"
FORMAT = "dnpu-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(UserError, ValueError):
    """A checkpoint folder is missing, incomplete or inconsistent."""


def save_checkpoint(
    path_dir: str | Path, model: MaskedDiffusionTransformer, model_config: ModelConfig, extra: dict | None = None
) -> Path:
    """Write model.safetensors and meta.json into `path_dir` (created if needed); returns the folder."""
    path_dir = Path(path_dir)
    path_dir.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    weights = save_safetensors_bytes(state, metadata={"format": FORMAT, "model": model_config.name})
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": model_config.to_dict(),
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        "num_parameters": sum(t.numel() for t in state.values()),
        "extra": extra or {},
    }
    try:
        meta_text = json.dumps(meta, indent=2, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path_dir / META_FILE}: `extra` is not plain JSON data ({error})") from None
    atomic_write_bytes(path_dir / WEIGHTS_FILE, weights)
    atomic_write_bytes(path_dir / META_FILE, (meta_text + "\n").encode("utf-8"))
    return path_dir


def read_meta(path_dir: str | Path) -> dict:
    """Parse and check meta.json of a checkpoint folder."""
    meta_path = Path(path_dir) / META_FILE
    if not meta_path.is_file():
        raise CheckpointError(f"{meta_path}: checkpoint metadata not found (is {path_dir} a trained checkpoint?)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{meta_path}: not valid JSON, the file is truncated or corrupt ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path}: not a {FORMAT} metadata file")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{meta_path}: format_version {meta.get('format_version')!r}, this code reads {FORMAT_VERSION}"
        )
    for key in ("model_config", "weights_sha256"):
        if key not in meta:
            raise CheckpointError(f"{meta_path}: missing key {key!r}")
    return meta


def load_checkpoint(path_dir: str | Path) -> tuple[MaskedDiffusionTransformer, dict]:
    """Rebuild the model of a checkpoint folder (eval mode, CPU) and return it with its metadata."""
    path_dir = Path(path_dir)
    meta = read_meta(path_dir)
    meta_path, weights_path = path_dir / META_FILE, path_dir / WEIGHTS_FILE
    try:
        model_config = ModelConfig(**meta["model_config"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{meta_path}: key 'model_config' is not a valid ModelConfig ({error})") from None
    if not weights_path.is_file():
        raise CheckpointError(f"{weights_path}: checkpoint weights not found")
    data = weights_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != meta["weights_sha256"]:
        raise CheckpointError(
            f"{weights_path}: contents do not match the SHA-256 in {meta_path} "
            f"(truncated, corrupt or from another run; {len(data)} bytes)"
        )
    try:
        state = load_safetensors_bytes(data)
    except SafetensorError as error:
        raise CheckpointError(f"{weights_path}: not a readable safetensors file ({error})") from None
    model = build_model(model_config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{weights_path}: tensors do not fit model {model_config.name!r}: {error}") from None
    model.eval()
    return model, meta
