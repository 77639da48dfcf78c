"""``hf_ext``: the harness's transformers runtime under another name, as a vendor's fork would be."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.runtimes.hf import HFAdapter


class HfExtAdapter(HFAdapter):
    """Boots the same server as ``hf``; its fingerprint says which runtime and extension served."""

    name = "hf_ext"

    def fingerprint(self, server_info: Mapping[str, Any]) -> dict[str, Any]:
        return {**super().fingerprint(server_info), "runtime": self.name, "extension": "harness-ext-demo"}


ADAPTER = HfExtAdapter()
