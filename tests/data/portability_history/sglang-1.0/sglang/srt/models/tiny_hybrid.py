"""Model file reaching the conv wrapper through one in-tree import (as models/lfm2.py)."""

from sglang.srt.layers.conv import causal_conv1d_fn


class TinyHybrid:
    def forward(self, x):
        return causal_conv1d_fn(x)
