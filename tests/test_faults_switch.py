"""The hf runtime's test-only fault switch (HARNESS_HF_FAULT), and the scenario runner the fault
tests share: boot one real hf process per scenario, run every check in-process, keep the results."""
from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from harness.boot import cellrun
from harness.checks import CHECKS, CheckResult
from harness.config.cards import load_cards
from harness.config.matrix import Cell
from harness.errors import RuntimeStartError
from harness.reference.store import FAULT_ENV, REFERENCE_DIR_ENV, default_options
from harness.runtimes import hf_faults

pytestmark = pytest.mark.e2e
CHECK_NAMES = ("weight_parity", "logprob_parity", "accuracy")


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One booted hf runtime: a model cell plus the faults injected into it."""

    model: str
    fault: str = ""
    offload: str = "none"
    dtype: str = "float32"
    layout: str | None = None  # compare weights through this layout table (default: the runtime's)

    @property
    def cell(self) -> Cell:
        return Cell("hf", "cpu", self.model, self.offload, self.dtype)

    @property
    def id(self) -> str:
        return f"{self.cell.id}[{self.fault or 'clean'}]"


@dataclasses.dataclass(frozen=True)
class Outcome:
    results: dict[str, CheckResult]
    fingerprint: dict


class Outcomes:
    """Boot each scenario once, on first use; the checks run in-process through cellrun.run_check's parts."""

    def __init__(self, out_dir: Path) -> None:
        self.options = default_options(out_dir)
        self.cards = load_cards()
        self.done: dict[Scenario, Outcome] = {}

    def __call__(self, sc: Scenario) -> Outcome:
        if sc not in self.done:
            self.done[sc] = self._run(sc)
        return self.done[sc]

    def _run(self, sc: Scenario) -> Outcome:
        with _env(FAULT_ENV, sc.fault):
            rt = cellrun.boot(sc.cell, self.cards[sc.model], self.options)
        try:
            rt = dataclasses.replace(rt, weight_layout=sc.layout or rt.weight_layout)
            results = {name: _run_check(rt, name, self.options) for name in CHECK_NAMES}
            return Outcome(results, rt.fingerprint)
        finally:
            cellrun.shutdown(rt)


def _run_check(rt: cellrun.RunningRuntime, name: str, options) -> CheckResult:
    from harness.checks.base import CheckContext

    ctx = CheckContext(cell=rt.cell, card=rt.card, checkpoint=rt.checkpoint, client=rt.client,
                       weight_layout=rt.weight_layout, options=options)
    return CHECKS.get(name).run(ctx)


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    saved = os.environ.pop(name, None)
    if value:
        os.environ[name] = value
    try:
        yield
    finally:
        os.environ.pop(name, None)
        if saved is not None:
            os.environ[name] = saved


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> Iterator[Outcomes]:
    """One reference cache and one log directory per test module (xdist runs modules apart)."""
    root = tmp_path_factory.mktemp("faults")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(REFERENCE_DIR_ENV, str(root / "reference"))
        yield Outcomes(root / "out")


# ---- the switch itself ------------------------------------------------------------------------

def test_an_unknown_fault_is_a_boot_crash_that_lists_the_known_ones(tmp_path):
    card = load_cards()["tiny-llama"]
    with _env(FAULT_ENV, "moe_transposed"), pytest.raises(RuntimeStartError) as err:
        cellrun.boot(Cell("hf", "cpu", "tiny-llama", "none"), card, default_options(tmp_path))
    assert "unknown HARNESS_HF_FAULT fault(s) ['moe_transposed']; known: moe_expert_transposed" in err.value.log_tail


@pytest.mark.parametrize("offload", ["cpu_offload", "disk_offload"])
def test_faults_rewrite_offloaded_weights_where_the_forward_pass_reads_them(offload, tmp_path):
    import accelerate

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    x = torch.randn(3, 4)
    clean = model(x).detach()
    kwargs = {"offload_dir": str(tmp_path)} if offload == "disk_offload" else {}
    getattr(accelerate, offload)(model, execution_device=torch.device("cpu"), **kwargs)
    assert model[1].weight.device.type == "meta"
    before = hf_faults.locate(model, "1.weight")[0].clone()
    with torch.no_grad():
        hf_faults._modify(model, "1.weight", lambda t: t * 2)
        changed = model(x).detach()
    assert torch.equal(hf_faults.locate(model, "1.weight")[0], before * 2)
    assert not torch.allclose(changed, clean)


def test_views_and_faults_combine_but_two_views_do_not():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with pytest.raises(SystemExit, match="pick one of the views"):
        hf_faults.apply_faults(model, "sglang_layout,vocab_padding_garbage")
    with pytest.raises(SystemExit, match="this model has no MoE experts"):
        hf_faults.apply_faults(model, "moe_expert_transposed")
    assert hf_faults.apply_faults(model, "").label is None
