"""Fixed: the private pool APIs are reached through torch._C at the call site (0.5.19)."""

import torch
from torch.cuda.memory import CUDAPluggableAllocator


def use_symmetric_memory(pool):
    torch._C._cuda_beginAllocateCurrentThreadToPool(0, pool)
    return CUDAPluggableAllocator
