"""Every ``>>>`` example in the harness namespace and the benchmarks runs, so a wrong one fails the run.

Modules are found by their source (any ``.py`` file holding ``>>>``), one test per module, named by its
import name (``harness.bisect.search``); models/, reports/ and suites/ are walked under their installed
names (harness.models, ...).
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("harness", "harness.models", "harness.reports", "harness.suites", "benchmarks")
FLAGS = doctest.ELLIPSIS


def package_dir(package: str) -> Path:
    """The folder a package's modules live in (models/ for harness.models), without importing its modules."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise LookupError(f"{package} is not an importable package; install the checkout with pip install -e .")
    return Path(next(iter(spec.submodule_search_locations)))


def module_name(package: str, folder: Path, path: Path) -> str:
    """``harness.bisect.search`` for harness/bisect/search.py; a package's ``__init__.py`` is the package."""
    parts = path.relative_to(folder).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((package, *parts))


def importable(folder: Path, path: Path) -> bool:
    """Whether every folder from ``path``'s up to the package's own has an ``__init__.py`` (not data or a script)."""
    here = path.parent
    while (here / "__init__.py").is_file():
        if here == folder:
            return True
        here = here.parent
    return False


def modules_with_examples() -> list[str]:
    """Import names of the modules whose source holds a ``>>>`` example."""
    found = set()
    for package in PACKAGES:
        folder = package_dir(package)
        for path in folder.rglob("*.py"):
            if importable(folder, path) and ">>>" in path.read_text(encoding="utf-8"):
                found.add(module_name(package, folder, path))
    return sorted(found)


MODULES = modules_with_examples()


def test_examples_are_found() -> None:
    """The walk sees the namespace: modules known to carry examples are among those collected."""
    assert {"harness.bisect.search", "harness.config.pairedstats", "benchmarks.packing"} <= set(MODULES), MODULES


def test_module_names_follow_the_installed_namespace() -> None:
    """models/ walks as harness.models, and a package's __init__ is the package itself."""
    folder = package_dir("harness.models")
    assert folder == ROOT / "models"
    assert module_name("harness.models", folder, folder / "build_tiny.py") == "harness.models.build_tiny"
    assert module_name("harness", ROOT / "harness", ROOT / "harness" / "config" / "__init__.py") == "harness.config"


@pytest.mark.parametrize("name", MODULES)
def test_doctest(name: str) -> None:
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    failed = attempted = 0
    for test in doctest.DocTestFinder().find(module):
        result = runner.run(test, out=report.append)
        failed, attempted = failed + result.failed, attempted + result.attempted
    assert attempted, (f"{name} holds '>>>' but no example was collected from its docstrings; "
                       "move the example into a docstring or drop the prompt")
    assert not failed, "".join(report)
