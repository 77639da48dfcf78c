"""Per-runtime knowledge: packages to scan, accelerator-only imports, platform predicates."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from harness.portability.builds import MISSING_NAMES
from harness.portability.platforms import PlatformSet, platform_set
from harness.registry import Registry

_CUDA = frozenset({"cuda"})
_ROCM = frozenset({"rocm"})
_NPU = frozenset({"npu"})
_GPU = frozenset({"cuda", "rocm"})

# Where each accelerator-only package can be imported; a prefix match on the dotted name.
_ACCELERATOR_PACKAGES: dict[str, PlatformSet] = {
    "sgl_kernel": frozenset({"cuda", "rocm", "xpu", "cpu"}),
    "sgl_kernel_npu": _NPU,
    "torch_npu": _NPU,
    "torchair": _NPU,
    "mindspore": _NPU,
    "flashinfer": _CUDA,
    "deep_gemm": _CUDA,
    "deep_ep": _CUDA,
    "flash_mla": _CUDA,
    "cutlass": _CUDA,
    "cuda": _CUDA,
    "pynvml": _CUDA,
    "pplx_kernels": _CUDA,
    "nixl_ep": _CUDA,
    "xformers": _CUDA,
    "tensorrt_llm": _CUDA,
    "aiter": _ROCM,
    "mori": _ROCM,
    "wave_lang": _ROCM,
    "amdsmi": _ROCM,
    "triton_kernels": _GPU,
    "flash_attn": _GPU,
    "tilelang": _GPU,
    "cupy": _GPU,
    "vllm._C": _GPU,
    "intel_extension_for_pytorch": frozenset({"xpu", "cpu"}),
}

# Names (leading underscores stripped) whose truth value is exactly "running on these platforms".
_EXACT_PREDICATES: dict[str, PlatformSet] = {
    "is_cuda": _CUDA,
    "is_hip": _ROCM,
    "is_rocm": _ROCM,
    "is_npu": _NPU,
    "is_xpu": frozenset({"xpu"}),
    "is_cpu": frozenset({"cpu"}),
    "is_cuda_alike": _GPU,
    "is_musa": frozenset(),
    "is_hpu": frozenset(),
    "is_tpu": frozenset(),
    "is_neuron": frozenset(),
    "is_out_of_tree": _NPU,
    "TYPE_CHECKING": frozenset(),
    "typing.TYPE_CHECKING": frozenset(),
    "torch.version.hip": _ROCM,
    "torch.version.cuda": _CUDA,
    "torch.cuda.is_available": _GPU,
}

# A name token (fullmatch) that ties a predicate such as ``_use_aiter_gfx95`` to platforms.
# Adjacent tokens are also tried joined, so ``FlashInfer`` and ``deep_gemm`` match too.
_PLATFORM_TOKENS: dict[str, PlatformSet] = {
    r"cuda|sm\d+a?|blackwell|hopper|flashinfer|trtllm\w*|nvfp4|deepgemm": _CUDA,
    r"hip|rocm|aiter|gfx\d+|amd|fnuz|mori(ep)?": _ROCM,
    r"npu|ascend": _NPU,
    r"xpu": frozenset({"xpu"}),
    r"cpu|amx": frozenset({"cpu"}),
    r"musa|hpu|tpu": frozenset(),
}

# Platform words in module, class and function names. "cpu" is left out: in names
# such as ``copy_to_cpu`` it means host memory, not the CPU backend.
# Kernel families are named too: Marlin, CUTLASS, CuTe DSL, FlashMLA and FA3/FA4 are CUDA-only,
# Wave is ROCm-only, MindSpore runs on Ascend.
_NAME_TOKENS: dict[str, PlatformSet] = {
    **{k: v for k, v in _PLATFORM_TOKENS.items() if "cpu" not in k},
    r"amx": frozenset({"cpu"}),
    r"marlin|cutlass|cutedsl|flashmla|fa[34]|flash[34]": _CUDA,
    r"wave": _ROCM,
    r"mindspore": _NPU,
}

_DISPATCH_METHODS: dict[str, PlatformSet] = {
    "forward_cuda": _GPU,
    "forward_hip": _ROCM,
    "forward_npu": _NPU,
    "forward_xpu": frozenset({"xpu"}),
    "forward_cpu": frozenset({"cpu"}),
    "forward_musa": frozenset(),
    "forward_hpu": frozenset(),
}

_FIELD_DOCS = {
    "name": "runtime name, e.g. sglang",
    "distribution": "pip distribution whose version is reported",
    "packages": "dotted packages analysed by default",
    "entry_packages": "packages whose direct children the runtime imports on every platform",
    "start_modules": "modules the runtime imports at start on every platform (server entry points)",
    "follow_imports": "also analyse every in-tree module the analysed ones import, transitively",
    "platform_extras": "mapping extra of the runtime's distribution -> the platform it installs for (srt_npu: npu)",
    "platform_pyprojects": "mapping pyproject file of a checkout -> the platform its base dependencies are for",
    "distribution_imports": "mapping distribution -> the package it installs (nvidia-cutlass-dsl: cutlass)",
    "option_modules": "mapping module prefix -> the user choice it needs, e.g. '--quantization {name}'",
    "accelerator_packages": "mapping import prefix -> platforms where it imports",
    "missing_names": "mapping dotted name -> platforms whose build of its (importable) package lacks it",
    "exact_predicates": "mapping predicate name -> platforms where it is true",
    "platform_tokens": "mapping name-token regex -> platforms a predicate implies",
    "predicate_prefixes": "first tokens that make a name a predicate (is, use, ...)",
    "predicate_suffixes": "last tokens that make a name a predicate (available, ...)",
    "predicate_exclude": "tokens that stop a name being a predicate (graph, ...)",
    "name_exclude": "tokens that stop a module/class/function name hinting a platform",
    "predicate_receivers": "objects whose .is_x attributes are platform predicates",
    "dispatch_methods": "mapping method name -> platforms it is dispatched on",
    "dispatch_fallbacks": "mapping missing method -> method that runs instead",
    "name_tokens": "mapping name-token regex -> platforms for module/class/function names",
    "name_hints": "whether platform words in module, class and function names restrict their code",
}


@dataclasses.dataclass(frozen=True)
class RuntimeProfile:
    """What the analyser must know about one serving runtime."""

    name: str
    distribution: str
    packages: tuple[str, ...]
    accelerator_packages: Mapping[str, PlatformSet]
    entry_packages: tuple[str, ...] = ()
    start_modules: tuple[str, ...] = ()
    follow_imports: bool = True
    missing_names: Mapping[str, PlatformSet] = dataclasses.field(default_factory=dict)
    platform_extras: Mapping[str, str] = dataclasses.field(default_factory=dict)
    platform_pyprojects: Mapping[str, str] = dataclasses.field(default_factory=dict)
    distribution_imports: Mapping[str, str] = dataclasses.field(default_factory=dict)
    option_modules: Mapping[str, str] = dataclasses.field(default_factory=dict)
    exact_predicates: Mapping[str, PlatformSet] = dataclasses.field(
        default_factory=lambda: dict(_EXACT_PREDICATES)
    )
    platform_tokens: Mapping[str, PlatformSet] = dataclasses.field(
        default_factory=lambda: dict(_PLATFORM_TOKENS)
    )
    name_tokens: Mapping[str, PlatformSet] = dataclasses.field(
        default_factory=lambda: dict(_NAME_TOKENS)
    )
    predicate_prefixes: tuple[str, ...] = (
        "is", "use", "has", "enable", "supports", "support", "can", "should",
    )
    predicate_suffixes: tuple[str, ...] = ("supported", "available", "enabled")
    predicate_exclude: tuple[str, ...] = (
        "graph", "graphs", "capture", "capturing", "stream", "device",
    )
    name_exclude: tuple[str, ...] = ("graph", "graphs", "capture", "capturing")
    predicate_receivers: tuple[str, ...] = ("current_platform", "self", "platform")
    dispatch_methods: Mapping[str, PlatformSet] = dataclasses.field(
        default_factory=lambda: dict(_DISPATCH_METHODS)
    )
    dispatch_fallbacks: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: {"forward_hip": "forward_cuda"}
    )
    name_hints: bool = True

    @property
    def top_package(self) -> str:
        """The top-level package of the first analysed package."""
        return self.packages[0].split(".")[0]

    def available_on(self, module: str) -> tuple[str, PlatformSet] | None:
        """The accelerator package ``module`` belongs to and where it imports, if any."""
        best: str | None = None
        for prefix in self.accelerator_packages:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > len(best):
                    best = prefix
        return None if best is None else (best, self.accelerator_packages[best])

    def missing_on(self, name: str) -> tuple[str, PlatformSet] | None:
        """The listed name ``name`` is or lies under, and the platforms whose build lacks it, if any."""
        best = max((n for n in self.missing_names if name == n or name.startswith(n + ".")), key=len, default=None)
        return None if best is None else (best, self.missing_names[best])

    def with_overrides(self, data: Mapping[str, Any], *, source: str) -> RuntimeProfile:
        """A copy with fields replaced from a YAML mapping; mappings merge key by key."""
        unknown = sorted(set(data) - set(_FIELD_DOCS))
        if unknown:
            known = ", ".join(f"{k} ({v})" for k, v in _FIELD_DOCS.items())
            raise ValueError(f"{source}: unknown profile key(s) {unknown}; known keys: {known}")
        changes: dict[str, Any] = {}
        for key, value in data.items():
            current = getattr(self, key)
            where = f"{source}: {key}"
            if isinstance(current, Mapping):
                changes[key] = {**current, **_mapping(value, where, key in _PLAIN_MAPPINGS)}
            elif isinstance(current, tuple):
                changes[key] = tuple(_strings(value, where))
            elif isinstance(current, bool):
                changes[key] = _boolean(value, where)
            else:
                changes[key] = str(value)
        return dataclasses.replace(self, **changes)


_PLAIN_MAPPINGS = frozenset({"dispatch_fallbacks", "option_modules", "platform_extras", "platform_pyprojects",
                             "distribution_imports"})


def _mapping(value: Any, where: str, plain: bool) -> dict[str, Any]:
    """Validate a YAML mapping of name -> platforms (or name -> name when ``plain``)."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be a mapping, got {type(value).__name__}: {value!r}")
    if plain:
        return {str(k): str(v) for k, v in value.items()}
    return {str(k): platform_set(_strings(v, f"{where}.{k}"), what=f"{where}.{k}")
            for k, v in value.items()}


def _strings(value: Any, where: str) -> list[str]:
    """Validate a YAML list of strings."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where} must be a list of strings, got {value!r}")
    return value


def _boolean(value: Any, where: str) -> bool:
    """Validate a YAML boolean."""
    if not isinstance(value, bool):
        raise ValueError(f"{where} must be true or false, got {value!r}")
    return value


_SGLANG_OPTIONS = {
    "sglang.srt.layers.quantization": "a quantization method ({name})",
    "sglang.srt.layers.attention": "an attention backend ({name})",
    "sglang.srt.layers.moe": "a MoE runner ({name})",
    "sglang.srt.layers.deep_gemm_wrapper": "DeepGEMM (CUDA)",
    "sglang.srt.models": "a {name} model",
    "sglang.srt.speculative": "--speculative-algorithm ({name})",
    "sglang.srt.lora": "--enable-lora ({name})",
    "sglang.srt.disaggregation": "--disaggregation-mode ({name})",
    "sglang.srt.distributed": "a parallel setup ({name})",
}

# SGLang's per-platform dependency sets: extras of older wheels, pyproject files of a checkout.
_SGLANG_EXTRAS = {"srt": "cuda", "srt_hip": "rocm", "srt_npu": "npu", "srt_xpu": "xpu", "srt_cpu": "cpu"}
_SGLANG_PYPROJECTS = {"pyproject.toml": "cuda", "pyproject_npu.toml": "npu", "pyproject_xpu.toml": "xpu",
                      "pyproject_cpu.toml": "cpu", "pyproject_other.toml": ""}
_DISTRIBUTION_IMPORTS = {
    "flashinfer-python": "flashinfer", "nvidia-cutlass-dsl": "cutlass", "sglang-kernel": "sgl_kernel",
    "sgl-kernel": "sgl_kernel", "cuda-python": "cuda", "nvidia-ml-py": "pynvml", "flash-attn-4": "flash_attn",
    "torch-npu": "torch_npu", "amd-aiter": "aiter", "quack-kernels": "quack",
}

# The diffusion runtime (`sglang generate` / `sglang serve` with a diffusion model): its CLI
# (sglang/cli/generate.py and serve.py import multimodal_gen.runtime.entrypoints.cli.*), the server
# it launches, and the scheduler and GPU worker every generation runs through (0.5.8.post1 wheel).
_SGLANG_DIFFUSION_STARTS = (
    "sglang.multimodal_gen.runtime.entrypoints.cli.main", "sglang.multimodal_gen.runtime.launch_server",
    "sglang.multimodal_gen.runtime.entrypoints.diffusion_generator",
    "sglang.multimodal_gen.runtime.managers.scheduler", "sglang.multimodal_gen.runtime.managers.gpu_worker",
)

# Its model registry (multimodal_gen/runtime/models/registry.py) discovers every module of each
# component package under runtime/models and imports the ones a pipeline loads; every pipeline loads
# a DiT, a text encoder and a VAE, and (0.5.8.post1) all DiTs but the base import the shared layers.
_SGLANG_DIFFUSION_MODELS = tuple(f"sglang.multimodal_gen.runtime.models.{c}" for c in ("dits", "encoders", "vaes"))

# Installed packages add profiles through the ``harness.portability_profiles`` entry-point group
# (docs/extending.md); an unknown name is a KeyError too (UnknownEntryError), as it always was.
PROFILES: Registry[RuntimeProfile] = Registry("portability profile", protocol=RuntimeProfile,
                                              group="harness.portability_profiles", known="known runtimes")
PROFILES.register("sglang", RuntimeProfile(
    name="sglang",
    distribution="sglang",
    packages=("sglang.srt.models", "sglang.srt.layers"),
    # vllm is no dependency of sglang: GPU images ship it, a CPU/NPU/XPU install has none
    # ("No module named 'vllm'" from SGLang 0.5.23 on CPU, see RUNTIME-NOTES)
    accelerator_packages={**_ACCELERATOR_PACKAGES, "vllm": _GPU},
    missing_names=MISSING_NAMES,
    entry_packages=("sglang.srt.models", *_SGLANG_DIFFUSION_MODELS),
    start_modules=("sglang.launch_server", "sglang.srt.entrypoints.http_server", "sglang.srt.entrypoints.engine",
                   "sglang.srt.model_executor.model_runner", "sglang.srt.managers.scheduler",
                   "sglang.srt.managers.tp_worker", "sglang.srt.model_loader.loader", *_SGLANG_DIFFUSION_STARTS),
    option_modules=_SGLANG_OPTIONS,
    platform_extras=_SGLANG_EXTRAS,
    platform_pyprojects=_SGLANG_PYPROJECTS,
    distribution_imports=_DISTRIBUTION_IMPORTS,
))
PROFILES.register("vllm", RuntimeProfile(
    name="vllm",
    distribution="vllm",
    packages=("vllm.model_executor.models", "vllm.model_executor.layers"),
    entry_packages=("vllm.model_executor.models",),
    option_modules={"vllm.model_executor.layers.quantization": "a quantization method ({name})",
                    "vllm.model_executor.models": "a {name} model"},
    accelerator_packages={**_ACCELERATOR_PACKAGES, "vllm._C": _GPU, "vllm._moe_C": _GPU,
                          "vllm._rocm_C": _ROCM, "vllm._flashmla_C": _CUDA},
    dispatch_methods={**_DISPATCH_METHODS, "forward_oot": _NPU, "forward_tpu": frozenset()},
))
