import flashinfer

fused = flashinfer
