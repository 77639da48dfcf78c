"""The mode_active check's judgement of each runtime's own report, with fake runtimes (no boot)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness.checks import CHECKS
from harness.checks.base import CheckContext
from harness.config.cards import load_cards
from harness.config.matrix import Cell
from harness.config.matrixfile import MatrixFile, RuntimeOptions
from harness.reference.store import default_options
from harness.results import ResultRecord, ResultWriter

CARD = load_cards()["tiny-llama"]


def hf_info(resident: int, disk: int = 0, cpu: int = 0, dtypes=("float32",), moved: int = 0) -> dict:
    return {"offload_targets": ["disk"], "placement": {
        "params": 21, "offloaded_params": moved, "resident_bytes": {"cpu": resident},
        "offloaded_bytes": {"cpu": cpu, "disk": disk}, "offload_folder_bytes": None, "device_map": {},
        "dtypes": list(dtypes), "attention_backend": "sdpa", "memory": {"rss": 400 << 20}}}


class FakeClient:
    def __init__(self, info: dict) -> None:
        self.info = info

    def server_info(self) -> dict:
        return self.info


def run(info: dict, offload: str = "disk", runtime: str = "hf", dtype: str = "float32", options=None):
    cell = Cell(runtime, "cuda" if runtime != "hf" else "cpu", CARD.name, offload, dtype)
    ctx = CheckContext(cell=cell, card=CARD, checkpoint=Path("."), client=FakeClient(info),
                       weight_layout="transformers", options=options)
    return CHECKS.get("mode_active").run(ctx)


def test_an_inert_hf_offload_fails_naming_the_parameters_and_the_whole_model():
    r = run(hf_info(resident=492800))
    assert r.status == "fail"
    assert r.reason.startswith("mode-inactive: offload: disk asked, but no weights are offloaded to disk "
                               "(0 of 21 parameters; offloaded: cpu 0 B, disk 0 B); 481.2 KiB resident")
    assert "the whole model (481.2 KiB), as a no-offload cell holds it" in r.reason
    assert r.metrics["offloaded_bytes"] == 0 and r.details["evidence"]["asked_offload_targets"] == ["disk"]


def test_offloading_to_the_wrong_store_fails_and_the_right_one_passes():
    wrong = run(hf_info(resident=196864, cpu=295936, moved=18))
    assert wrong.status == "fail" and "disk asked, but no weights are offloaded to disk" in wrong.reason
    right = run(hf_info(resident=196864, disk=295936, moved=18))
    assert right.status == "pass" and right.metrics["offloaded_to_disk_bytes"] == 295936
    assert right.reason.startswith("offload disk active: 289.0 KiB offloaded (cpu 0 B, disk 289.0 KiB), "
                                   "192.2 KiB resident vs 481.2 KiB without offload")


def test_a_no_offload_cell_that_offloads_or_computes_in_another_dtype_fails():
    assert "none asked, but 289.0 KiB of weights are offloaded" in run(hf_info(196864, disk=295936), offload="none").reason
    r = run(hf_info(492800, dtypes=("bfloat16",)), offload="none")
    assert r.status == "fail" and "dtype: the cell asked float32, the runtime computes in bfloat16" in r.reason


def test_the_runs_own_no_offload_cell_is_the_baseline(tmp_path):
    options = default_options(tmp_path)
    base = ResultRecord(run_id="r", cell="sglang-cuda-tiny-llama-none", runtime="sglang", device="cuda", model=CARD.name,
                        offload="none", check="mode_active", status="pass", metrics={"resident_bytes": 2 << 30})
    ResultWriter(tmp_path / "results.jsonl").write(base)
    same = {"dtype": "float32", "attention_backend": "triton", "cpu_offload_gb": 4,
            "internal_states": [{"memory_usage": {"weight": 2.0}}]}
    r = run(same, offload="cpu_offload_gb:4", runtime="sglang", options=options)
    assert r.status == "fail" and "as much as the no-offload cell sglang-cuda-tiny-llama-none (2.0 GiB)" in r.reason
    less = {**same, "internal_states": [{"memory_usage": {"weight": 0.5}}]}
    ok = run(less, offload="cpu_offload_gb:4", runtime="sglang", options=options)
    assert ok.status == "pass" and ok.metrics["baseline_cell"] == "sglang-cuda-tiny-llama-none"


def test_a_weight_memory_below_the_figures_step_proves_nothing(tmp_path):
    options = default_options(tmp_path)
    base = ResultRecord(run_id="r", cell="sglang-cuda-tiny-llama-none", runtime="sglang", device="cuda", model=CARD.name,
                        offload="none", check="mode_active", status="pass", metrics={"resident_bytes": 0})
    ResultWriter(tmp_path / "results.jsonl").write(base)
    tiny = {"dtype": "float32", "internal_states": [{"memory_usage": {"weight": 0.0}}]}
    none = run(tiny, offload="none", runtime="sglang")
    assert none.status == "pass" and none.reason == "no offload: under 1.0 MiB of float32 weights resident"
    r = run(tiny, offload="cpu_offload_gb:4", runtime="sglang", options=options)
    assert r.status == "na" and "too little for sglang's weight memory figure (steps of 1.0 MiB)" in r.reason


def test_an_offload_the_runtime_gives_no_evidence_for_is_not_a_pass(tmp_path):
    sglang = run({"dtype": "float32", "internal_states": [{"memory_usage": {"weight": 0.5}}]}, offload="cpu_offload_gb:4",
                 runtime="sglang", options=default_options(tmp_path))
    assert sglang.status == "na" and "no passing no-offload cell of the model to compare it with" in sglang.reason
    vllm = run({"vllm_config": {"model_config": {"dtype": "torch.float32"}, "attention_config": {"backend": None}}},
               offload="cpu_offload_gb:4", runtime="vllm")
    assert vllm.status == "na" and vllm.reason == ("offload cpu_offload_gb:4 not proven: the vllm runtime reports neither "
                                                   "where its weights live nor their memory")
    assert vllm.metrics["runtime_dtypes"] == "float32"


def test_an_attention_backend_asked_for_must_be_the_one_reported(tmp_path):
    matrix = MatrixFile(tmp_path / "m.yaml", {}, {"sglang": RuntimeOptions(args=("--attention-backend", "fa3"))}, (), ())
    options = dataclasses.replace(default_options(tmp_path), matrix=matrix)
    r = run({"dtype": "float32", "attention_backend": "triton"}, offload="none", runtime="sglang", options=options)
    assert r.status == "fail" and "attention backend: --attention-backend fa3 asked, the runtime reports triton" in r.reason


@pytest.mark.parametrize("spec, inert", [("inert_offload", True), ("attn_scaled, inert_offload", True),
                                         ("attn_scaled", False), ("", False)])
def test_the_inert_offload_fault_is_a_known_load_fault(spec, inert):
    from harness.runtimes import hf_faults

    assert hf_faults.inert_offload(spec) is inert
