import os

if os.environ.get("FAKERT_FAST_SAMPLING"):
    # An environment switch is not a platform guard: on ROCm this still fails.
    from flashinfer import sampling
