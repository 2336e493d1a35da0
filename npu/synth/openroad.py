"""OpenROAD floorplan / place / route: used when an `openroad` binary is on PATH. It is not
packaged for Debian and not installed here, so the tables say so instead of failing."""

from __future__ import annotations

import shutil


def openroad_status() -> str:
    """What the place-and-route column of a table says."""
    path = shutil.which("openroad")
    if path is None:
        return "skipped (openroad not installed)"
    return f"skipped (openroad found at {path}; the place-and-route step is not implemented yet)"
