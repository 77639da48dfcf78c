"""call-time: imported inside TinyDsv4.__init__ (deepseek_v4_rope.py, 0.5.12.post1)."""

import tilelang


def precompute_freqs(n):
    return tilelang.compile(n)
