"""Fixed: the guard says CUDA (moe_runner/deep_gemm.py, 0.5.9)."""

from sglang.srt.utils import is_cuda, is_hip, is_npu

_is_hip = is_hip()
_is_npu = is_npu()
_is_cuda = is_cuda()

if not (_is_npu or _is_hip) and _is_cuda:
    from sgl_kernel import silu_and_mul


def run_moe(x):
    return silu_and_mul(x) if _is_cuda else x
