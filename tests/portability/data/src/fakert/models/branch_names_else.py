from fakert.utils import is_cuda, is_npu

_is_cuda = is_cuda()
_is_npu = is_npu()

if _is_cuda:
    from fakert.kernels.cuda_ops import fused_add as add
elif _is_npu:
    from fakert.kernels.npu_ops import npu_add as add
else:

    def add(x):
        return x + 1


def forward(x):
    return add(x)
