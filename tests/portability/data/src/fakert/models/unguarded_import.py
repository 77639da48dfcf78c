"""The issue: a CUDA kernel imported at module level makes the model unimportable elsewhere."""

from sgl_kernel import dsv3_router_gemm


def route(x):
    return dsv3_router_gemm(x)
