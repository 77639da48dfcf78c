import importlib.util

try:
    from sgl_kernel import dsv3_router_gemm
except ImportError:
    dsv3_router_gemm = None

HAS_KERNEL = importlib.util.find_spec("sgl_kernel") is not None
print("printing during import must not corrupt the probe protocol")
