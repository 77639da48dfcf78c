"""overbroad-guard + unscanned: a deny-list admits cpu (mem_cache/memory_pool_host.py, 0.5.12.post1)."""

from sglang.srt.utils import is_npu, is_xpu

_is_npu = is_npu()
_is_xpu = is_xpu()

if not (_is_npu or _is_xpu):
    from sgl_kernel.kvcacheio import transfer_kv_all_layer


class HostPool:
    def backup(self, x):
        return transfer_kv_all_layer(x)
