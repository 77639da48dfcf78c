"""Imports point one way only: down the layers below, never up, and no two packages import each other.

Every ``import`` in the harness's source is read (function-level and ``TYPE_CHECKING`` ones too), as the
module it names, and placed on its layer. A module may import its own layer and the layers under it.
``python -m pytest tests/test_layering.py`` is how to check a change; a failure names the import.
"""
from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# folders that install under the harness package (pyproject's package-dir)
FOLDERS = {"harness": "harness", "models": "harness.models", "reports": "harness.reports", "suites": "harness.suites"}
# bottom first; a module's layer is that of its longest matching prefix
LAYERS: tuple[tuple[str, ...], ...] = (
    ("harness", "harness.errors", "harness.registry", "harness.results", "harness.causes",
     "harness.redact", "harness.redact_files"),
    ("harness.models",),
    ("harness.config",),
    ("harness.numerics",),
    ("harness.runtimes",),
    ("harness.boot",),
    ("harness.reference",),
    ("harness.checks",),
    ("harness.reports", "harness.portability", "harness.bisect"),
    ("harness.plugin", "harness.hookspecs"),
    ("harness.commands", "harness.suites"),
    ("harness.cli",),
)


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if "sglang_vllm_shim" in parts:  # put on SGLang's path in its own venv, never imported here
                continue
            found[".".join((package, *parts))] = path
    return found


MODULES = modules()


def owner(name: str) -> str | None:
    """The harness module an import names (``harness.x.y.Name`` -> ``harness.x.y``), or None if not ours."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def layer(module: str) -> int:
    best, found = -1, 0
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), i
    return found


def package(module: str) -> str:
    """The unit the one-way rule holds between: a root module, or a subpackage of harness."""
    parts = module.split(".")
    if len(parts) >= 2 and (module in MODULES and MODULES[module].name != "__init__.py" and len(parts) == 2):
        return module
    return ".".join(parts[:2])


def imports(module: str) -> Iterator[tuple[int, str]]:
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))
    base = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = owner(alias.name)
                if target:
                    yield node.lineno, target
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base.rsplit(".", node.level - 1)[0] if node.level > 1 else base
                source = f"{anchor}.{node.module}" if node.module else anchor
            else:
                source = node.module or ""
            for alias in node.names:
                target = owner(f"{source}.{alias.name}") or owner(source)
                if target:
                    yield node.lineno, target


def edges() -> Iterator[tuple[str, int, str]]:
    for module in MODULES:
        for line, target in imports(module):
            if target != module:
                yield module, line, target


def test_every_module_sits_on_a_layer() -> None:
    unplaced = [m for m in MODULES if not any(m == p or m.startswith(p + ".") for ps in LAYERS for p in ps)]
    assert not unplaced, f"modules on no layer (add them to LAYERS): {unplaced}"


def test_no_import_points_up() -> None:
    upward = [f"{MODULES[m].relative_to(ROOT)}:{line}: {m} (layer {layer(m)}) imports {t} (layer {layer(t)})"
              for m, line, t in edges() if layer(t) > layer(m)]
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def test_packages_do_not_import_each_other() -> None:
    pairs = {(package(m), package(t)) for m, _, t in edges() if package(m) != package(t)}
    both = sorted({tuple(sorted(p)) for p in pairs if (p[1], p[0]) in pairs})
    assert not both, f"packages importing each other: {both}"


@pytest.mark.parametrize("probe", ["harness.plugin.main", "harness.boot.cellrun", "harness.reports.data"])
def test_owner_reads_names_as_modules(probe: str) -> None:
    assert owner(probe + ".anything") == probe
