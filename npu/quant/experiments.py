"""What the KV-quantization experiments share: the models under test and the ablation's variants.

- `ModelSource`: a checkpoint to evaluate, optionally with LLM-like K/V outlier channels;
- `load_model_under_test(source, npu_config, preset)`: checkpoint -> model in the NPU's
  arithmetic with its task, decoding recipe and static smoothing factors;
- `read_journal`: the rows an interrupted accuracy grid already finished;
- `BAOS_ABLATION`: the BAOS design choices, one changed at a time.
The stages that run the experiments are in npu.stages.quantize.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from npu.hw.config import load_npu_config
from npu.models.checkpoint import load_checkpoint
from npu.models.decoding import DecodeConfig
from npu.models.tasks import get_task
from npu.quant.accuracy import ModelUnderTest, SampleSizes, prepare_model, row_key
from npu.quant.calibration import calibrate_static_smoothing
from npu.quant.outliers import OutlierSpec, inject_kv_outliers


@dataclass(frozen=True)
class ModelSource:
    """A checkpoint to evaluate, optionally reparametrised with LLM-like outlier channels."""

    checkpoint_dir: str
    label: str
    outliers: OutlierSpec | None = None
    preset: str | None = None  # model preset (task, decoding recipe); None: the one recorded at training


def task_and_decoding(meta: dict, preset: str | Path | None, where: str) -> tuple[dict | None, dict | None]:
    """The task and decoding sections of a preset (name or path), else of the checkpoint's recorded preset."""
    if preset is not None:
        from npu.models.presets import load_model_spec

        spec = load_model_spec(preset)
        return spec.task, spec.decoding
    recorded = meta.get("extra", {}).get("preset", {})
    return recorded.get("task"), recorded.get("decoding")


def _task_and_decode(meta: dict, preset: str | None, where: str):
    """Task and decoding recipe from a preset name, else from the checkpoint's recorded preset."""
    task_spec, decoding = task_and_decoding(meta, preset, where)
    if task_spec is None:
        raise ValueError(f"{where}: no task recorded in the checkpoint and no preset given")
    task = get_task(task_spec)
    decode = None
    if task.name != "text":
        if decoding is None:
            raise ValueError(f"{where}: task {task.name!r} needs a 'decoding' recipe in its preset")
        decode = DecodeConfig(**decoding)
    return task, decode


def load_model_under_test(source: ModelSource, npu_config_name: str | None = "dnpu-cloud",
                          preset: str | None = None) -> ModelUnderTest:
    """Checkpoint -> (optionally outlier-injected) model in the NPU's arithmetic, with its task,
    decoding recipe and freshly calibrated static smoothing factors."""
    model, meta = load_checkpoint(source.checkpoint_dir)
    task, decode = _task_and_decode(meta, preset or source.preset, source.checkpoint_dir)
    if source.outliers is not None:
        model = inject_kv_outliers(model, source.outliers)
    npu_config = None if npu_config_name is None else load_npu_config(npu_config_name)
    entry = prepare_model(source.label, model, task, decode, npu_config)
    entry.static_smoothing = calibrate_static_smoothing(entry.model, task, decode)
    entry.notes["checkpoint"] = str(source.checkpoint_dir)
    return entry



def read_journal(journal: str | Path | None) -> dict[tuple, dict]:
    """Rows of an accuracy journal by row_key; a torn last line (killed mid-write) is ignored."""
    if journal is None or not Path(journal).is_file():
        return {}
    done = {}
    for line in Path(journal).read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        done[row_key(row)] = row
    return done


# Each ablation variant changes one thing from the BAOS default of each layout (per-block refresh
# statistics, the plain format and alphas {0, .25, .5, .75} chosen by the attention-output error of
# the block's queries, values smoothed, block window; MX: pow2 factors + shift, INT: fp factors,
# no shift). Variants that restate a layout's default are marked so; they double as a repeat of
# the default row.
BAOS_ABLATION: dict[str, dict] = {
    "default": {},
    "no per-block adaptation (first block's factors)": {"adaptation": "first"},
    "fixed alpha 0.5": {"alphas": (0.5,)},
    "alpha 0 (no smoothing)": {"alphas": (0.0,)},
    "per-step statistics": {"statistics": "step"},
    "no plain-format candidate": {"plain_candidate": False},
    "attention criterion (q^2-weighted key error)": {"criterion": "attention"},
    "mse criterion": {"criterion": "mse"},
    "attention-max criterion": {"criterion": "attention-max"},
    "RoPE-paired key factors": {"rope_paired": True},
    "pow2 scales (MX default)": {"scale": "pow2"},
    "fp scales (INT default)": {"scale": "fp"},
    "shift on (MX default)": {"shift": True},
    "shift off (INT default)": {"shift": False},
    "no value smoothing": {"smooth_values": False},
    "no block window": {"window": "none"},
}


def study_method_options(methods: tuple[str, ...], baos_criterion: str = "output",
                         mx_scale: str = "ocp") -> dict[str, dict]:
    """Options of the accuracy grid's methods from the study's settings (config `quantization:`):
    the BAOS methods' selection criterion (numerics.BAOS_CRITERIA) and the MX scale rule of every
    method that stores MX (numerics.MX_SCALE_RULES). Bad names raise naming the known ones."""
    from npu.hw.numerics import BAOS_CRITERIA, check_scale_rule
    from npu.quant.methods import get_method

    if baos_criterion not in BAOS_CRITERIA:
        raise ValueError(f"BAOS criterion {baos_criterion!r} is not one of {', '.join(BAOS_CRITERIA)}")
    check_scale_rule(mx_scale)
    options: dict[str, dict] = {}
    for method in methods:
        accepted = get_method(method).options
        chosen = {key: value for key, value in (("criterion", baos_criterion), ("mx_scale", mx_scale))
                  if key in accepted}
        if chosen:
            options[method] = chosen
    return options


def default_sources(checkpoints: dict[str, str], outlier_label_suffix: str = "+outliers",
                    with_outliers: tuple[str, ...] = ()) -> list[ModelSource]:
    """Sources for labelled checkpoints, plus outlier-injected copies of the labels listed."""
    sources = [ModelSource(path, label) for label, path in checkpoints.items()]
    sources += [ModelSource(checkpoints[label], label + outlier_label_suffix, OutlierSpec()) for label in with_outliers]
    return sources


def quick_sizes(prompts: int) -> SampleSizes:
    """SampleSizes with a different number of exact-match prompts (tests, smoke runs)."""
    return replace(SampleSizes(), exact_match_prompts=prompts, batch_size=min(prompts, 250))
