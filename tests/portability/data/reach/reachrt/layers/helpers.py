from reachrt.utils import is_cuda

if is_cuda():
    from sgl_kernel import fast_gather


def gather(x):
    return fast_gather(x)  # line 8: every caller, in another module, calls it under `if _is_cuda:`
