"""The accuracy simulator's exact mode (npu.check.exact) on a small random checkpoint."""

from __future__ import annotations

import csv

import pytest

from npu.check.exact import exact_accuracy
from npu.quant.experiments import ModelSource
from npu.stages.quantize import exact_accuracy_stage


def test_exact_mode_reports_npu_arithmetic_next_to_the_fast_simulator(tmp_path, small_add_checkpoint):
    out = exact_accuracy_stage([ModelSource(str(small_add_checkpoint), "small-add")], "dnpu-edge", (4,), 3, tmp_path / "exact.tsv",
                               log=lambda line: None)
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert [(row["method"], row["bits"]) for row in rows] == [("bf16", "16"), ("baos-mxint", "4")]
    for row in rows:
        assert row["cache"] == "dual" and row["prompts"] == "3"
        assert 0 <= int(row["generations_identical"]) <= 3
        assert 0 <= float(row["exact_match_npu_arithmetic"]) <= 100


def test_exact_mode_rejects_a_width_the_dma_cannot_store(small_add_checkpoint):
    with pytest.raises(ValueError, match="MXINT3 has no DMA format"):
        exact_accuracy("small-add", small_add_checkpoint, "dnpu-cloud", (3,), 2)
