from reachrt.utils import is_cuda, is_npu

_is_cuda = is_cuda()
_is_npu = is_npu()

if _is_cuda:
    from sgl_kernel import rms_norm


class Norm:
    def forward_npu(self, x):
        return rms_norm(x)  # line 12: NPU's own dispatch runs forward_npu


def helper(x):
    if _is_cuda:
        return rms_norm(x)
    elif _is_npu:
        return rms_norm(x)  # line 19: the platform check sends NPU here
    return x


def latent_use(x):
    return rms_norm(x)  # line 24: nothing sends any platform here


class CudaOnly:
    def __init__(self):
        if not _is_cuda:
            raise RuntimeError("CUDA only")

    def run(self, x):
        return rms_norm(x)  # line 33: no instance exists off CUDA


def build_npu(x):
    if _is_npu:
        from flashinfer import npu_norm  # line 38: the NPU branch imports a CUDA-only package when it runs

        return npu_norm(x)
    return x


class FusedNorm:
    supports_fused = _is_cuda  # a class attribute that is a pure platform test

    def forward(self, x):
        if self.supports_fused:
            return rms_norm(x)  # line 49: only where supports_fused holds, i.e. CUDA
        return x


class TableNorm:
    def forward(self, x, backend):
        return {"fused": self._forward_fused, "native": self._forward_native}[backend](x)

    def _forward_fused(self, x):
        return rms_norm(x)  # line 58: only when a caller picks "fused"

    def _forward_native(self, x):
        return x
