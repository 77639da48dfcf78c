"""direct-import: a CUDA kernel at module level in a model file (glm4_moe_lite.py, 0.5.10.post1)."""

from sgl_kernel import dsv3_router_gemm


def route(x, w):
    return dsv3_router_gemm(x, w)
