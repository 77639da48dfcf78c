import deep_gemm
