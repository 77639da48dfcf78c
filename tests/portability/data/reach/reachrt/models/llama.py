"""A model: the registry imports it on every platform."""
from reachrt.layers import aiter_norm, attn, fast, norm

MODEL = (aiter_norm, attn, fast, norm)
