"""Pure-torch stand-in for the parts of vLLM that SGLang 0.5.23 imports on a CPU-only
host without SGLANG_USE_CPU_ENGINE (sglang/srt/layers/rotary_embedding/base.py does
`from vllm._custom_ops import rotary_embedding` when is_cuda/is_hip/is_cpu/... are all
False). This is NOT vLLM. Putting this directory on PYTHONPATH changes the system under
test; a harness must say so in its report."""
__version__ = "0.0.0+harness-shim"
IS_HARNESS_SHIM = True
