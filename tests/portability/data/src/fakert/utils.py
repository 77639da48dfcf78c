"""Platform predicates, SGLang style; the platform comes from FAKERT_PLATFORM (default cpu)."""

import os


def _platform():
    return os.environ.get("FAKERT_PLATFORM", "cpu")


def is_cuda():
    return _platform() == "cuda"


def is_hip():
    return _platform() == "rocm"


def is_npu():
    return _platform() == "npu"


def is_cpu():
    return _platform() == "cpu"


def is_gfx95_supported():
    return is_hip() and os.environ.get("FAKERT_GFX") == "gfx950"
