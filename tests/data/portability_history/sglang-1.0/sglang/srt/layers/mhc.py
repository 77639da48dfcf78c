"""not-installed + transitive: tilelang is not packaged for Ascend (layers/mhc.py, 0.5.13.post1)."""

import tilelang


def mhc_pre(x):
    return tilelang.compile(x)
