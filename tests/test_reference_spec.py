"""The configurable reference cell: the matrix file's `reference:`, the cache key, where an entry came from, the figure."""
from __future__ import annotations

import dataclasses
import platform
from pathlib import Path

import pytest

from harness.config.matrixfile import MatrixFile
from harness.config.refspec import DEFAULT_REFERENCE, ReferenceSpec
from harness.errors import ConfigError
from harness.reference.store import (
    ReferenceRequest,
    ReferenceStore,
    default_options,
    obtain,
    origin,
    reference_cell,
    reference_spec,
)
from harness.reports.builder import ReportInputs, render_run
from harness.runtimes.client import Generation
from tests.htmlgrid import parse_report
from tests.reportruns import TODAY, rec, write_run

GEN = Generation("p", " Paris.", (5,), (-0.01,), (((5, -0.01),),))


def load(tmp_path: Path, text: str, name: str = "m.yaml") -> MatrixFile:
    (tmp_path / name).write_text(text)
    return MatrixFile.load(tmp_path / name)


def test_without_a_reference_block_the_tiny_zoo_keeps_hf_cpu_float32(tmp_path):
    matrix = load(tmp_path, "runtimes: [hf]\n")
    assert matrix.reference is None
    options = dataclasses.replace(default_options(tmp_path), matrix=matrix)
    assert reference_spec(options) == DEFAULT_REFERENCE and reference_spec(None) == DEFAULT_REFERENCE
    assert reference_cell("tiny-llama", reference_spec(options)).id == "hf-cpu-tiny-llama-none"


def test_a_reference_block_sets_the_cell_and_omitted_fields_keep_the_default(tmp_path):
    matrix = load(tmp_path, "reference: {device: npu, dtype: bfloat16}\n")
    assert matrix.reference == ReferenceSpec("hf", "npu", "bfloat16", "none")
    assert reference_cell("glm", matrix.reference).id == "hf-npu-glm-none-bf16"
    assert matrix.reference.label == "hf-npu bfloat16"


def test_an_included_files_reference_applies_unless_the_child_sets_its_own(tmp_path):
    load(tmp_path, "reference: {offload: disk}\n", "base.yaml")
    assert load(tmp_path, "include: base.yaml\n").reference == ReferenceSpec(offload="disk")
    assert load(tmp_path, "include: base.yaml\nreference: {dtype: float16}\n").reference == ReferenceSpec(dtype="float16")


@pytest.mark.parametrize("text, says", [
    ("reference: hf-cpu\n", "'reference' is a mapping of ['runtime', 'device', 'dtype', 'offload'], got 'hf-cpu'"),
    ("reference: {devcie: cpu}\n", "unknown reference field(s) ['devcie']"),
    ("reference: {device: tpu}\n", "reference.device 'tpu' is not a device; known: cpu, cuda"),
    ("reference: {dtype: fp8}\n", "reference.dtype 'fp8' is not a dtype; known: float32, bfloat16, float16"),
])
def test_a_bad_reference_block_names_the_file_the_field_and_the_value(tmp_path, text, says):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, text)
    assert says in str(err.value) and str(tmp_path / "m.yaml") in str(err.value)


def test_the_cache_key_depends_on_the_reference_cell():
    req = ReferenceRequest(("p",), 6, 5)
    keys = {req.key("d", spec) for spec in (DEFAULT_REFERENCE, ReferenceSpec(dtype="bfloat16"),
                                             ReferenceSpec(device="cuda"), ReferenceSpec(offload="disk"))}
    assert len(keys) == 4 and req.key("d") == req.key("d", DEFAULT_REFERENCE)


def test_an_entry_says_whether_it_was_computed_here_or_imported(tmp_path):
    store, spec = ReferenceStore(tmp_path), ReferenceSpec(dtype="bfloat16")
    first = obtain(store, "m", "k" * 64, own=None, compute=lambda: [GEN], spec=spec)
    assert (first.source, first.cell) == ("computed", "hf-cpu-m-none-bf16")
    assert first.origin == "computed here on hf-cpu bfloat16"
    again = obtain(store, "m", "k" * 64, own=None, compute=list, spec=spec)
    assert (again.source, again.origin) == ("cache", "computed here on hf-cpu bfloat16")
    made = {"host": "gpu-7", "harness": "0.9.0", "created": "2026-01-05T10:00:00Z"}
    store.save("m", "g" * 64, [GEN], {"source": "golden", "producer": made})
    golden = obtain(store, "m", "g" * 64, own=list, compute=list)
    assert (golden.source, golden.origin) == ("golden", "golden imported from gpu-7 (harness 0.9.0, 2026-01-05)")
    assert golden.generations == (GEN,)
    elsewhere = origin({"source": "computed", "producer": {"host": platform.node() + "-other"}}, DEFAULT_REFERENCE)
    assert elsewhere == f"computed on {platform.node()}-other on hf-cpu float32"


def test_the_report_figure_names_the_reference_cell_and_where_it_came_from(tmp_path):
    metrics = {"max_abs_delta": 0.0, "reference_source": "golden", "reference_s": 0.0, "reference_cell": "hf-cpu-m-none",
               "reference_origin": "golden imported from gpu-7 (harness 0.9.0, 2026-01-05)"}
    computed = {**metrics, "reference_source": "computed", "reference_s": 4.2,
                "reference_origin": "computed here on hf-cpu float32"}
    run = write_run(tmp_path / "latest", [rec("hf-cpu-m-disk", "logprob_parity", "pass", metrics=metrics),
                                          rec("hf-npu-m-none", "logprob_parity", "pass", metrics=computed)])
    page = parse_report(render_run(ReportInputs(run_dir=run, today=TODAY, environ={})).index.read_text())
    assert page.figures["hf-cpu-m-disk::logprob_parity"]["reference"] == \
        "hf-cpu-m-none, golden imported from gpu-7 (harness 0.9.0, 2026-01-05)"
    assert page.figures["hf-npu-m-none::logprob_parity"]["reference"] == \
        "hf-cpu-m-none, computed here on hf-cpu float32 · booted by this check in 4.2 s"
