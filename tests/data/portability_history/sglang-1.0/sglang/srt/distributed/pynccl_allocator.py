"""missing-name + unscanned: private pool APIs absent from Ascend's torch 2.7 (pynccl_allocator.py, 0.5.18)."""

from torch.cuda.memory import CUDAPluggableAllocator, _cuda_beginAllocateCurrentThreadToPool


def use_symmetric_memory(pool):
    _cuda_beginAllocateCurrentThreadToPool(0, pool)
    return CUDAPluggableAllocator
