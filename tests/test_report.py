"""The Chromium check of tests/report_helpers.py on a small report built here: it finds a figure
the report renders, and it catches one that does not decode. (The pipeline's own report is
checked in tests/test_pipeline.py on the miniature run.)"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import pytest

from report_helpers import chromium_missing, probe_report

from npu.plots.common import pyplot, save_figure

SNAKEMAKE = Path(sys.executable).parent / "snakemake"


@pytest.fixture(scope="module")
def small_report(tmp_path_factory) -> Path:
    """A one-rule workflow whose figure is marked for the report, run and reported."""
    workdir = tmp_path_factory.mktemp("report")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot([1, 2, 3], [1, 4, 9])
    save_figure(fig, workdir / "drawn.png")
    (workdir / "caption.rst").write_text("A figure drawn for the test.\n")
    (workdir / "Snakefile").write_text(
        'rule figure:\n'
        '    input: "drawn.png"\n'
        '    output: report("figure.png", caption="caption.rst", category="Figures", subcategory="one")\n'
        '    shell: "cp {input} {output}"\n')
    for args in (["--cores", "1"], ["--report", "report.html"]):
        result = subprocess.run([str(SNAKEMAKE), *args], cwd=workdir, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
    return workdir / "report.html"


@pytest.mark.skipif(chromium_missing() is not None, reason=str(chromium_missing()))
def test_chromium_renders_the_reports_figure(small_report, tmp_path):
    found = probe_report(small_report, tmp_path)
    assert found["error"] is None and found["app_rendered"] and found["categories"] == ["Figures"]
    (entry,) = found["results"].values()
    assert entry["name"] == "figure.png" and entry["mime"] == "image/png" and "drawn for the test" in entry["caption"]
    assert entry["shown"] and (entry["natural_width"], entry["natural_height"]) == (960, 480)
    assert entry["rendered_width"] > 100


@pytest.mark.skipif(chromium_missing() is not None, reason=str(chromium_missing()))
def test_chromium_check_catches_a_figure_that_does_not_decode(small_report, tmp_path):
    html = small_report.read_text()
    broken = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"not an image" * 100).decode()
    damaged = re.sub(r"(data:image/png[^,\"]*;base64,)[A-Za-z0-9+/=]+", rf"\g<1>{broken}", html)
    assert damaged != html
    copy = tmp_path / "damaged.html"
    copy.write_text(damaged)
    (entry,) = probe_report(copy, tmp_path)["results"].values()
    assert entry["natural_width"] == 0 and entry.get("decode_error")
