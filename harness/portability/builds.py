"""Names a platform's build of a package lacks, though the package itself imports there.

A package can be installed on a platform and still not give every name its main build has:
the CPU build of ``sgl_kernel`` registers its own ``*_cpu`` ops, not the CUDA ones the Python
wrappers call; Ascend runs the torch that ``torch_npu`` pins, older than the one whose private
APIs the CUDA code uses. Each entry is a dotted name (a module, or a name in one; a module
covers everything under it) -> the platforms whose build lacks it, and says where that was read.
"""

from __future__ import annotations

from harness.portability.platforms import PlatformSet

_CPU: PlatformSet = frozenset({"cpu"})
_NPU: PlatformSet = frozenset({"npu"})

# sgl_kernel as built for CPU (sgl-kernel/pyproject_cpu.toml: `cmake.source-dir = "csrc/cpu"`,
# distribution sglang-kernel-cpu). Its ops are registered in csrc/cpu/torch_extension_cpu.cpp under
# CPU names; python/sgl_kernel/cpu_register_fake.py lists their schemas: silu_and_mul_cpu,
# rmsnorm_cpu, fused_add_rmsnorm_cpu, topk_softmax_cpu, topk_sigmoid_cpu, int8_scaled_mm_cpu,
# fp8_scaled_mm_cpu, ... The CUDA wrappers below call torch.ops.sgl_kernel.<name> (elementwise.py,
# moe.py, gemm.py), which that build never registers; and csrc/cpu has no transfer_kv_* op at all
# (csrc/cpu/kvcache.cpp registers store_cache_cpu and copy_all_layer_kv_cache_cpu only), so the
# whole kvcacheio module is CUDA/ROCm only. The CPU wheel ships the same Python wrappers, so such
# a name may import there and fail at its first call; with the default (CUDA) sgl-kernel wheel on a
# CPU host `import sgl_kernel` fails outright (sgl-project/sglang#10602). Either way it does not work.
_SGL_KERNEL_CPU = {
    f"sgl_kernel.{name}": _CPU
    for name in (  # each one's CPU op, where the CPU build has one, is <name>_cpu in cpu_register_fake.py
        "silu_and_mul", "rmsnorm", "fused_add_rmsnorm", "topk_softmax", "topk_sigmoid",
        "int8_scaled_mm", "fp8_scaled_mm",
        "kvcacheio",  # no transfer_kv_* op in csrc/cpu
    )
}

# torch on Ascend: torch_npu X.Y.Z requires torch X.Y.Z, and Ascend runs torch 2.7
# (sgl-project/sglang#29100). torch/cuda/memory.py of the torch 2.7.1 wheel (PyPI) binds
# _cuda_releasePool but not _cuda_beginAllocateCurrentThreadToPool / _cuda_endAllocateToPool;
# torch 2.8.0's binds all three (both wheels read, `pip download --no-deps torch==2.7.1`).
_TORCH_NPU = {
    "torch.cuda.memory._cuda_beginAllocateCurrentThreadToPool": _NPU,
    "torch.cuda.memory._cuda_endAllocateToPool": _NPU,
}

MISSING_NAMES: dict[str, PlatformSet] = {**_SGL_KERNEL_CPU, **_TORCH_NPU}
