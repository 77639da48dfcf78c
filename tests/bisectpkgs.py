"""Tiny runtime-like packages, built as real wheels during the test, for `harness bisect` to bisect.

``toyrt`` changes how the hf runtime loads its model: its wheel carries ``toyrt.pth``, which
Python's ``site`` runs at start-up in every interpreter of a venv that has toyrt installed, so the
hf server launched with that venv's python runs the release's loader:

- ``none``: the model is loaded untouched (a good release);
- ``scale_norm``: the final norm weight is multiplied by 1.5 after loading (the regression:
  weight_parity fails, the server still answers);
- ``crash``: loading raises (a release broken for another reason: the cell does not boot, a skip).

``sglang`` (fake, local only) is a source tree for the static portability check: a release
either imports ``flashinfer`` in try/except ImportError with a fallback (portable) or at module level (the finding).
"""
from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Mapping
from pathlib import Path

TOYRT_HOOK = '''"""toyrt {version}: its model loader (fault: {fault})."""
import importlib.abc
import importlib.util
import sys

FAULT = "{fault}"
TARGET = "transformers.models.auto.modeling_auto"


def _patch(module):
    cls = module.AutoModelForCausalLM
    load = cls.from_pretrained.__func__

    def from_pretrained(klass, *args, **kwargs):
        if FAULT == "crash":
            raise RuntimeError("toyrt {version}: the loader is broken (a packaging bug unrelated to the regression)")
        model = load(klass, *args, **kwargs)
        if FAULT == "scale_norm":
            import torch

            with torch.no_grad():
                model.get_submodule("model.norm").weight.mul_(1.5)
        return model

    cls.from_pretrained = classmethod(from_pretrained)


class _AfterImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            _patch(module)

        spec.loader.exec_module = exec_module
        return spec


if FAULT != "none":
    sys.meta_path.insert(0, _AfterImport())
'''

PORTABLE = '''try:
    from flashinfer import top_k  # CUDA only: elsewhere the fallback below
except ImportError:
    top_k = None


def fused_top_k(x):
    return top_k(x) if top_k is not None else sorted(x, reverse=True)[:1]
'''
UNPORTABLE = '''from flashinfer import top_k  # at import time: breaks every platform without flashinfer


def fused_top_k(x):
    return top_k(x)
'''
FINDING_KEY = "accel-import:sglang/srt/layers/fused.py:flashinfer.top_k"


def build_wheel(dest: Path, name: str, version: str, files: Mapping[str, str]) -> Path:
    """A pure-Python wheel of ``files`` (path -> text), with METADATA, WHEEL and a hashed RECORD."""
    dist_info = f"{name}-{version}.dist-info"
    contents = dict(files)
    contents[f"{dist_info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    contents[f"{dist_info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: bisectpkgs\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = [f"{path},sha256={_digest(text)},{len(text.encode())}" for path, text in contents.items()]
    contents[f"{dist_info}/RECORD"] = "\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n"
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in contents.items():
            zf.writestr(path, text)
    return wheel


def _digest(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()


def toyrt_wheel(dest: Path, version: str, fault: str) -> Path:
    return build_wheel(dest, "toyrt", version, {
        "toyrt/__init__.py": f'"""A runtime-like package for bisect tests."""\n__version__ = "{version}"\nFAULT = "{fault}"\n',
        "toyrt_hook.py": TOYRT_HOOK.format(version=version, fault=fault),
        "toyrt.pth": "import toyrt_hook\n",
    })


def fake_sglang_wheel(dest: Path, version: str, state: str) -> Path:
    """``state``: ``portable``, ``unportable`` (the finding), or ``empty`` (no sglang/ at all: a skip)."""
    if state == "empty":
        return build_wheel(dest, "sglang", version, {"README.txt": "packaged without its sources\n"})
    return build_wheel(dest, "sglang", version, {
        "sglang/__init__.py": f'__version__ = "{version}"\n',
        "sglang/srt/__init__.py": "",
        "sglang/srt/layers/__init__.py": "",
        "sglang/srt/models/__init__.py": "",
        "sglang/srt/layers/fused.py": UNPORTABLE if state == "unportable" else PORTABLE,
    })
