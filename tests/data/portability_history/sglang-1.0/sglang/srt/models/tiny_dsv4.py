"""Model file: mhc at module level, rope inside __init__ (as models/deepseek_v4.py)."""

from sglang.srt.layers.mhc import mhc_pre


class TinyDsv4:
    def __init__(self):
        from sglang.srt.layers.rope import precompute_freqs

        self.freqs = precompute_freqs(8)

    def forward(self, x):
        return mhc_pre(x)
