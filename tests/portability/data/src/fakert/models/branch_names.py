from fakert.utils import is_cuda, is_npu

_is_cuda = is_cuda()
_is_npu = is_npu()

if _is_cuda:
    from fakert.kernels.cuda_ops import fused_add
elif _is_npu:
    from fakert.kernels.npu_ops import npu_add


def forward(x):
    return fused_add(x)


def forward_guarded(x):
    if not _is_cuda:
        return x
    return fused_add(x)


def forward_ternary(x):
    return npu_add(x) if _is_npu else x


DEFAULT_ADD = npu_add


def forward_local_flag(x):
    use_fused = _is_cuda and x > 0
    if not use_fused:
        return x
    return fused_add(x)


def forward_after_shape_check(x):
    if x == 0:
        return x
    return fused_add(x)
