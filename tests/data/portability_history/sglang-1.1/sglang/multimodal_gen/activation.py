"""Fixed: imported only on CUDA-alike devices (multimodal_gen/runtime/layers/activation.py, 0.5.9)."""

from sglang.srt.utils import is_cuda, is_hip

_is_cuda = is_cuda()
_is_hip = is_hip()

if _is_cuda or _is_hip:
    from sgl_kernel import silu_and_mul


def swiglu(x):
    return silu_and_mul(x) if _is_cuda or _is_hip else x
