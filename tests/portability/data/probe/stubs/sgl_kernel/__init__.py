"""Stand-in for the CUDA kernel package: importable, so only the probe's blocker can hide it."""


def dsv3_router_gemm(x):
    return x
