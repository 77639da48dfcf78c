from reachrt.utils import is_cuda

if is_cuda():
    from sgl_kernel import ggml_dequantize


class GGUFLinearMethod:
    def apply(self, x):
        return ggml_dequantize(x)  # line 9: only with the GGUF quantization method


class GGUFLinearAscendMethod(GGUFLinearMethod):
    """NPU uses this subclass instead: the base's apply never runs there."""

    def apply(self, x):
        return x
