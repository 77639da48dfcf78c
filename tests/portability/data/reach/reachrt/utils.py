"""Platform tests, as a runtime's utils module has them."""


def is_cuda():
    return False


def is_hip():
    return False


def is_npu():
    return False


def aiter_can_use_fast():
    """A platform test whose name does not say so: truthy only on ROCm."""
    if not is_hip():
        return False
    return True
