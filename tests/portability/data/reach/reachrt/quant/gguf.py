from reachrt.utils import is_cuda

if is_cuda():
    from sgl_kernel import ggml_dequantize


class GGUFLinearMethod:
    def apply(self, x):
        return ggml_dequantize(x)  # line 9: only with the GGUF quantization method
