"""Fingerprints of the code a pipeline stage runs, so that a code change reruns exactly the
stages that run the changed code.

The pipeline gives every rule the parameter `code=stage_fingerprint("npu.stages.<file>",
"<stage function>")`; Snakemake reruns a job whose parameters changed. The fingerprint covers
the stage function's *import closure*: the `npu` modules imported at the top of its module and
inside the function (and the module's functions it calls), then everything those modules import,
transitively - read from the source with `ast`, so nothing is imported and no list is kept by
hand. Data files the package reads at run time (the YAML schemas in npu/schemas/) are included
with the module that reads them.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent
PACKAGE = PACKAGE_ROOT.name
DATA_FILES = {"npu.config": ("schemas",)}  # module -> package folders of data files it reads


def module_file(module: str, root: Path = PACKAGE_ROOT) -> Path | None:
    """The source file of an `npu` module (a package's __init__.py), None if there is none."""
    parts = module.split(".")[1:]
    path = root.joinpath(*parts)
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return None


def _parse(module: str, root: Path) -> ast.Module:
    path = module_file(module, root)
    if path is None:
        raise FileNotFoundError(f"code fingerprint: no source for module {module} under {root}")
    return ast.parse(path.read_text(), filename=str(path))


def _imports_in(node: ast.AST, module: str, is_package: bool) -> set[str]:
    """`npu` modules imported anywhere inside `node` (relative imports resolved)."""
    found = set()
    for item in ast.walk(node):
        if isinstance(item, ast.Import):
            names = [alias.name for alias in item.names]
        elif isinstance(item, ast.ImportFrom):
            base = item.module or ""
            if item.level:
                package = module.split(".")[: len(module.split(".")) - item.level + (1 if is_package else 0)]
                base = ".".join(package + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in item.names]  # `from pkg import module`
        else:
            continue
        found.update(name for name in names if name == PACKAGE or name.startswith(PACKAGE + "."))
    return found


def _existing(modules: set[str], root: Path) -> set[str]:
    """The names that are modules (`from npu.x import function` names a function, not a module),
    with every parent package, whose __init__ runs on import."""
    result = set()
    for name in modules:
        if module_file(name, root) is None:
            continue
        parts = name.split(".")
        result.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return {name for name in result if module_file(name, root) is not None}


def import_closure(module: str, function: str | None = None, root: Path = PACKAGE_ROOT) -> set[str]:
    """Every `npu` module that `module` (or only its `function`: the module's top-level imports,
    the function's own imports and those of the module's functions it calls) imports, directly
    or indirectly, itself included."""
    tree = _parse(module, root)
    is_package = module_file(module, root).name == "__init__.py"
    if function is None:
        start = _imports_in(tree, module, is_package)
    else:
        top_level = [node for node in tree.body if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        start = set().union(*(_imports_in(node, module, is_package) for node in top_level))
        start |= _function_imports(tree, module, function, is_package)
    closure, todo = {module}, _existing(start, root)
    while todo:
        name = todo.pop()
        if name in closure:
            continue
        closure.add(name)
        todo |= _module_imports(name, root)
    return closure | _existing({module}, root)


def _module_imports(module: str, root: Path) -> set[str]:
    """The existing `npu` modules that `module`'s source imports anywhere in it."""
    path = module_file(module, root)
    if path is None:
        raise FileNotFoundError(f"code fingerprint: no source for module {module} under {root}")
    return _existing(_imports_of_source(path.read_text(), str(path), module, path.name == "__init__.py"), root)


@cache
def _imports_of_source(source: str, filename: str, module: str, is_package: bool) -> frozenset[str]:
    """`npu` names imported in one source text, cached by the text itself: the pipeline
    fingerprints some 25 stages whose closures share most modules, and parsing each file once
    instead of once per stage keeps a no-op `snakemake` run quick (an edited file is a new key)."""
    return frozenset(_imports_in(ast.parse(source, filename=filename), module, is_package))


def _function_imports(tree: ast.Module, module: str, function: str, is_package: bool) -> set[str]:
    """Imports inside `function` and inside the same module's functions it calls, transitively."""
    functions = {node.name: node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    if function not in functions:
        raise ValueError(f"code fingerprint: {module} has no function {function!r}")
    seen, todo, imports = set(), [function], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        imports |= _imports_in(functions[name], module, is_package)
        called = {n.id for n in ast.walk(functions[name]) if isinstance(n, ast.Name)}
        todo += [callee for callee in called & functions.keys() if callee not in seen]
    return imports


@cache
def stage_fingerprint(module: str, function: str | None = None, root: Path = PACKAGE_ROOT) -> str:
    """SHA-256 (first 16 hex digits) of the source of `import_closure(module, function)`, of the
    data files those modules read, and of the command line (npu/cli.py) that calls the stage."""
    files = {module_file(name, root) for name in import_closure(module, function, root)}
    files.add(root / "cli.py")
    for name, folders in DATA_FILES.items():
        if module_file(name, root) in files:
            files |= {path for folder in folders for path in (root / folder).rglob("*") if path.is_file()}
    digest = hashlib.sha256()
    for path in sorted(p for p in files if p is not None and p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def source_revision(root: Path = PACKAGE_ROOT.parent) -> str:
    """The git commit of the checkout `root` (short hash, "+modified" when tracked files differ
    from it), or a sentence saying why there is none: what the report's captions quote as the
    code a run came from."""
    import subprocess

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)

    try:
        head = git("rev-parse", "--short=12", "HEAD")
        if head.returncode != 0:
            return "unknown (not a git checkout)"
        changed = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown (git not available)"
    return head.stdout.strip() + ("+modified" if changed else "")
