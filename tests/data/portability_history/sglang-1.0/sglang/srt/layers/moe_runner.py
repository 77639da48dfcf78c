"""overbroad-guard + missing-name: the guard admits cpu and xpu (moe_runner/deep_gemm.py, 0.5.8.post1)."""

from sglang.srt.utils import is_hip, is_npu

_is_hip = is_hip()
_is_npu = is_npu()

if not (_is_npu or _is_hip):
    from sgl_kernel import silu_and_mul


def run_moe(x):
    return silu_and_mul(x)
