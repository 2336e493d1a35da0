"""Stage of workflow/rules/train.smk: `train` (a tiny preset on its task -> checkpoint)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from npu.config import ConfigError
from npu.stages.common import decode_config, trained_spec


def train_stage(preset: str | Path, out_dir: str | Path, threads: int = 2, steps: int | None = None) -> Path:
    """Train a tiny preset on its task and write `out_dir/{model.safetensors,meta.json}`."""
    from npu.models.checkpoint import save_checkpoint
    from npu.models.tasks import get_task
    from npu.models.train import TrainConfig, train_model

    spec = trained_spec(preset)
    where = f"{spec.source}: training"
    try:
        train_config = TrainConfig.from_dict(spec.training, where=where)
        task = get_task(spec.task)
    except ValueError as exc:
        raise ConfigError(f"{spec.source}: {exc}") from None
    overrides = {"num_threads": threads} | ({"steps": steps} if steps is not None else {})
    train_config = dataclasses.replace(train_config, **overrides)
    print(f"train {spec.name}: {spec.architecture.n_layers} layers, d_model {spec.architecture.d_model}, "
          f"{train_config.steps} steps on {threads} threads", file=sys.stderr)
    decoding = decode_config(spec) if train_config.stop_exact_match > 0 else None
    model, log = train_model(spec.architecture, task, train_config, progress=True, decoding=decoding)
    if log.target_met is not None:
        at = log.stopped_at_step or train_config.steps
        verdict = f"met at step {at} of {train_config.steps}" if log.target_met else \
            f"NOT met after all {train_config.steps} steps (the checkpoint is the last step's)"
        print(f"train {spec.name}: held-out exact match >= {train_config.stop_exact_match} in every cache mode "
              f"and rule: {verdict}", file=sys.stderr)
    extra = {"preset": spec.raw, "training": dataclasses.asdict(train_config), "log": log.to_dict()}
    return save_checkpoint(out_dir, model, spec.architecture, extra)
