from fakert.utils import is_npu

_is_npu = is_npu()

if _is_npu:
    from fakert.kernels.npu_ops import npu_add


class AddOp:
    def forward_npu(self, x):
        return npu_add(x)  # dispatched on NPU only: fine

    def forward_native(self, x):
        return x + 2

    def _forward_ascend_fused(self, x):
        return npu_add(x)  # the name says NPU: fine
