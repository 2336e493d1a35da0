"""Atomic artifact writes: a file is either absent or complete, even if a run is interrupted."""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping


def atomic_write_with(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call `write(temp_path)` for a temporary file next to `path`, fsync it, then rename it
    over `path`: readers see the old file or the complete new one, never a partial write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; artifacts are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write_with(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_tsv(path: str | Path) -> list[dict[str, str]]:
    """The rows of a table write_tsv wrote, keyed by its header (cells as strings)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def cell_number(value: Any) -> float:
    """A table cell as a float: empty and non-numeric cells (a skipped program, a missing
    figure) are NaN."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def write_tsv(path: str | Path, rows: Iterable[Mapping[str, Any]], missing: str | None = None) -> Path:
    """A tab-separated table with a header from the first row's keys (all rows share them).

    missing: when given, rows may have different keys; the header is their union (in order of
    first appearance) and an absent cell is written as `missing` (e.g. a skipped program's row).
    """
    rows = list(rows)
    if not rows:
        raise ValueError(f"{path}: refusing to write an empty table")
    columns = list(rows[0])
    if missing is not None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
        rows = [{c: row.get(c, missing) for c in columns} for row in rows]
    lines = ["\t".join(columns)]
    for row in rows:
        if list(row) != columns:
            raise ValueError(f"{path}: row {row} does not have the columns {columns}")
        lines.append("\t".join(_format_cell(row[c]) for c in columns))
    return atomic_write_text(path, "\n".join(lines) + "\n")


def _format_cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
