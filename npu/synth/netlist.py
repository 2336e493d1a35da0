"""Reading what the tools wrote: cell areas and kinds from a Liberty file, instances from a
Yosys gate-level Verilog netlist. Area and cell counts are computed here from the netlist and
the library, so they do not depend on how a Yosys version prints `stat`."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

_CELL = re.compile(r"^\s*cell\s*\(\s*\"?([^)\"\s]+)\"?\s*\)\s*\{", re.M)
_AREA = re.compile(r"^\s*area\s*:\s*([0-9.eE+-]+)\s*;?\s*$", re.M)  # INVBUF's areas have no ';' 
_SEQUENTIAL = re.compile(r"^\s*(ff|latch|ff_bank|latch_bank|statetable)\s*\(", re.M)
_DONT_USE = re.compile(r"^\s*dont_use\s*:\s*true\s*;", re.M)
_LEAKAGE = re.compile(r"^\s*cell_leakage_power\s*:\s*([0-9.eE+-]+)\s*;", re.M)


@dataclass(frozen=True)
class LibraryCell:
    name: str
    area_um2: float
    sequential: bool
    dont_use: bool
    leakage_pw: float = 0.0   # the state-independent VDD leakage (the library's leakage unit: pW)


@lru_cache(maxsize=8)
def _library(path: str, mtime_ns: int) -> dict[str, LibraryCell]:
    text = Path(path).read_text()
    starts = [(m.start(), m.group(1)) for m in _CELL.finditer(text)] + [(len(text), "")]
    cells = {}
    for (start, name), (end, _) in zip(starts, starts[1:]):
        block = text[start:end]
        area = _AREA.search(block)
        if area is None:
            raise ValueError(f"{path}: cell {name} has no area")
        cells[name] = LibraryCell(name, float(area.group(1)),
                                  bool(_SEQUENTIAL.search(block)), bool(_DONT_USE.search(block)), _state_leakage(block))
    return cells


_LEAKAGE_GROUP = re.compile(r"leakage_power\s*\(\s*\)\s*\{([^{}]*)\}")


def _state_leakage(block: str) -> float:
    """The leakage group without a `when` (the state average) on VDD; 0 when the cell has none."""
    for group in _LEAKAGE_GROUP.findall(block):
        if "when" not in group and re.search(r"related_pg_pin\s*:\s*VDD", group):
            value = re.search(r"value\s*:\s*([0-9.eE+-]+)", group)
            if value:
                return float(value.group(1))
    return 0.0


def library_leakage_uw(cell_types: dict[str, int], cells: dict[str, LibraryCell]) -> float:
    """Leakage of a netlist's cells (type -> count) from the library, in uW."""
    return sum(count * cells[kind].leakage_pw for kind, count in cell_types.items() if kind in cells) * 1e-6


def library(liberty: str | Path) -> dict[str, LibraryCell]:
    """Cell name -> LibraryCell of a Liberty file (parsed once per file version)."""
    path = Path(liberty)
    return _library(str(path.resolve()), path.stat().st_mtime_ns)


_MODULE = re.compile(r"^\s*module\s+(\\\S+|\w+)", re.M)
_INSTANCE = re.compile(r"^\s*(\\\S+|[A-Za-z_][\w$]*)\s+(?:#\s*\(.*?\)\s*)?(\\\S+|[A-Za-z_][\w$]*)\s*\(", re.M)
_KEYWORDS = {"module", "input", "output", "inout", "wire", "reg", "assign", "always", "initial", "endmodule",
             "parameter", "localparam", "function", "task", "begin", "end", "if", "else", "case", "for", "generate"}


def netlist_cells(netlist: str | Path) -> dict[str, Counter]:
    """Module name -> Counter of instantiated cell/module types, from a structural netlist."""
    text = Path(netlist).read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    modules: dict[str, Counter] = {}
    for chunk in re.split(r"^\s*endmodule\b", text, flags=re.M):
        header = _MODULE.search(chunk)
        if header is None:
            continue
        body = chunk[header.end():]
        body = body[body.find(";") + 1:]  # after the port list
        counts = Counter(match.group(1).lstrip("\\") for match in _INSTANCE.finditer(body)
                         if match.group(1) not in _KEYWORDS)
        modules[header.group(1).lstrip("\\")] = counts
    return modules


@dataclass(frozen=True)
class AreaReport:
    """Cells of one module (its kept submodules expanded) priced with the library."""

    cell_area_um2: float
    sequential_area_um2: float
    cells: int
    sequential_cells: int
    cell_types: Counter


def flat_cells(modules: dict[str, Counter], top: str) -> Counter:
    """Leaf cell types under `top`, submodules expanded."""
    if top not in modules:
        raise KeyError(f"netlist has no module {top!r} (modules: {', '.join(sorted(modules))})")
    total: Counter = Counter()
    for kind, count in modules[top].items():
        if kind in modules:
            for leaf, leaf_count in flat_cells(modules, kind).items():
                total[leaf] += count * leaf_count
        else:
            total[kind] += count
    return total


def unknown_cells(modules: dict[str, Counter], cells: dict[str, LibraryCell]) -> set[str]:
    """Instantiated types that are neither library cells nor modules of the netlist (black boxes)."""
    return {kind for counts in modules.values() for kind in counts if kind not in cells and kind not in modules}


def area_report(modules: dict[str, Counter], top: str, cells: dict[str, LibraryCell]) -> AreaReport:
    leaves = flat_cells(modules, top)
    area = sum(cells[kind].area_um2 * count for kind, count in leaves.items())
    sequential = {kind: count for kind, count in leaves.items() if cells[kind].sequential}
    return AreaReport(area, sum(cells[kind].area_um2 * count for kind, count in sequential.items()),
                      sum(leaves.values()), sum(sequential.values()), leaves)
