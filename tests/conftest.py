"""Fixtures shared by several test files."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from npu.models.checkpoint import save_checkpoint
from npu.models.presets import load_model_spec
from npu.models.transformer import build_model


@pytest.fixture
def small_add_checkpoint(tmp_path):
    """A checkpoint folder with tiny-add's task and decoding and a one-layer random network."""
    spec = load_model_spec("tiny-add")
    config = dataclasses.replace(spec.architecture, n_layers=1, d_model=64, d_ff=128, n_heads=2, n_kv_heads=2)
    torch.manual_seed(0)
    return save_checkpoint(tmp_path / "small-add", build_model(config), config, extra={"preset": spec.raw})
