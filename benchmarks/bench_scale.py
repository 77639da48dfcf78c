"""Weight parity at scale on every installed runtime: throughput against raw reads, coverage, memory, passes.

    python benchmarks/bench_scale.py                                  # llama-gqa and qwen3-moe-128, float32 and bfloat16
    python benchmarks/bench_scale.py --shapes llama-gqa --dtypes float32 --runtimes hf --json out.json
    python benchmarks/bench_scale.py --runtime-python sglang=/venvs/sglang/bin/python

For each shape x dtype it generates a random-weight checkpoint of real proportions in a temporary
directory (benchmarks/scale_models.py, in a subprocess: this process never imports torch). Then for
each runtime installed here (hf; SGLang on the CPU with its named workaround, benchmarks/scale_runtimes.py;
one that is absent is skipped with a line saying so) it reads the files once from the page cache to
measure the raw read throughput, boots the runtime on it (cell dtype = checkpoint dtype, no offload)
and runs the weight_parity check in this process ``--repeat`` times. Last, the time to obtain the
checkpoint's logprob reference (benchmarks/scale_reference.py). It prints and writes to JSON
(default benchmarks/results/<time>-<host>-scale.json):

- weight-parity throughput: checkpoint MB verified per second, and its ratio to the raw read;
- coverage (by value, by digest, not verified);
- peak RSS of this process during the check (VmHWM after resetting it) and of the runtime's process tree;
- each pass over the data (hf: transfer, checkpoint read, layout, compare; SGLang: the digests, the
  runtime's checksums and the harness's rebuild + sha256): seconds, MB/s, and the limit it is
  measured against in the same run (loopback socket, page-cache read, memcpy, sha256);
- the time to obtain the reference (hf-cpu float32), computed and then from the cache.

Targets are printed, never asserted: coverage 100 %, throughput >= 0.25 x raw read, harness peak
RSS <= 2 x the largest tensor it holds + 300 MB. The checkpoints are deleted at the end.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.scale_limits import descendants, limits, raw_read_mb_s, rss_mb, tree_peak_mb
from benchmarks.scale_reference import reference_time
from benchmarks.scale_runtimes import KNOWN, BenchRuntime, error_line, parse_pythons, remove_leftovers, resolve
from harness.boot import cellrun
from harness.boot.shmsweep import held_by, shm_names
from harness.boot.xferdir import MODE_ENV
from harness.checks import CHECKS, CheckContext
from harness.config.cards import ModelCard, load_cards
from harness.config.catalog import adhoc_card
from harness.config.matrix import Cell
from harness.errors import HarnessError
from harness.numerics.digestmemo import DIGEST_DIR_ENV
from harness.reference.store import REFERENCE_DIR_ENV
from harness.runtimes.client import weight_digests

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "benchmarks" / "results"
MB = 1e6
TARGETS = {"coverage": 1.0, "throughput_over_raw_read_min": 0.25, "harness_rss_over": "2 x largest tensor + 300 MB"}
ITEMSIZE = {"float32": 4, "bfloat16": 2}
MOE_LAYERS = {"float32": 4, "bfloat16": 8}  # >= 700 MB in both dtypes
ARCH = {"llama-gqa": "LlamaForCausalLM", "qwen3-moe-128": "Qwen3MoeForCausalLM",
        "qwen3-moe-128-tiny": "Qwen3MoeForCausalLM"}  # the tiny one: 6 MB, to try the benchmark itself


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python benchmarks/bench_scale.py", description=__doc__.splitlines()[0])
    p.add_argument("--shapes", default="llama-gqa,qwen3-moe-128", help=f"comma list of {', '.join(ARCH)}")
    p.add_argument("--dtypes", default="float32,bfloat16", help="comma list of float32, bfloat16")
    p.add_argument("--runtimes", default=",".join(KNOWN), help="comma list of %(default)s; one not installed is skipped")
    p.add_argument("--runtime-python", action="append", default=[], metavar="NAME=PATH",
                   help="interpreter of runtime NAME (default: $HARNESS_PYTHON_<NAME>, else the pinned venv)")
    p.add_argument("--no-reference", action="store_true", help="do not measure the time to obtain the reference")
    p.add_argument("--json", type=Path, default=None, help="output path (default benchmarks/results/<time>-<host>-scale.json)")
    p.add_argument("--work", type=Path, default=None, help="where to generate checkpoints (default: a temporary directory, deleted)")
    p.add_argument("--repeat", type=int, default=3, help="weight-parity runs per case on one booted runtime; the median is shown")
    p.add_argument("--transfer", choices=["shm", "socket"], default="shm",
                   help="shm: shared memory where possible (default); socket: always over HTTP (the fallback path)")
    args = p.parse_args(argv)
    bad = [s for s in args.shapes.split(",") if s not in ARCH] + \
          [d for d in args.dtypes.split(",") if d not in MOE_LAYERS] + \
          [r for r in args.runtimes.split(",") if r not in KNOWN]
    if args.repeat < 1:
        p.error(f"--repeat must be >= 1, got {args.repeat}")
    if bad:
        p.error(f"unknown shape, dtype or runtime {bad}; shapes: {', '.join(ARCH)}; dtypes: {', '.join(MOE_LAYERS)}; "
                f"runtimes: {', '.join(KNOWN)}")
    try:
        args.pythons = parse_pythons(args.runtime_python)
    except ValueError as exc:
        p.error(str(exc))
    return args


def generate(shape: str, dtype: str, out: Path) -> Path:
    tokenizer = cellrun.resolve_checkpoint(load_cards()["tiny-llama"], sys.executable)
    argv = [sys.executable, str(REPO / "benchmarks" / "scale_models.py"), "--shape", shape, "--dtype", dtype,
            "--tokenizer", str(tokenizer), "--out", str(out)]
    if shape == "qwen3-moe-128":
        argv += ["--layers", str(MOE_LAYERS[dtype])]
    subprocess.run(argv, check=True, capture_output=True, timeout=900)
    return out


def measure(runtime: BenchRuntime, card: ModelCard, dtype: str, ckpt: Path, out: Path, repeat: int = 3) -> dict[str, Any]:
    """Boot ``runtime`` on ``ckpt`` and time weight parity ``repeat`` times on it; every figure of
    the median run (peak RSS: the largest of all runs). A runtime that does not boot: its error line."""
    files = sorted(ckpt.glob("*.safetensors"))
    size = sum(f.stat().st_size for f in files)
    raw = raw_read_mb_s(files)
    cell = Cell(runtime.name, "cpu", card.name, "none", dtype)
    shm_before = shm_names()
    t0 = time.perf_counter()
    try:
        rt = cellrun.boot(cell, card, runtime.options(out))
    except HarnessError as exc:
        remove_leftovers(set(), shm_before)
        return {"runtime": runtime.name, "dtype": dtype, "status": "boot-error", "checkpoint_mb": size / MB,
                "error": error_line(getattr(exc, "log_tail", ""), str(exc)), "boot_s": time.perf_counter() - t0,
                "workarounds": list(runtime.workarounds), "load_avg_1m": os.getloadavg()[0]}
    boot_s = time.perf_counter() - t0
    runs = []
    try:
        ctx = CheckContext(cell=rt.cell, card=rt.card, checkpoint=rt.checkpoint, client=rt.client,
                           weight_layout=rt.weight_layout)
        for _ in range(repeat):
            before = rss_mb("self", "VmRSS")
            Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS, so the peak below is the check's
            t0 = time.perf_counter()
            result = CHECKS.get("weight_parity").run(ctx)
            runs.append((time.perf_counter() - t0, result, before, rss_mb("self", "VmHWM")))
        checksums_s = _runtime_checksums_s(rt.client)
        runtime_peak, processes = tree_peak_mb(rt.server.pid)
    finally:
        held = held_by(descendants(rt.server.pid))
        cellrun.shutdown(rt)
        left = remove_leftovers(held, shm_before)  # SGLang's /dev/shm files, which its killed processes do not unlink
    seconds, result, before, harness_peak = sorted(runs, key=lambda r: r[0])[len(runs) // 2]  # the median run
    case = figures(size, raw, seconds, boot_s, result, before, harness_peak, runtime_peak, ckpt, rt.weight_layout,
                   card.architecture, dtype)
    if case["passes"].get("digest") and checksums_s is not None:
        case["passes"]["digest"]["runtime_checksums_s"] = checksums_s
    case.update(runtime=runtime.name, dtype=dtype, runs_s=[round(r[0], 4) for r in runs],
                harness_peak_rss_mb=max(r[3] for r in runs),  # the worst run's, not the median's
                runtime_processes=processes, shm_left_by_runtime=left, workarounds=list(runtime.workarounds),
                load_avg_1m=os.getloadavg()[0])
    return case


def _runtime_checksums_s(client: Any) -> float | None:
    """Seconds the runtime takes to answer /weights_checker alone (None: it has none)."""
    if getattr(client, "weight_digests", None) is None:
        return None
    t0 = time.perf_counter()
    return None if weight_digests(client) is None else time.perf_counter() - t0


def rebuilt_bytes(ckpt: Any, layout: str, architecture: str | None, dtype: str) -> int:
    """The largest runtime tensor in ``dtype``, as a digest comparison rebuilds it from the checkpoint
    (SGLang's fused q/k/v, gate/up and 128-expert stacks): nothing is transferred to say its size."""
    from harness.numerics.layout import Layout
    from harness.numerics.layout_build import members_by_runtime, runtime_shape

    groups = members_by_runtime(Layout.load(layout), ckpt.names(), architecture).values()
    return max((math.prod(runtime_shape(members, ckpt.shape) or (0,)) for members in groups), default=0) * ITEMSIZE[dtype]


def figures(size: int, raw: float, seconds: float, boot_s: float, result: Any, before: float, harness_peak: float,
            runtime_peak: float, ckpt: Path, layout: str, architecture: str | None, dtype: str) -> dict[str, Any]:
    from harness.numerics.checkpoint import Checkpoint

    m, io = result.metrics, result.details["io"]
    c = Checkpoint(ckpt)
    largest_ckpt = max(c.nbytes(n) for n in c.names())
    largest_rt = io["largest_runtime_tensor_bytes"] or (rebuilt_bytes(c, layout, architecture, dtype)
                                                         if m["coverage_by_digest"] else 0)
    held = max(largest_ckpt, largest_rt)
    throughput = size / MB / seconds
    passes = {p: {"s": io[f"{p}_s"], "mb_s": (io["transferred_bytes"] if p == "transfer" else size) / MB / io[f"{p}_s"]
                  if io[f"{p}_s"] else None} for p in ("transfer", "checkpoint_read", "layout", "compare")}
    passes["transfer"]["busy_s"] = io["transfer_busy_s"]  # in the fetch thread; "s" is what the check waited
    if io.get("digest_s"):
        passes["digest"] = {"s": io["digest_s"], "mb_s": size * m["coverage_by_digest"] / MB / io["digest_s"]}
    return {"checkpoint_mb": size / MB, "tensors": len(c.names()),
            "status": result.status, "reason": result.reason[:300], "seconds": seconds, "boot_s": boot_s,
            "throughput_mb_s": throughput, "raw_read_mb_s": raw, "ratio": throughput / raw,
            "coverage": m["coverage"], "coverage_by_value": m["coverage_by_value"],
            "coverage_by_digest": m["coverage_by_digest"], "coverage_not_verified": m["coverage_not_verified"],
            "harness_rss_before_mb": before, "harness_peak_rss_mb": harness_peak, "runtime_peak_rss_mb": runtime_peak,
            "largest_checkpoint_tensor_mb": largest_ckpt / MB,
            "largest_runtime_tensor_mb": largest_rt / MB,
            "harness_rss_target_mb": 2 * held / MB + 300, "transferred_mb": io["transferred_bytes"] / MB,
            "transfer_format": io["transfer_format"], "passes": passes}


def show(case: dict[str, Any], lim: dict[str, float]) -> None:
    ok = lambda good: "meets" if good else "MISSES"  # noqa: E731
    head = f"\n== {case['runtime']} {case['shape']} {case['dtype']}: {case['checkpoint_mb']:.0f} MB"
    if case["status"] == "boot-error":
        print(f"{head}: did not boot ({case['boot_s']:.0f} s): {case['error']}")
        return
    extra = f", workarounds {', '.join(case['workarounds'])}" if case["workarounds"] else ""
    how = f"{case['transfer_format']} transfer" if case["transferred_mb"] else "no tensor transferred"
    print(f"{head}, {case['tensors']} tensors, {case['status']} ({how}{extra}), "
          f"boot {case['boot_s']:.1f} s")
    print(f"  weight parity      {case['seconds']:.2f} s = {case['throughput_mb_s']:.0f} MB/s; raw read "
          f"{case['raw_read_mb_s']:.0f} MB/s; ratio {case['ratio']:.2f} ({ok(case['ratio'] >= 0.25)} >= 0.25)")
    print(f"  runs               {', '.join(f'{r:.3f}' for r in case['runs_s'])} s (median shown; "
          f"load average {case['load_avg_1m']:.1f} on {os.cpu_count()} cpus)")
    print(f"  coverage           {case['coverage']:.1%} (by value {case['coverage_by_value']:.1%}, by digest "
          f"{case['coverage_by_digest']:.1%}, not verified {case['coverage_not_verified']:.1%}) "
          f"({ok(case['coverage'] >= 1.0)} 100 %)")
    largest_mb = max(case['largest_runtime_tensor_mb'], case['largest_checkpoint_tensor_mb'])
    print(f"  harness peak RSS   {case['harness_peak_rss_mb']:.0f} MB (before {case['harness_rss_before_mb']:.0f}); target "
          f"{case['harness_rss_target_mb']:.0f} MB = 2 x {largest_mb:.0f} MB "
          f"+ 300 ({ok(case['harness_peak_rss_mb'] <= case['harness_rss_target_mb'])})")
    print(f"  runtime peak RSS   {case['runtime_peak_rss_mb']:.0f} MB (model load included; sum of VmHWM over "
          f"{case['runtime_processes']} process{'es' if case['runtime_processes'] > 1 else ''})")
    show_passes(case, lim)


def show_passes(case: dict[str, Any], lim: dict[str, float]) -> None:
    shm = case["transfer_format"] == "shared-memory"  # one pwrite into warm tmpfs pages: a memcpy
    limit_of = {"transfer": ("memcpy" if shm else "loopback socket", lim["memcpy_mb_s" if shm else "loopback_mb_s"]),
                "checkpoint_read": ("page-cache read", case["raw_read_mb_s"]), "layout": ("memcpy", lim["memcpy_mb_s"]),
                "compare": ("memcpy", lim["memcpy_mb_s"]), "digest": ("sha256", lim["sha256_mb_s"])}
    for name, p in case["passes"].items():
        if not p["s"] and not case["transferred_mb"]:
            continue  # a pass this runtime does not take (SGLang by digest: no transfer, layout, compare)
        what, limit = limit_of[name]
        rate = f"{p['mb_s']:.0f} MB/s" if p["mb_s"] else "-"
        busy = f" (fetching {p['busy_s']:.2f} s, overlapped)" if p.get("busy_s") else ""
        if "runtime_checksums_s" in p:
            busy = (f" (runtime's /weights_checker alone {p['runtime_checksums_s']:.2f} s, the harness's rebuild + "
                    f"sha256 the rest)")
        print(f"  pass {name:<15} {p['s']:.2f} s  {rate:>12}  limit {what} {limit:.0f} MB/s{busy}")


def show_reference(ref: dict[str, Any]) -> None:
    print(f"  reference          {ref['cell']} ({ref['reference']}), {ref['prompts']} prompts x {ref['max_new_tokens']} "
          f"tokens, top-{ref['top_logprobs']}; preflight: needs ~{ref['preflight_need_mb']:.0f} MB")
    if ref["status"] == "refused":
        print(f"                     refused: {ref['reason']}")
        return
    print(f"                     {ref['total_s']:.1f} s to obtain (digest {ref['checkpoint_digest_s']:.2f} s, preflight "
          f"{ref['preflight_s']:.2f} s, boot + generate + stop + save {ref['obtain_s']:.1f} s); "
          f"from the cache after: {ref['cached_s'] * 1000:.0f} ms (load average {ref['load_avg_1m']:.1f})")


def run_shape(shape: str, dtype: str, runtimes: list[BenchRuntime], hf: BenchRuntime, work: Path,
              args: argparse.Namespace, lim: dict[str, float]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Every runtime's case on one generated checkpoint, then its reference; the checkpoint removed after."""
    ckpt = generate(shape, dtype, work / f"{shape}-{dtype}")
    card = adhoc_card(f"scale-{shape}-{dtype}", ckpt)
    cases, ref = [], None
    try:
        for runtime in runtimes:
            cases.append({"shape": shape, **measure(runtime, card, dtype, ckpt, work / "out", args.repeat)})
            show(cases[-1], lim)
        if not args.no_reference:
            timed = reference_time(card, ckpt, hf.options(work / "out"), work / "reference")
            ref = {"shape": shape, "dtype": dtype, **timed, "load_avg_1m": os.getloadavg()[0]}
            show_reference(ref)
    finally:
        shutil.rmtree(ckpt)
    return cases, ref


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ[MODE_ENV] = args.transfer  # read by harness/boot/xferdir.py when each runtime boots
    names = args.runtimes.split(",")
    found = resolve(list(dict.fromkeys(["hf", *names])), args.pythons)  # hf: also the reference's runtime
    skipped = [r.absent for r in found if r.python is None]
    measured = [r for r in found if r.python is not None and r.name in names]
    for line in skipped:
        print(line)
    lim = limits()
    print(f"limits measured here: loopback {lim['loopback_mb_s']:.0f} MB/s, memcpy {lim['memcpy_mb_s']:.0f} MB/s, "
          f"bitwise compare {lim['compare_mb_s']:.0f} MB/s, sha256 {lim['sha256_mb_s']:.0f} MB/s")
    work = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=args.work))
    (work / "tmp").mkdir()
    os.environ["TMPDIR"] = str(work / "tmp")  # runtimes' temporary files (SGLang's ipc sockets) go with the work dir
    tempfile.tempdir = None
    os.environ[DIGEST_DIR_ENV] = str(work / "digests")  # no memo of throw-away checkpoints left in ~/.cache
    os.environ[REFERENCE_DIR_ENV] = str(work / "reference")
    cases, refs = [], []
    try:
        for shape in args.shapes.split(","):
            for dtype in args.dtypes.split(","):
                got, ref = run_shape(shape, dtype, measured, found[0], work, args, lim)
                cases += got
                refs += [ref] if ref else []
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = args.json or RESULTS_DIR / f"{stamp}-{platform.node() or 'host'}-scale.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"schema": 2, "targets": TARGETS, "limits": lim, "cases": cases, "references": refs,
                                "skipped": skipped, "host": platform.node(), "when": stamp}, indent=2))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
