"""A model whose kernel import is caught: nothing breaks when it fails."""
try:
    from reachrt.kernels.caught import fused
except ImportError:
    fused = None
