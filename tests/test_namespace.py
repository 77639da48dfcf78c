"""`pip install .` puts exactly one top-level package in site-packages: harness (models/, reports/
and suites/ of the checkout land as harness.models, harness.reports and harness.suites)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tracked_copy(dest: Path) -> Path:
    """The checkout's tracked files (no run outputs, no venvs), so the build leaves nothing in it."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if out.returncode != 0:
        pytest.skip("not a git checkout: cannot tell the tracked files from run outputs")
    for name in filter(None, out.stdout.decode().split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("namespace")
    src = _tracked_copy(tmp / "src")
    target = tmp / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--target", str(target), str(src)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return target


def test_one_top_level_package(site: Path) -> None:
    top = sorted(p.name for p in site.iterdir() if not p.name.endswith(".dist-info") and p.name != "bin")
    assert top == ["harness"]


def test_the_folders_land_inside_it_with_their_data(site: Path) -> None:
    h = site / "harness"
    for path in ("models/zoo.py", "models/cards", "reports/builder.py", "reports/templates/index.html.jinja2",
                 "suites/test_matrix.py", "numerics/layouts/transformers.yaml", "portability/baselines",
                 "runtimes/workarounds/sglang_vllm_shim/vllm/_custom_ops.py", "runtimes/hf_server.py"):
        assert (h / path).exists(), path
    assert not (h / "reports" / "latest").exists()  # run outputs of the checkout are not packaged


def test_the_installed_copy_imports_from_itself(site: Path) -> None:
    code = ("import harness.reports.builder, harness.models.zoo, harness.config.cards as c, harness.suites as s;"
            "print(c.CARDS_DIR); print(s.__file__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}, cwd=site)
    assert done.returncode == 0, done.stderr[-2000:]
    cards, suites = done.stdout.split()
    assert Path(cards).is_relative_to(site) and any(Path(cards).glob("*.yaml"))
    assert Path(suites).is_relative_to(site)
