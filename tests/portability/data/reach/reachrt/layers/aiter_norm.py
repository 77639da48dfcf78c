"""A ROCm path that also needs an environment switch: without it the name stays unbound on ROCm."""
import os

from reachrt.utils import is_hip

_is_hip = is_hip()
_use_aiter = _is_hip and os.environ.get("USE_AITER") == "1"

if _use_aiter:
    from aiter import fused_norm

if _use_aiter:
    from aiter import other_norm
else:
    other_norm = None


class AiterNorm:
    def forward_hip(self, x):
        other_norm(x)  # line 20: bound on every path
        return fused_norm(x)  # line 21: unbound on ROCm unless USE_AITER=1
