"""A scanned layer that imports the allocator outside the scanned packages (as layers.dp_attention)."""

from sglang.srt.distributed.pynccl_allocator import use_symmetric_memory

__all__ = ["use_symmetric_memory"]
