"""An availability flag set right after the import it vouches for, tested before every use."""
from reachrt.utils import is_cuda

_is_cuda = is_cuda()
_rms_quant_available = False
if _is_cuda:
    try:
        from flashinfer.norm import rmsnorm_quant as _rms_quant

        _rms_quant_available = True
    except ImportError:
        _rms_quant_available = False


class RMSNorm:
    def forward_cuda(self, x, quant):
        if quant is not None and _rms_quant_available:
            return self.forward_fused(x)
        return x

    def forward_fused(self, x):
        return _rms_quant(x)  # line 22: its only call tests _rms_quant_available first


def checked(x):
    if not _rms_quant_available:
        return x
    return _rms_quant(x)  # line 28: after the early return the flag holds


def unchecked(x):
    return _rms_quant(x)  # line 32: nothing tests the flag
