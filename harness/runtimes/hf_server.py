"""Reference runtime: HF transformers + accelerate behind a subset of SGLang's native HTTP API.

Run as a script by the runtime's own interpreter (it imports nothing from the harness):
    python hf_server.py --model DIR --device cpu --offload disk --port 30000
Endpoints: GET /health, GET /get_model_info, GET /get_server_info, POST /generate,
POST /get_weights_by_name (written into the harness's shared-memory region when offered one and
asked with ``Accept: application/x-tensor-region``; else raw bytes with ``Accept:
application/octet-stream``; else JSON), POST /release_tensor_region, POST /layer_states (per-layer
last-token hidden states of ``{"text": [...]}`` in binary, hf_layers.py). Binds 127.0.0.1 unless --host says otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch

try:  # run as a script: the sibling modules; imported as harness.runtimes.hf_server: the package's
    import hf_chaos  # test-only failure injection, inert unless HARNESS_HF_CHAOS is set
    import hf_faults  # test-only weight faults, inert unless HARNESS_HF_FAULT is set
    import hf_layers  # per-layer hidden states for POST /layer_states
    import hf_region  # tensors written into the harness's shared-memory region
except ImportError:  # pragma: no cover - depends on how this file is loaded
    from harness.runtimes import hf_chaos, hf_faults, hf_layers, hf_region

FAULT_ENV = hf_faults.FAULT_ENV

try:  # where the weights really live: the mode_active check's evidence (same two ways of loading as above)
    import hf_placement
except ImportError:  # pragma: no cover - depends on how this file is loaded
    from harness.runtimes import hf_placement


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "rocm", "npu", "xpu"])
    p.add_argument("--offload", default="none", choices=["none", "cpu", "disk"])
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--offload-dir", default=None)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--max-batch", type=int, default=64, metavar="N",
                   help="prompts of one request generated together, left-padded (1: one prompt at a time)")
    args = p.parse_args(argv)
    if args.max_batch < 1:
        p.error(f"--max-batch must be >= 1, got {args.max_batch}")
    return args


def torch_device(device: str) -> str:
    """The torch device string for a harness device name (visible-devices env picks the card)."""
    if device == "npu":
        import torch_npu  # noqa: F401  (registers the npu backend)
    return {"cpu": "cpu", "cuda": "cuda:0", "rocm": "cuda:0", "npu": "npu:0", "xpu": "xpu:0"}[device]


def offload_device_map(model_dir: str, exec_device: str, target: str) -> dict[str, str]:
    """Decoder layers go to ``target`` (cpu or disk); everything else stays on the device."""
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    with init_empty_weights():
        skeleton = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir))
    layers = max(
        (n for n, m in skeleton.named_modules() if isinstance(m, torch.nn.ModuleList)),
        key=lambda n: sum(p.numel() for p in skeleton.get_submodule(n).parameters()),
    )
    device_map: dict[str, str] = {}

    def walk(prefix: str, module: torch.nn.Module) -> None:
        for name, child in module.named_children():
            full = f"{prefix}{name}"
            if full == layers:
                assert isinstance(child, torch.nn.ModuleList), "layers names a ModuleList of the skeleton"
                device_map.update({f"{full}.{i}": target for i in range(len(child))})
            elif layers.startswith(full + "."):
                walk(full + ".", child)
            else:
                device_map[full] = exec_device

    walk("", skeleton)
    return device_map


def load_model(args: argparse.Namespace):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = getattr(torch, args.dtype)
    device = torch_device(args.device)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    # the test-only inert_offload fault loads everything onto the device yet keeps the device map it was
    # asked for, as a runtime that ignores its offload flag still reports it (the mode_active check's target)
    if args.offload == "none" or hf_faults.inert_offload(os.environ.get(FAULT_ENV, "")):
        # PreTrainedModel.to is wrapped by a decorator typed via functools.wraps, whose stub does not bind self
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype).to(device)  # type: ignore[arg-type]
        device_map = {"": device} if args.offload == "none" else offload_device_map(args.model, device, args.offload)
    else:
        device_map = offload_device_map(args.model, device, args.offload)
        args.offload_dir = args.offload_dir or tempfile.mkdtemp(prefix="hf-offload-")
        model = AutoModelForCausalLM.from_pretrained(
            args.model, dtype=dtype, device_map=device_map, offload_folder=args.offload_dir
        )
    model.eval()
    return model, tokenizer, device, device_map


def apply_fault(model, fault: str) -> hf_faults.FaultSet:
    """Test-only: corrupt the loaded weights in named ways (hf_faults.py; table in docs/numerics.md)."""
    faults = hf_faults.apply_faults(model, fault)
    for change in faults.applied:
        print(f"[hf_server] FAULT INJECTED ({FAULT_ENV}): {change}", file=sys.stderr, flush=True)
    if faults.view is not None:
        print(f"[hf_server] FAULT VIEW ({FAULT_ENV}): weights served in SGLang's layout", file=sys.stderr, flush=True)
    return faults


class Engine:
    """The loaded model, serialised behind one lock."""

    def __init__(self, args: argparse.Namespace) -> None:
        t0 = time.monotonic()
        self.args = args
        self.model, self.tokenizer, self.device, self.device_map = load_model(args)
        self.faults = apply_fault(self.model, os.environ.get(FAULT_ENV, ""))
        self.load_s = time.monotonic() - t0
        self.lock = threading.Lock()

    def generate(self, req: dict) -> list[dict] | dict:
        texts = req.get("text")
        single = isinstance(texts, str)
        prompts: list[str] = [texts] if isinstance(texts, str) else list(texts or [])
        sp = req.get("sampling_params") or {}
        max_new_tokens, top_k = int(sp.get("max_new_tokens", 16)), int(req.get("top_logprobs_num") or 0)
        size = self.args.max_batch
        with self.lock, torch.no_grad():
            out = [answer for i in range(0, len(prompts), size)
                   for answer in self._generate(prompts[i:i + size], max_new_tokens, top_k)]
        return out[0] if single else out

    def _generate(self, prompts: list[str], max_new_tokens: int, top_k: int) -> list[dict]:
        """Greedy answers of a batch in one ``generate`` call: left padding, masked.

        Tokens equal the one-prompt-at-a-time path; logprobs differ by float32 GEMM noise only
        (measured on the tiny zoo: chosen tokens <= 1.2e-7, top-k alternatives <= 7.2e-6, the
        same as running the one-prompt path with 2 threads instead of 1; docs/performance.md).
        """
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
        res = self.model.generate(
            **enc, do_sample=False, max_new_tokens=max_new_tokens, output_logits=True,
            return_dict_in_generate=True, pad_token_id=self.tokenizer.pad_token_id,
        )
        width = enc["input_ids"].shape[1]
        stops = _stop_ids(self.model.generation_config.eos_token_id)
        answers = []
        for row in range(len(prompts)):
            ids = _until_stop(res.sequences[row, width:].tolist(), stops)  # a finished row is padded after its stop
            answers.append(self._answer(ids, [step[row] for step in res.logits[:len(ids)]], top_k,
                                        int(enc["attention_mask"][row].sum())))
        return answers

    def _answer(self, ids: list[int], logits: list[torch.Tensor], top_k: int, prompt_tokens: int) -> dict:
        token_lps, top_lps = [], []
        for tok, step in zip(ids, logits, strict=True):  # logits are cut to len(ids) in _generate
            lp = torch.log_softmax(step.float(), dim=-1)
            token_lps.append([float(lp[tok]), tok, None])
            if top_k:
                vals, idx = lp.topk(top_k)
                top_lps.append([[float(v), int(i), None] for v, i in zip(vals, idx, strict=True)])
        return {
            "text": self.tokenizer.decode(ids, skip_special_tokens=True),
            "output_ids": ids,
            "meta_info": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(ids),
                "output_token_logprobs": token_lps,
                "output_top_logprobs": top_lps,
            },
        }

    def layer_states(self, req: dict) -> tuple[list[str], torch.Tensor]:
        """Point names and ``[prompts, points, hidden]`` float32 last-token outputs (hf_layers.py)."""
        texts = req.get("text")
        prompts = [texts] if isinstance(texts, str) else [str(t) for t in texts or ()]
        if not prompts:
            raise ValueError('POST /layer_states needs {"text": [prompt, ...]}, got no prompt')
        with self.lock:
            return hf_layers.capture(self.model, self.tokenizer, prompts, self.device)

    def weight(self, name: str, truncate: int | None) -> torch.Tensor | None:
        """The live tensor on the host, contiguous, in its own dtype (first ``truncate`` rows)."""
        with self.lock:
            t = self.faults.read(self.model, name, read_live_tensor)
        if t is None:
            return None
        t = t.detach().to("cpu")
        if truncate is not None and t.dim() >= 1:
            t = t[:truncate]
        return t.contiguous()

    def info(self) -> dict:
        import accelerate
        import transformers

        offloaded = sorted({v for v in self.device_map.values() if v in ("cpu", "disk")} - {self.device})
        return {
            "model_path": self.args.model, "is_generation": True, "device": self.args.device,
            "torch_device": self.device, "offload": self.args.offload, "dtype": self.args.dtype,
            "offload_targets": offloaded, "load_s": round(self.load_s, 3),
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                         "accelerate": accelerate.__version__, "python": sys.version.split()[0],
                         # a faulted server must never pass for a clean one: the fingerprint shows it
                         **({"hf_fault": self.faults.label} if self.faults.label else {})},
            "architectures": list(getattr(self.model.config, "architectures", None) or []),
            "fault": self.faults.label, "fault_changes": list(self.faults.applied),
            "weight_transfer": ["region", "raw", "json"],  # what /get_weights_by_name can answer (hf_region.py)
            "placement": hf_placement.placement(self.model, self.args.offload_dir, self.device),
        }


def _stop_ids(eos: int | list[int] | None) -> frozenset[int]:
    return frozenset([eos] if isinstance(eos, int) else (eos or ()))


def _until_stop(ids: list[int], stops: frozenset[int]) -> list[int]:
    """Generated ids up to and including the first stop token: ``[5, 2, 0, 0]`` -> ``[5, 2]`` (eos 2)."""
    for i, tok in enumerate(ids):
        if tok in stops:
            return ids[:i + 1]
    return ids


RAW_TYPE = "application/octet-stream"
LAYER_POINTS_HEADER = "X-Layer-Points"  # harness/reference/layerstates.py spells the same name
REGION_TYPE = "application/x-tensor-region"  # harness/numerics/tensorwire.py spells the same names
RAW_DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.float64: "F64",
              torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
              torch.bool: "BOOL"}


def raw_bytes(t: torch.Tensor):
    """A numpy view of a contiguous CPU tensor's memory (bf16 seen as int16: numpy has no bf16)."""
    return (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy()


def read_live_tensor(model: torch.nn.Module, name: str) -> torch.Tensor | None:
    """The value the model really computes with, also when accelerate parked it on meta/disk."""
    found = hf_faults.locate(model, name)
    return None if found is None else found[0]


def make_handler(engine: Engine) -> type[BaseHTTPRequestHandler]:
    writer = hf_region.RegionWriter()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # small JSON replies: no 40 ms delayed-ACK stall per request

        def log_message(self, fmt: str, *args) -> None:  # one short line per request on stderr
            sys.stderr.write(f"[hf_server] {self.command} {self.path} {args[1] if len(args) > 1 else ''}\n")

        def _send(self, code: int, payload) -> None:
            body = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _send_raw(self, t: torch.Tensor, region: object = None, headers: dict[str, str] | None = None) -> None:
            """The tensor's bytes as they are in memory, with its dtype and shape (harness/numerics/tensorwire.py):
            written into the harness's region when it offered one that fits, else in the body."""
            if t.dtype not in RAW_DTYPES:
                self._send(200, t.float().tolist())
                return
            data = memoryview(raw_bytes(t)).cast("B")
            offset = writer.write(region, data) if region is not None else None
            self.send_response(200)
            self.send_header("Content-Type", RAW_TYPE if offset is None else REGION_TYPE)
            self.send_header("Content-Length", str(len(data) if offset is None else 0))
            if offset is not None:
                self.send_header("X-Tensor-Offset", str(offset))
                self.send_header("X-Tensor-Bytes", str(len(data)))
            self.send_header("X-Tensor-Dtype", RAW_DTYPES[t.dtype])
            self.send_header("X-Tensor-Shape", ",".join(map(str, t.shape)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if offset is None:
                self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path in ("/health", "/ready"):
                self._send(200, {"status": "ok"})
            elif self.path in ("/get_model_info", "/get_server_info"):
                self._send(200, engine.info())
            else:
                self._send(404, {"error": f"no route {self.path}"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                req = json.loads(self.rfile.read(length) or b"{}")
                if self.path == "/generate":
                    hf_chaos.on_generate()
                    self._send(200, engine.generate(req))
                elif self.path == "/get_weights_by_name":
                    value = engine.weight(str(req.get("name")), req.get("truncate_size"))
                    if value is None:
                        self._send(400, {"error": f"no parameter named {req.get('name')!r}"})
                    elif RAW_TYPE in (accept := self.headers.get("Accept") or ""):
                        self._send_raw(value, req.get("region") if REGION_TYPE in accept else None)
                    else:  # JSON for clients that ask for it (SGLang's format)
                        self._send(200, value.float().tolist())
                elif self.path == "/layer_states":
                    points, states = engine.layer_states(req)
                    self._send_raw(states, headers={LAYER_POINTS_HEADER: ",".join(points)})
                elif self.path == "/release_tensor_region":
                    self._send(200, {"released": writer.release(str(req.get("path")))})
                else:
                    self._send(404, {"error": f"no route {self.path}"})
            except Exception as exc:  # report to the client; the server keeps serving
                self._send(500, {"error": f"{type(exc).__name__}: {exc}"})

    return Handler


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    visible = {k: v for k, v in os.environ.items() if k.endswith("_VISIBLE_DEVICES") or k == "ZE_AFFINITY_MASK"}
    print(f"[hf_server] device={args.device} offload={args.offload} dtype={args.dtype} visible={visible}", file=sys.stderr, flush=True)
    torch.manual_seed(0)
    thief = hf_chaos.before_serving(args.host, args.port)
    engine = Engine(args)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(engine))
    if thief is not None:
        thief.close()
    print(f"[hf_server] ready on http://{args.host}:{args.port} (load {engine.load_s:.1f}s)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
