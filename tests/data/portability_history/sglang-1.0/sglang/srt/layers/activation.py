"""not-installed + overbroad-guard: vllm is not installed on cpu (layers/activation.py, 0.5.7)."""

from sglang.srt.utils import is_cuda, is_hip, is_npu, is_xpu

_is_cuda = is_cuda()
_is_hip = is_hip()
_is_npu = is_npu()
_is_xpu = is_xpu()


class SiluAndMul:
    pass


if not (_is_cuda or _is_npu or _is_hip or _is_xpu):
    from vllm.model_executor.layers.activation import SiluAndMul  # noqa: F811
