"""The server entry: imported at start on every platform."""
from reachrt.quant import gguf
