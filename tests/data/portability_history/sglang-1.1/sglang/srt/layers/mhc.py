"""Fixed: tilelang is optional (layers/mhc.py, 0.5.14)."""

try:
    import tilelang
except ImportError:
    tilelang = None


def mhc_pre(x):
    if tilelang is None:
        raise RuntimeError("mhc_pre needs tilelang")
    return tilelang.compile(x)
