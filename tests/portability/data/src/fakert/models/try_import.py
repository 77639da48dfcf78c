try:
    from sgl_kernel import rmsnorm
except ImportError:
    rmsnorm = None
