"""``demoserve``: a portability profile for a (pretend) serving runtime, so ``harness portability`` knows it."""
from __future__ import annotations

from harness.portability.profile import RuntimeProfile

PROFILE = RuntimeProfile(
    name="demoserve", distribution="demoserve", packages=("demoserve.models",), entry_packages=("demoserve.models",),
    accelerator_packages={"torch_npu": frozenset({"npu"})},
)
