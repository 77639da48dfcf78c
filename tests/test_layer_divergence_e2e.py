"""The first divergent layer, end to end: real hf processes with a one-layer compute fault (the weights
untouched) on two architectures; logprob parity fails and names the faulted layer and block, a clean
bf16 cell names none, and the report shows where (its HTML parsed, not compared as a string)."""
from __future__ import annotations

import dataclasses
from html.parser import HTMLParser

import pytest

from harness.boot import cellrun
from harness.checks import CHECKS, CheckContext, CheckResult
from harness.config.cards import load_cards
from harness.config.matrix import Cell
from harness.reference.store import FAULT_ENV, REFERENCE_DIR_ENV, default_options, reference_dir
from harness.reports.builder import build_report
from harness.results import ResultRecord
from tests.htmlgrid import parse_report
from tests.reportruns import write_run
from tests.test_faults_switch import _env

pytestmark = pytest.mark.e2e
LLAMA, QWEN3 = "tiny-llama", "tiny-qwen3-moe"
# (model, fault, dtype, --layer-diff) -> (status, layer index, module) that must be named (None: none)
SCENARIOS: dict[tuple[str, str, str, str], tuple[str, int | None, str]] = {
    (LLAMA, "attn_output_scaled@1", "float32", "on-failure"): ("fail", 1, "attention"),
    (QWEN3, "mlp_output_scaled@0", "float32", "on-failure"): ("fail", 0, "moe"),
    (LLAMA, "", "bfloat16", "always"): ("pass", None, ""),
}


@dataclasses.dataclass(frozen=True)
class Outcomes:
    results: dict[tuple[str, str, str, str], tuple[Cell, CheckResult]]
    stored: list[str]  # the reference store's layer-state files after every scenario


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> Outcomes:
    """Each scenario booted once, its logprob parity run in-process; one reference store for all."""
    root = tmp_path_factory.mktemp("layerdiff")
    cards, done = load_cards(), {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(REFERENCE_DIR_ENV, str(root / "reference"))
        for (model, fault, dtype, mode) in SCENARIOS:
            options = dataclasses.replace(default_options(root / "out"), layer_diff=mode)
            cell = Cell("hf", "cpu", model, "none", dtype)
            with _env(FAULT_ENV, fault):
                rt = cellrun.boot(cell, cards[model], options)
            try:
                ctx = CheckContext(cell=cell, card=rt.card, checkpoint=rt.checkpoint, client=rt.client,
                                   weight_layout=rt.weight_layout, options=options)
                done[(model, fault, dtype, mode)] = (cell, CHECKS.get("logprob_parity").run(ctx))
            finally:
                cellrun.shutdown(rt)
        stored = sorted(p.name for p in reference_dir().glob("*.layers.npz"))
    return Outcomes(done, stored)


@pytest.mark.parametrize("scenario", list(SCENARIOS), ids=lambda s: f"{s[0]}[{s[1] or 'clean'}-{s[2]}]")
def test_the_named_layer_and_block_are_the_faulted_ones(outcomes, scenario):
    status, layer, module = SCENARIOS[scenario]
    _, r = outcomes.results[scenario]
    assert r.status == status, r.reason
    m = r.metrics
    assert (m["layer_index"], m["layer_module"]) == (layer, module), m["layer_divergence"]
    rows = r.details["layers"]
    departed = [row for row in rows if not row["within_tolerance"]]
    if layer is None:
        assert departed == [] and m["layer_divergence"].startswith("no layer departs beyond bfloat16 tolerance")
        assert m["layer_rel_error"] > 0  # bf16 really differs from the float32 reference, within tolerance
        return
    first = departed[0]
    assert (first["layer"], first["module"]) == (layer, module)
    assert first["rel_error"] == pytest.approx(0.05, rel=0.02)  # the fault's 1.05 scale, seen where it is applied
    before = rows[:rows.index(first)]
    assert before and all(row["rel_error"] == 0.0 for row in before)  # float32, same kernels: bit for bit
    assert f"first divergent layer: layer {layer} {'attention' if module == 'attention' else 'MoE'} output" in r.reason


def test_the_reference_states_are_captured_with_the_reference_and_reused(outcomes):
    llama = outcomes.results[(LLAMA, "attn_output_scaled@1", "float32", "on-failure")][1]
    bf16 = outcomes.results[(LLAMA, "", "bfloat16", "always")][1]
    # the faulted reference cell booted the clean reference for its answers; its states were stored then
    assert llama.metrics["reference_source"] == "computed" and llama.metrics["layer_reference_source"] == "cache"
    assert bf16.metrics["layer_reference_source"] == "cache"
    assert len(outcomes.stored) == 2  # one per model, nothing booted twice


def test_the_report_shows_where_each_cell_departs(outcomes, tmp_path):
    records = [ResultRecord(run_id="r1", cell=cell.id, runtime="hf", device="cpu", model=cell.model, offload="none",
                            dtype=cell.dtype, check="logprob_parity", status=r.status, reason=r.reason,
                            metrics=dict(r.metrics), details=dict(r.details))
               for cell, r in outcomes.results.values()]
    run = write_run(tmp_path / "run", records)
    html = build_report(run).read_text()
    report, tables = parse_report(html), LayerTables.of(html)
    llama = "hf-cpu-tiny-llama-none"
    assert report.figures[f"{llama}::logprob_parity"]["first divergent layer"].startswith("layer 1 attention output")
    first = next(row for row in tables[llama] if row["within tolerance"] == "no")
    assert (first["layer"], first["module"]) == ("1", "attention")
    qwen = next(row for row in tables["hf-cpu-tiny-qwen3-moe-none"] if row["within tolerance"] == "no")
    assert (qwen["layer"], qwen["module"]) == ("0", "moe")
    assert all(row["within tolerance"] == "yes" for row in tables[f"{llama}-bf16"])


class LayerTables(HTMLParser):
    """The ``layers`` detail table of every drill-down: cell -> rows as {column: text}."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[dict[str, str]]] = {}
        self._cell, self._in, self._row, self._cols, self._text = "", False, None, [], None

    @classmethod
    def of(cls, html: str) -> dict[str, list[dict[str, str]]]:
        parser = cls()
        parser.feed(html)
        return parser.tables

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "details" and "data-drill" in a:
            self._cell = a["data-drill"]
        elif tag == "table":
            self._in, self._cols = a.get("data-detail") == "layers", []
        elif tag == "tr" and self._in:
            self._row = []
        elif tag in ("th", "td") and self._in:
            self._text = ""

    def handle_data(self, data):
        if self._text is not None:
            self._text += data

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._in and self._text is not None:
            (self._cols if tag == "th" else self._row).append(self._text.strip())
            self._text = None
        elif tag == "tr" and self._in and self._row:
            self.tables.setdefault(self._cell, []).append(dict(zip(self._cols, self._row)))
            self._row = None
        elif tag == "table":
            self._in = False
