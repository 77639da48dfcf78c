from fakert.utils import is_cuda

_is_cuda = is_cuda()

if _is_cuda:
    from sgl_kernel import dsv3_router_gemm
else:
    dsv3_router_gemm = None


def route(x):
    return dsv3_router_gemm(x) if _is_cuda else x
