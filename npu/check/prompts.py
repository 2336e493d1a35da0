"""The prompts a check decodes: a task's seeded sample, as the int32 arrays the NPU side takes."""

from __future__ import annotations

import numpy as np
import torch


def task_prompts(task, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(prompts, answers) of `n` samples of `task` drawn with `seed`."""
    prompts, answers = task.sample(n, torch.Generator().manual_seed(seed))
    return prompts.numpy().astype(np.int32), answers.numpy().astype(np.int32)
