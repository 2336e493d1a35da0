"""What every figure shares: reading a pipeline table with named errors, the Agg backend, and
atomic PNG writes.

A figure function reads only the TSV tables the pipeline wrote (paths in, PNG out), so a figure
can be redrawn from a finished run without rerunning anything, and what it shows is exactly what
the tables say.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from npu.errors import UserError
from npu.io import atomic_write_with, cell_number as number

DPI = 120  # about 1000 px across for the 8-inch figures: readable in the report without zooming


class PlotInputError(UserError, ValueError):
    """A table a figure reads is missing, empty or lacks a column; the message names the file."""


def read_table(path: str | Path, columns: Iterable[str], result_columns: Iterable[str] = ()) -> list[dict[str, str]]:
    """The rows of a pipeline TSV table; every name in `columns` must be in its header, and so
    must every name in `result_columns` unless no row has status "ok" (a table of skipped or
    uncompiled programs carries only the columns that say which and why). Absent result
    columns read as empty cells."""
    path = Path(path)
    if not path.is_file():
        raise PlotInputError(f"{path}: table not found")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        header = reader.fieldnames or []
        rows = list(reader)
    result_columns = list(result_columns)
    needed = list(columns) + (result_columns if any(r.get("status", "ok") == "ok" for r in rows) else [])
    missing = [name for name in needed if name not in header]
    if missing:
        raise PlotInputError(f"{path}: missing column{'s' * (len(missing) > 1)} "
                             f"{', '.join(repr(m) for m in missing)} (has: {', '.join(header) or 'nothing'})")
    return [{name: "" for name in result_columns} | row for row in rows]


def read_tables(paths: Sequence[str | Path], columns: Iterable[str],
                result_columns: Iterable[str] = ()) -> list[dict[str, str]]:
    """The rows of several tables with the same columns, concatenated."""
    columns, result_columns = list(columns), list(result_columns)
    return [row for path in paths for row in read_table(path, columns, result_columns)]


def finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display; the pipeline runs headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path) -> Path:
    """Write `fig` as a PNG atomically (npu.io) and close it."""
    path = Path(path)
    try:
        atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=DPI, format="png"))
    finally:
        pyplot().close(fig)
    return path


def note(ax, text: str) -> None:
    """An axes that says why it shows nothing (no compiled program, no rows): the figure still
    exists and says what is missing, instead of the job failing."""
    ax.axis("off")
    ax.text(0.02, 0.5, text, transform=ax.transAxes, fontsize=8, va="center", wrap=True)


def shorten(text: str, limit: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def value_axis(ax, values: Sequence[float], axis: str = "y", span: float = 30.0) -> None:
    """A log scale where the positive values span more than `span`x (then ticks as plain numbers,
    not 6x10^1), a linear one otherwise: small ranges stay readable."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    positive = [v for v in values if finite(v) and v > 0]
    if not positive or max(positive) / min(positive) <= span:
        return
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    target = ax.yaxis if axis == "y" else ax.xaxis
    decades = math.log10(max(positive) / min(positive))
    target.set_major_locator(LogLocator(base=10, subs=(1.0,) if decades > 2.5 else (1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:.3g}"))
    target.set_minor_formatter(NullFormatter())


def compact(value: float) -> str:
    """A number for a bar label: 1,234,567 -> 1.23M, 0.0123 -> 0.0123."""
    if not finite(value):
        return "n/a"
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"
