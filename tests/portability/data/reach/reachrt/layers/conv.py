from reachrt.utils import is_cuda, is_npu

if is_cuda():
    from sgl_kernel import conv_fn
elif is_npu():
    from sgl_kernel_npu import conv_fn
