import cutlass

from reachrt.kernels.deep import more


def fast_attn(x):
    return more(x)
