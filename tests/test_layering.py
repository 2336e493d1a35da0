"""The package's layers only point down, and no modules import each other in a circle.

Every import in npu/ (top-level, function-local and TYPE_CHECKING ones alike, read with `ast`
without importing anything) must go to the importing module's own layer or to one that layer
sits on (`SITS_ON`, followed transitively). The layers, bottom to top:

    ground: npu.hw, npu.isa, npu.config, npu.errors, npu.io, npu.provenance, npu.schemas (hardware
            definitions and utilities)
    npu.rtl (the Verilog datapaths, their generated constants and cocotb harness) sits on the
            ground floor alone: it reads the ISA table and the numerics; only npu.synth (the
            synthesis flow, under npu.stages) and npu.check (the RTL against the simulators)
            read it;
    npu.models (PyTorch models, tasks, the decoding rule) < npu.ir (the step graph)
    npu.compiler | npu.sim (simulators) | npu.quant (the accuracy simulator) | npu.kernels
            - the compiler and the simulators never import each other;
            - inside npu.sim, the functional simulator and the DRAM model sit on the ground
              floor, the shared cost model (npu.sim.cost) on the DRAM model, and the
              cycle-accurate (npu.sim.cycle) and analytical (npu.sim.analytical) models both on
              the cost model and the functional simulator, without importing each other;
            - npu.kernels (hand-written assembly kernels with their layout contracts, runners
              and numpy references) sits on the functional simulator, which runs them; nothing
              in the package uses them (they are specifications that tests compare with the
              compiler's references);
            - npu.quant never imports the compiler, the runtime or the kernels;
    npu.runtime (compiled programs driven on the simulators) < npu.check (cross-checks of one
    layer against another: compiled vs reference, analytical vs cycle-accurate, RTL vs simulators)
    < npu.dse (the design-space sweep, also reading the synthesis tables) < npu.stages (the
    pipeline's stage functions, one module per rule file) < npu.cli; npu.plots (the figures, drawn
    from the pipeline's tables) sits on the ground floor alone and only npu.stages reads it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "npu"

GROUND = ("npu.hw", "npu.isa", "npu.config", "npu.errors", "npu.io", "npu.provenance", "npu.schemas")

# Which layers each layer imports directly; everything below those is allowed as well.
SITS_ON: dict[str, tuple[str, ...]] = {
    "ground": (),
    "npu.models": ("ground",),
    "npu.rtl": ("ground",),
    "npu.synth": ("npu.rtl",),  # the 7 nm synthesis flow of the RTL units
    "npu.ir": ("npu.models",),
    "npu.compiler": ("npu.ir",),
    "npu.sim.functional": ("ground",),  # executes binaries: needs only the ISA and the hardware
    "npu.sim.dram": ("ground",),
    "npu.sim.cost": ("npu.sim.dram",),  # per-instruction latency, energy, DRAM cost
    "npu.sim.cycle": ("npu.sim.cost", "npu.sim.functional"),
    "npu.sim.analytical": ("npu.sim.cost", "npu.sim.functional", "npu.ir"),  # also costs IR graphs
    "npu.sim": ("npu.sim.cycle", "npu.sim.analytical"),  # the package itself (its __init__)
    "npu.kernels": ("npu.sim.functional",),
    "npu.quant": ("npu.ir",),
    "npu.runtime": ("npu.compiler", "npu.sim", "npu.quant"),
    "npu.check": ("npu.runtime", "npu.rtl"),  # also the RTL against the functional / cycle simulators
    "npu.plots": ("ground",),  # figures from pipeline tables: reads TSVs, imports no model or simulator
    "npu.dse": ("npu.check", "npu.synth"),  # the design-space sweep: compiled steps, simulators, synthesis tables
    "npu.stages": ("npu.dse", "npu.plots"),
    "npu.cli": ("npu.stages",),
}

# Imports that break the layers today and are being moved by parallel work (issue 11); each
# entry is (importing module, imported module). Empty it, do not extend it.
PENDING_MOVES: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class Import:
    """One import statement's target, where it is written."""

    source: str  # importing module, e.g. "npu.runtime.generate"
    target: str  # imported module, e.g. "npu.compiler.layout"
    where: str  # "npu/runtime/generate.py:13"
    type_only: bool = False  # under `if TYPE_CHECKING:`: never executed, so it cannot form a cycle


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> str:
    """The layer a module belongs to: the longest layer name that is the module or one of its
    packages."""
    if module == "npu" or any(module == g or module.startswith(g + ".") for g in GROUND):
        return "ground"
    owners = [layer for layer in SITS_ON if module == layer or module.startswith(layer + ".")]
    if not owners:
        raise AssertionError(f"{module} belongs to no layer of SITS_ON; add its package there")
    return max(owners, key=len)


def imports_of(module: str, path: Path) -> Iterator[Import]:
    """The npu modules `module` imports; `from pkg import name` counts as pkg.name when that is a
    module, else as pkg."""
    known = modules()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    type_only = {id(inner) for node in ast.walk(tree)
                 if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
                 for statement in node.body for inner in ast.walk(statement)}
    for node in ast.walk(tree):
        where = f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            targets = [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in known else prefix
                       for alias in node.names]
        else:
            continue
        for target in targets:
            if target == "npu" or target.startswith("npu."):
                yield Import(module, target, where, id(node) in type_only)


@cache
def all_imports() -> tuple[Import, ...]:
    return tuple(imp for module, path in modules().items() for imp in imports_of(module, path))


@cache
def allowed_layers(layer: str) -> frozenset[str]:
    """The layer and everything it sits on, transitively."""
    below = {layer}
    for lower in SITS_ON[layer]:
        below |= allowed_layers(lower)
    return frozenset(below)


def test_every_module_belongs_to_a_layer() -> None:
    for module in modules():
        assert layer_of(module) in SITS_ON, module


def test_the_layer_map_keeps_the_required_separations() -> None:
    """The map itself must not be loosened to let a forbidden import through."""
    forbidden = [("npu.compiler", "npu.sim"), ("npu.sim", "npu.compiler"), ("npu.quant", "npu.compiler"),
                 ("npu.quant", "npu.runtime"), ("npu.compiler", "npu.quant"),
                 ("npu.sim.cycle", "npu.sim.analytical"), ("npu.sim.analytical", "npu.sim.cycle"),
                 ("npu.compiler", "npu.kernels"), ("npu.sim.functional", "npu.kernels"),
                 ("npu.runtime", "npu.check"), ("npu.check", "npu.stages"), ("npu.stages", "npu.cli")]
    for layer, other in forbidden:
        assert other not in allowed_layers(layer), f"SITS_ON lets {layer} import {other}"
        for sublayer in (s for s in SITS_ON if s.startswith(other + ".")):
            assert sublayer not in allowed_layers(layer), f"SITS_ON lets {layer} import {sublayer}"


def test_imports_only_point_down() -> None:
    wrong = {}
    for imp in all_imports():
        source, target = layer_of(imp.source), layer_of(imp.target)
        if target not in allowed_layers(source) and (imp.source, imp.target) not in PENDING_MOVES:
            wrong[imp.where, imp.target] = f"{imp.where}: {imp.source} ({source}) imports {imp.target} ({target})"
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong.values())


def test_pending_moves_are_still_needed() -> None:
    """An allowlist entry whose import is gone must go too."""
    present = {(imp.source, imp.target) for imp in all_imports()}
    assert PENDING_MOVES <= present, f"no longer imported, drop from PENDING_MOVES: {PENDING_MOVES - present}"


def import_cycles() -> list[list[Import]]:
    """One cycle (as its chain of imports) per strongly connected group of modules (Tarjan).
    Imports for type hints only (`if TYPE_CHECKING:`) are left out: they never run."""
    edges: dict[str, dict[str, Import]] = {}
    for imp in all_imports():
        if imp.source != imp.target and not imp.type_only:
            edges.setdefault(imp.source, {}).setdefault(imp.target, imp)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in edges.get(module, {}):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(group)

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return [cycle_through(min(group), group, edges) for group in groups]


def cycle_through(start: str, group: set[str], edges: dict[str, dict[str, Import]]) -> list[Import]:
    """A shortest chain of imports from `start` back to itself inside `group` (breadth first)."""
    paths: dict[str, list[Import]] = {start: []}
    frontier = [start]
    while frontier:
        following = []
        for module in frontier:
            for target, imp in sorted(edges.get(module, {}).items()):
                if target == start:
                    return paths[module] + [imp]
                if target in group and target not in paths:
                    paths[target] = paths[module] + [imp]
                    following.append(target)
        frontier = following
    raise AssertionError(f"{start} is in a strongly connected group without a cycle through it")


def test_no_import_cycles() -> None:
    cycles = import_cycles()
    assert not cycles, "import cycles:\n" + "\n".join(
        cycle[0].source + "".join(f" -> {imp.target} ({imp.where})" for imp in cycle) for cycle in cycles)


@pytest.mark.parametrize(("source", "target", "expected"), [
    ("npu.runtime.generate", "npu.compiler.layout", True),
    ("npu.compiler.layout", "npu.runtime.generate", False),
    ("npu.sim.cycle.simulator", "npu.sim.analytical.program", False),
    ("npu.sim.analytical.program", "npu.sim.functional.simulator", True),
    ("npu.quant.accuracy", "npu.runtime.generate", False),
    ("npu.check.exact", "npu.runtime.generate", True),
    ("npu.stages.simulate", "npu.check.crossval", True),
    ("npu.check.crossval", "npu.stages.simulate", False),
    ("npu.quant.traffic", "npu.sim.analytical.scenarios", False),
])
def test_the_layer_rule_on_examples(source: str, target: str, expected: bool) -> None:
    assert (layer_of(target) in allowed_layers(layer_of(source))) is expected


def test_stage_functions_live_in_the_stages_package_one_module_per_rule_file() -> None:
    """Every workflow/rules/<name>.smk but common.smk has its npu/stages/<name>.py, and no module
    outside npu.stages is named `stages`."""
    rules = PACKAGE.parent / "workflow" / "rules"
    expected = {path.stem for path in rules.glob("*.smk")} - {"common"}
    present = {path.stem for path in (PACKAGE / "stages").glob("*.py")} - {"__init__", "common"}
    assert present == expected
    assert not [m for m in modules() if m.split(".")[-1] == "stages" and m != "npu.stages"]
