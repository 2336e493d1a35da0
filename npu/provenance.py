"""Fingerprints of the code a pipeline stage runs, so that code changes rerun that stage."""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent


def source_hash(*parts: str) -> str:
    """SHA-256 (first 16 hex digits) over the Python files of the named package parts.

    `parts` are paths relative to the `npu` package, e.g. "models" or "config.py". The Snakefile
    passes the result as a rule parameter: Snakemake reruns a job whose parameters changed.
    """
    digest = hashlib.sha256()
    for part in sorted(parts):
        root = PACKAGE_ROOT / part
        if not root.exists():
            raise FileNotFoundError(f"source_hash: {root} does not exist")
        files = [root] if root.is_file() else sorted(root.rglob("*.py")) + sorted(root.rglob("*.yaml"))
        for path in files:
            digest.update(str(path.relative_to(PACKAGE_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
