"""A diffusion DiT: the diffusion model registry imports it (runtime/models/dits/*.py), and it imports the layer."""

from sglang.multimodal_gen.activation import swiglu


class TinyDiT:
    def forward(self, x):
        return swiglu(x)
