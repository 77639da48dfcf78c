"""The fault suite: runtimes crash, hang, die and leak on new hardware; the harness must lose nothing.

Failures are injected into the real hf runtime with HARNESS_HF_CHAOS (harness/runtimes/hf_chaos.py).
After every scenario: no process of the run left, no lease held, every results line intact
(the `scenario` fixture checks and records it; tests/conftest.py prints the one-line summary).
"""
from __future__ import annotations

import ast
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.boot.leases import acquire
from tests.faultsuite import SCENARIO_PROPERTY, harness, leaked, leases_held, lines_lost, records
from tests.htmlgrid import parse_report

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parent.parent
SECRET = "hf_SECRETsecret1234567890"
CHAOS = ("hf-cpu-tiny-llama-none=crash_on_boot;hf-cpu-tiny-llama-disk=kill_on_generate;"
         "hf-cpu-tiny-qwen2-moe-disk=oom_on_generate")


@pytest.fixture
def scenario(request, tmp_path):
    """Yields the run directory; afterwards checks leaks and lost results and records them."""
    out = tmp_path / "run"
    yield out
    procs, held, lost = leaked(out), leases_held(tmp_path / "leases"), lines_lost(out)
    request.node.user_properties.append((SCENARIO_PROPERTY, {"lost": lost, "leaked": len(procs), "held": len(held)}))
    assert (procs, held, lost) == ([], [], 0)


@pytest.fixture(scope="module")
def chaos_run(tmp_path_factory):
    """One run of four cells: crash on boot, SIGKILL mid-check, OOM kill, and a healthy one."""
    out = tmp_path_factory.mktemp("chaos") / "run"
    done = harness(out, "--models", "tiny-llama,tiny-qwen2-moe", "--offload-modes", "none,disk",
                   "--lease-dir", str(out.parent / "leases"), "-o", "junit_suite_name=https://bob:hunter2pass@ci.example/x",
                   env={"HARNESS_HF_CHAOS": CHAOS, "HF_TOKEN": SECRET, "MY_SERVICE_KEY": "sk-very-secret-value-42"})
    return done, out


def test_boot_crash_is_a_red_cell_with_its_log_tail(chaos_run, scenario):
    done, out = chaos_run
    assert done.returncode == 1 and (out / "index.html").exists()
    for check in ("accuracy", "weight_parity", "logprob_parity"):
        r = records(out)[("hf-cpu-tiny-llama-none", check)]
        assert r["status"] == "error" and r["reason"] == "boot-crash: ModuleNotFoundError: No module named 'sgl_kernel' (exit code 3)"
        assert "No module named 'sgl_kernel'" in r["log_tail"]
    assert leaked(out) == []


def test_sigkill_mid_check_is_request_error_with_the_cause(chaos_run, scenario):
    _, out = chaos_run
    r = records(out)[("hf-cpu-tiny-llama-disk", "accuracy")]
    assert r["status"] == "error" and r["reason"].startswith("request-error:")
    assert "the runtime process died (signal SIGKILL" in r["reason"]


def test_oom_kill_is_shown_as_such(chaos_run, scenario):
    _, out = chaos_run
    r = records(out)[("hf-cpu-tiny-qwen2-moe-disk", "accuracy")]
    assert r["status"] == "error" and "SIGKILL (killed by SIGKILL: often the kernel's OOM killer" in r["reason"]
    assert "Out of memory" in r["log_tail"]


def test_next_cells_are_unaffected(chaos_run, scenario):
    _, out = chaos_run
    recs = records(out)
    assert {recs[("hf-cpu-tiny-qwen2-moe-none", c)]["status"] for c in ("accuracy", "weight_parity")} == {"pass"}


def test_markup_from_logs_is_inert_in_the_report(chaos_run, scenario):
    _, out = chaos_run
    html = (out / "index.html").read_text()
    assert "<script>alert('log')</script>" not in html and parse_report(html).scripts == 0
    assert "alert(&#39;log&#39;)" in html or "alert(&#x27;log&#x27;)" in html


def test_secrets_never_reach_results_manifest_or_report(chaos_run, scenario):
    _, out = chaos_run
    for name in ("results.jsonl", "manifest.json", "index.html", "summary.md", "junit.xml"):
        text = (out / name).read_text() if (out / name).exists() else ""
        assert SECRET not in text and "hunter2pass" not in text and "sk-very-secret-value-42" not in text, name
    assert "hunter2pass" not in json.dumps(json.loads((out / "manifest.json").read_text())["argv"])


def test_never_ready_is_boot_timeout_and_the_tree_is_gone(scenario):
    done = harness(scenario, "--models", "tiny-llama", "--offload-modes", "none", "--boot-timeout", "6",
                   env={"HARNESS_HF_CHAOS": "*=hang_on_boot"})
    r = records(scenario)[("hf-cpu-tiny-llama-none", "accuracy")]
    assert done.returncode == 1 and r["reason"].startswith("boot-timeout:") and "after 6s" in r["reason"]


def _hold_forever(lease_dir: str) -> None:
    acquire("npu", 1, 1, "killed-run", lease_dir=Path(lease_dir))
    time.sleep(3600)


def test_taken_port_and_stale_lease_are_recovered(scenario, tmp_path):
    holder = mp.get_context("spawn").Process(target=_hold_forever, args=(str(scenario / ".leases"),))
    holder.start()
    lock = scenario / ".leases" / "npu" / "0.lock"
    deadline = time.time() + 60
    while time.time() < deadline and not (lock.exists() and lock.stat().st_size):
        time.sleep(0.1)
    assert lock.stat().st_size, "the holder never took its lease"
    os.kill(holder.pid, signal.SIGKILL)  # a killed run's lease file stays on disk, unlocked
    holder.join()
    state = tmp_path / "chaos-state"
    state.mkdir()
    done = harness(scenario, "--devices", "npu", "--simulate-devices", "npu:1", "--models", "tiny-llama",
                   "--offload-modes", "none", "--lease-dir", str(tmp_path / "leases"),
                   env={"HARNESS_HF_CHAOS": "*=port_taken_once", "HARNESS_HF_CHAOS_STATE": str(state)})
    log = (scenario / "logs" / "hf-npu-tiny-llama-none.log").read_text()
    # recovered: every check passes; the verdict is NO-GO only because simulated results never count
    assert {r["status"] for r in records(scenario).values()} == {"pass"}, done.stdout[-3000:] + log[-3000:]
    assert done.returncode == 1 and "simulated devices never count" in done.stdout
    assert "Address already in use" in log and log.count("[hf_server] ready on") == 1, log[-3000:]


def test_ctrl_c_keeps_results_renders_interrupted_and_leaves_nothing(scenario):
    cmd = [sys.executable, "-m", "harness.cli", "run", "--out", str(scenario), "--devices", "cpu",
           "--models", "tiny-llama,tiny-qwen2-moe,tiny-qwen3-moe", "--offload-modes", "none,disk"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    results = scenario / "results.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (results.exists() and results.read_text().count("\n") >= 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    manifest = json.loads((scenario / "manifest.json").read_text())
    assert manifest["status"] == "interrupted", output[-2000:]
    assert len(records(scenario)) >= 2 and (scenario / "index.html").exists()
    assert parse_report((scenario / "index.html").read_text()).verdict.startswith("NO-GO")


def test_broken_inputs_give_one_clear_error(scenario, tmp_path):
    bad = tmp_path / "m.yaml"
    bad.write_text("devices: [cpu]\nmodels: [tiny-llama\n")
    done = harness(scenario, "--matrix", str(bad))
    assert done.returncode == 2 and f"{bad}: line" in done.stderr and "not valid YAML" in done.stderr  # bad input
    done = harness(scenario, "--models", "llama-9000", "--devices", "tpu")
    assert done.returncode == 2 and "known: cpu, cuda, npu, rocm, xpu" in done.stderr
    run = tmp_path / "old"
    run.mkdir()
    (run / "manifest.json").write_text('{"run_id": "r0", "status": "complete"}')
    (run / "results.jsonl").write_text('{"run_id": "r0", "cell": "hf-cpu-m-none", "runtime": "hf", "device": "cpu", '
                                       '"model": "m", "offload": "none", "check": "accuracy", "status": "pass"}\n{"run_id": "r0", "ce')
    done = subprocess.run([sys.executable, "-m", "harness.cli", "report", str(run)], capture_output=True, text=True)
    assert done.returncode in (0, 1) and (run / "index.html").exists()
    assert "line 2" in (run / "index.html").read_text()


def test_bad_model_path_or_missing_tokenizer_is_a_red_cell(scenario, tmp_path):
    root = tmp_path / "models"
    model = root / "Llama-3.1-8B-Instruct"
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"],
                                                   "hidden_size": 64, "num_attention_heads": 2, "num_hidden_layers": 1,
                                                   "intermediate_size": 64, "vocab_size": 32}))
    done = harness(scenario, "--models", "llama-3.1-8b-instruct", "--offload-modes", "none",
                   env={"HARNESS_MODEL_ROOT": str(root)})
    r = records(scenario)[("hf-cpu-llama-3.1-8b-instruct-none", "accuracy")]
    assert done.returncode == 1 and r["status"] == "error" and r["reason"].startswith("boot-crash")
    assert "Traceback" in r["log_tail"]


def test_servers_bind_loopback_and_nothing_runs_a_shell(scenario):
    offenders = []
    for path in [*REPO.glob("harness/**/*.py"), *REPO.glob("models/**/*.py"), *REPO.glob("reports/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                        offenders.append(f"{path}:{node.lineno}")
                if getattr(node.func, "attr", "") in ("system", "popen") and getattr(node.func.value, "id", "") == "os":
                    offenders.append(f"{path}:{node.lineno}")
    assert offenders == []
    from harness.boot.cellrun import HOST
    from harness.runtimes.hf_server import parse_args

    assert HOST == "127.0.0.1" and parse_args(["--model", "m", "--port", "1"]).host == "127.0.0.1"
