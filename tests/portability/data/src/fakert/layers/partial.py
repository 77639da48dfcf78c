from fakert.utils import is_cuda, is_hip

_is_cuda = is_cuda()
_is_hip = is_hip()

if _is_cuda:
    from fakert.kernels.cuda_ops import fused_add as cuda_only_fn

if _is_hip:
    from fakert.layers import rocm_only  # noqa: F401  (an AMD-only module, imported only on ROCm)


def everywhere_fn(x):
    return x
