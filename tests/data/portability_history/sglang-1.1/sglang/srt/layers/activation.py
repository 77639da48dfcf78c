"""Fixed: no vllm fallback (layers/activation.py, 0.5.8)."""


class SiluAndMul:
    pass
