"""A model file saved with a UTF-8 byte-order mark."""
from flashinfer import sampling
