"""Imported on every platform at start; reaches mem_cache.host_pool (as scheduler > hisparse_coordinator)."""

from sglang.srt.mem_cache.host_pool import HostPool

SCHEDULER_POOL = HostPool
