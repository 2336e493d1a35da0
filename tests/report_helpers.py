"""Opening a Snakemake HTML report in headless Chromium and reading back what it rendered.

Snakemake's report is one HTML file: every result is embedded as a data URI in the script
variable `results`, and a React app shows an image result as an <img> when the reader opens
it. `probe_report` appends report_probe.js to a copy of the report; in Chromium it opens every
image result through the app, waits for the <img> to decode, and writes the natural size of
each into the DOM, which `chromium --dump-dom` returns."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

PROBE = Path(__file__).with_name("report_probe.js")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium() -> str | None:
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def chromium_missing() -> str | None:
    """Why the report cannot be opened here, or None."""
    if chromium() is None:
        return "headless Chromium not installed (Debian: apt-get install chromium; `make setup` does it as root)"
    return None


def probe_report(report: Path, workdir: Path, timeout: int = 180) -> dict:
    """What the report's app rendered: {"app_rendered", "categories", "results": {path: {"name",
    "mime", "caption" (HTML), and for images "shown", "natural_width", "natural_height",
    "rendered_width"}}, "error"}."""
    html = report.read_text(encoding="utf-8")
    end = html.rindex("</body>")
    probe = workdir / "report_probe.html"
    probe.write_text(html[:end] + "<script>" + PROBE.read_text() + "</script>" + html[end:], encoding="utf-8")
    result = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=3600000",
         f"--user-data-dir={workdir / 'chromium-profile'}", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=timeout)
    match = re.search(r'<pre id="dnpu-probe">(\{.*?)</pre>', result.stdout, re.DOTALL)  # not the script's comment
    assert match, f"the probe wrote nothing (exit {result.returncode}): {result.stderr[-2000:]}"
    text = match.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")
    return json.loads(text)
