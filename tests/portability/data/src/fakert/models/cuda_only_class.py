from fakert.utils import is_cuda

_is_cuda = is_cuda()


class CudaOnlyDispatcher:
    def __init__(self):
        if not _is_cuda:
            raise RuntimeError("this dispatcher needs CUDA")
        self.group = "nccl"

    def dispatch(self, x):
        return self.group, x  # no instance exists off CUDA, so this read is fine
