"""Fixed: tilelang is optional (deepseek_v4_rope.py, 0.5.13)."""

try:
    import tilelang
except ImportError:
    tilelang = None


def precompute_freqs(n):
    return tilelang.compile(n) if tilelang is not None else n
