"""`npu verify`: compiled generations against the NPU-arithmetic reference,
on a small random checkpoint (the 50-prompt run on trained models is `make verify`)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from npu.cli import main


def test_verify_writes_a_complete_report_with_every_generation_equal_to_the_reference(tmp_path, small_add_checkpoint):
    out = tmp_path / "verify" / "report.json"
    assert main(["verify", "--checkpoint", str(small_add_checkpoint), "--prompts", "2", "--npu", "dnpu-edge",
          "--cache", "dual", "--rule", "topk", "threshold", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["complete"] is True
    assert [(run["cache"], run["rule"]) for run in report["runs"]] == [("dual", "topk"), ("dual", "threshold")]
    for run in report["runs"]:
        assert run["exact_match_vs_reference"] == run["prompts"] == 2
        assert run["steps"] >= 2 * 3  # at least one step per block of 2 tokens
        assert 0 < run["logits_max_rel_error"] < 1


def test_generation_difference_names_the_first_step_that_differs():
    from npu.models.decoding import StepRecord
    from npu.runtime.generate import Generation, generation_difference

    def record(confidence: float) -> StepRecord:
        return StepRecord(0, 0, (4, 6), committed=np.array([True, False]),
                          confidence=np.array([confidence, 0.5], np.float32), k=1)

    same = Generation(np.array([1, 2]), [record(0.9)])
    assert generation_difference(same, Generation(np.array([1, 2]), [record(0.9)])) is None
    assert "step 0: confidence" in generation_difference(same, Generation(np.array([1, 2]), [record(0.90000004)]))
    assert generation_difference(same, Generation(np.array([1, 3]), [record(0.9)])).startswith("tokens")


@pytest.mark.slow
def test_verify_in_worker_processes_reports_what_one_process_reports(tmp_path, small_add_checkpoint):
    """--jobs 2: the (machine, cache, rule) runs in two spawned workers, the report's runs in the
    same order with the same counts as the one-process run."""
    reports = []
    for jobs in ("1", "2"):
        out = tmp_path / f"report-{jobs}.json"
        assert main(["verify", "--checkpoint", str(small_add_checkpoint), "--prompts", "2", "--npu", "dnpu-edge",
                     "--cache", "none", "dual", "--rule", "topk", "--jobs", jobs, "--out", str(out)]) == 0
        reports.append(json.loads(out.read_text()))
    timeless = [[{k: v for k, v in run.items() if "seconds" not in k} for run in r["runs"]] for r in reports]
    assert timeless[0] == timeless[1] and len(timeless[0]) == 2
    assert all(run["exact_match_vs_reference"] == 2 for run in reports[1]["runs"])
