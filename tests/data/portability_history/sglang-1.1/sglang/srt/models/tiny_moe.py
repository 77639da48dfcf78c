"""Fixed: the kernel is imported only on CUDA (glm4_moe_lite.py, 0.5.11)."""

from sglang.srt.utils import is_cuda

_is_cuda = is_cuda()

if _is_cuda:
    from sgl_kernel import dsv3_router_gemm


def route(x, w):
    return dsv3_router_gemm(x, w) if _is_cuda else x @ w
