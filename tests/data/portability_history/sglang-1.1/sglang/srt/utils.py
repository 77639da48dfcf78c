"""Platform predicates, as in sglang.srt.utils (bodies do not matter to the static check)."""


def is_cuda():
    return False


def is_hip():
    return False


def is_npu():
    return False


def is_xpu():
    return False


def is_cpu():
    return True
