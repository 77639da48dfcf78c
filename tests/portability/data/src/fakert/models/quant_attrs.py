from fakert.utils import is_gfx95_supported, is_hip

_is_hip = is_hip()
_is_gfx95_supported = is_gfx95_supported()


class Attention:
    def __init__(self):
        self.scale = 1.0
        if _is_gfx95_supported:
            self._gfx95_quant_format = "mxfp4"

    def forward(self, x):
        return x * self.scale, self._gfx95_quant_format


class AttentionBothBranches:
    def __init__(self):
        if _is_hip:
            self.quant_format = "fnuz"
        else:
            self.quant_format = None

    def forward(self, x):
        return x, self.quant_format


class AttentionGuardedRead:
    def __init__(self):
        if _is_gfx95_supported:
            self._gfx95_quant_format = "mxfp4"

    def forward(self, x):
        if _is_gfx95_supported:
            return x, self._gfx95_quant_format
        if hasattr(self, "_gfx95_quant_format"):
            return x, self._gfx95_quant_format
        return x, None
