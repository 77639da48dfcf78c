"""direct-import + unscanned: diffusion runtime layer (multimodal_gen/runtime/layers/activation.py, 0.5.8.post1)."""

from sgl_kernel import silu_and_mul


def swiglu(x):
    return silu_and_mul(x)
