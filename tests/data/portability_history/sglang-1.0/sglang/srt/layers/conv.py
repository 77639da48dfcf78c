"""transitive: unguarded sgl_kernel import in a layer a model imports (mamba/causal_conv1d.py, 0.5.9)."""

from sgl_kernel import causal_conv1d_fwd


def causal_conv1d_fn(x):
    return causal_conv1d_fwd(x)
