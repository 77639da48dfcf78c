"""A model: the registry imports it on every platform."""
from reachrt.layers import attn, fast, norm

MODEL = (attn, fast, norm)
