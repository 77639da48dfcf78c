"""A model importing a name its layer binds only on CUDA and NPU."""
from reachrt.layers.conv import conv_fn
