"""Fixed: sgl_kernel is optional, Triton otherwise (mamba/causal_conv1d.py, 0.5.10)."""

try:
    from sgl_kernel import causal_conv1d_fwd

    _HAS_SGL_KERNEL = True
except (ImportError, AttributeError):
    _HAS_SGL_KERNEL = False


def causal_conv1d_fn(x):
    return causal_conv1d_fwd(x) if _HAS_SGL_KERNEL else x
