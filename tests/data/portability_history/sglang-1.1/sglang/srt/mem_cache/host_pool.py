"""Fixed: an allow-list (mem_cache/memory_pool_host.py, 0.5.13)."""

from sglang.srt.utils import is_cuda, is_hip

_is_cuda = is_cuda()
_is_hip = is_hip()

if _is_cuda or _is_hip:
    from sgl_kernel.kvcacheio import transfer_kv_all_layer


class HostPool:
    def backup(self, x):
        return transfer_kv_all_layer(x) if _is_cuda or _is_hip else x
