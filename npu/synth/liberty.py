"""One Liberty file per corner from the ASAP7 cell groups, as the tools need it.

The PDK README's quirks, each handled here:
- Yosys 0.23 `dfflibmap` / `abc -liberty` and OpenSTA 2.0.17 cannot read gzipped Liberty
  (OpenSTA then black-boxes every cell and still exits 0): the files are decompressed.
- Yosys 0.23 `abc` uses only the last of several `-liberty` files: the five groups are merged
  into one library (the first file's header, the union of every file's templates, all cells).
- There is no `abc -dont_use` in Yosys 0.23: cells matching `DONT_USE_PATTERNS` get
  `dont_use : true;` in the merged file, which ABC and `dfflibmap` honour.

The merged file is written atomically and reused while its inputs are unchanged (a stamp of the
input files' names, sizes and times, and of this module's code, sits beside it).
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import re
from pathlib import Path

from npu.io import atomic_write_text
from npu.synth.errors import LibertyMergeError
from npu.synth.pdk import DONT_USE_PATTERNS, Pdk

# Header groups the cells' tables refer to by name: two files must agree on them. Other header
# differences (the SIMPLE FF file's input_voltage says 0.7 V where the others say 0.77 V; noise
# margins, not read by timing or power) keep the first file's statement and are listed in a
# comment at the top of the merged file.
TABLE_GROUPS = ("lu_table_template", "power_lut_template", "normalized_driver_waveform")
COSMETIC = ("date", "comment", "revision")
_LIBRARY = re.compile(r"^\s*library\s*\(\s*([^)\s]+)\s*\)\s*\{", re.M)
_CELL = re.compile(r"^(\s*)cell\s*\(\s*\"?([^)\"\s]+)\"?\s*\)\s*\{", re.M)


def _split_statements(text: str) -> list[str]:
    """Top-level statements of a library body (attributes and whole groups), in order."""
    statements, current, depth = [], [], 0
    for line in text.splitlines():
        if not current and not line.strip():
            continue
        current.append(line)
        depth += line.count("{") - line.count("}")
        if depth == 0 and not line.rstrip().endswith("\\"):
            statements.append("\n".join(current))
            current = []
        elif depth < 0:
            raise LibertyMergeError(f"unbalanced braces near {line.strip()!r}")
    if current:
        raise LibertyMergeError(f"unterminated group starting {current[0].strip()!r}")
    return statements


def _parse(path: Path, text: str) -> tuple[str, list[str], str]:
    """(library name, header statements, text of all cell groups) of one Liberty file."""
    library = _LIBRARY.search(text)
    first_cell = _CELL.search(text)
    if library is None or first_cell is None:
        raise LibertyMergeError(f"{path}: no 'library (...) {{' with cells in it")
    body_end = text.rstrip().rfind("}")
    try:
        header = _split_statements(text[library.end():first_cell.start()])
    except LibertyMergeError as error:
        raise LibertyMergeError(f"{path}: {error}") from None
    return library.group(1), header, text[first_cell.start():body_end].rstrip() + "\n"


def _key(statement: str) -> str:
    """What names a header statement: `name : ...` for attributes, the group's first line (and
    its driver_waveform_name, which tells several unnamed waveforms apart) for groups."""
    first = statement.strip().splitlines()[0].strip()
    if "{" not in first:  # `name : value;` by name; a complex attribute `name (args);` whole
        return first.split(":")[0].strip() if ":" in first else first
    waveform = re.search(r"driver_waveform_name\s*:\s*\"([^\"]*)\"", statement)
    return first + (f" [{waveform.group(1)}]" if waveform else "")


def mark_dont_use(cells: str, patterns: tuple[str, ...] = DONT_USE_PATTERNS) -> tuple[str, list[str]]:
    """The cell groups with `dont_use : true;` added to every cell matching a pattern, and those cells."""
    marked = []

    def add(match: re.Match) -> str:
        if any(fnmatch.fnmatchcase(match.group(2), pattern) for pattern in patterns):
            marked.append(match.group(2))
            return f"{match.group(0)}\n{match.group(1)}  dont_use : true;"
        return match.group(0)

    return _CELL.sub(add, cells), marked


def merge_liberty(files: list[Path], name: str, patterns: tuple[str, ...] = DONT_USE_PATTERNS) -> str:
    """One library named `name` holding every cell of `files` (.lib or .lib.gz)."""
    header: dict[str, str] = {}
    sources: dict[str, Path] = {}
    differing: list[str] = []
    cell_texts, cell_names = [], {}
    for path in files:
        text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
        _, statements, cells = _parse(path, text)
        for statement in statements:
            key = _key(statement)
            if statement.lstrip().startswith("/*"):
                continue  # generator comments
            if key not in header:
                header[key], sources[key] = statement, path
            elif header[key].strip() != statement.strip():
                if key.split("(")[0].strip() in TABLE_GROUPS:
                    raise LibertyMergeError(f"{path.name} and {sources[key].name} define {key!r} differently")
                if key not in COSMETIC:
                    differing.append(f"{' '.join(statement.split())} in {path.name}")
        for match in _CELL.finditer(cells):
            if match.group(2) in cell_names:
                raise LibertyMergeError(f"cell {match.group(2)} is in both {cell_names[match.group(2)].name} and {path.name}")
            cell_names[match.group(2)] = path
        cell_texts.append(f"  /* cells of {path.name} */\n{cells}")
    cells, marked = mark_dont_use("".join(cell_texts), patterns)
    notes = [f"merged by npu.synth.liberty from: {', '.join(p.name for p in files)}",
             f"header from {files[0].name} plus the other files' templates; differing statements not taken: "
             f"{'; '.join(differing) or 'none'}",
             f"dont_use ({len(marked)} cells) for patterns: {' '.join(patterns)}"]
    lines = [f"/* {note.replace('*/', '* /')} */" for note in notes]
    lines.append(f"library ({name}) {{")
    lines += [statement for key, statement in header.items() if key != "library"]
    return "\n".join(lines) + "\n" + cells + "}\n"


def _stamp(files: list[Path], patterns: tuple[str, ...]) -> str:
    digest = hashlib.sha256(Path(__file__).read_bytes())  # this merge's code
    for path in files:
        status = path.stat()
        digest.update(f"{path.resolve()}|{status.st_size}|{status.st_mtime_ns}".encode())
    digest.update(" ".join(patterns).encode())
    return digest.hexdigest()[:16]


def prepare_liberty(pdk: Pdk, corner: str, out: str | Path,
                    patterns: tuple[str, ...] = DONT_USE_PATTERNS) -> Path:
    """The merged, decompressed, dont_use-marked RVT library of `corner` at `out`; reuses an
    existing one made from the same inputs."""
    out = Path(out)
    files = pdk.liberty_files(corner)
    stamp_file = out.with_name(out.name + ".stamp")
    stamp = _stamp(files, patterns)
    if out.is_file() and stamp_file.is_file() and stamp_file.read_text().strip() == stamp:
        return out
    atomic_write_text(out, merge_liberty(files, f"asap7sc7p5t_RVT_{corner}_merged", patterns))
    atomic_write_text(stamp_file, stamp + "\n")
    return out


def library_cells(liberty: str | Path) -> set[str]:
    """Names of the cells a (merged) Liberty file defines."""
    return {match.group(2) for match in _CELL.finditer(Path(liberty).read_text())}
