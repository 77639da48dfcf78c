"""The report in a real headless Chromium: verdict first, grid visible, drill-down opens, no console errors.

Needs the `playwright` Python package (its bundled driver only; never `playwright install`) and a
Chromium on the machine (Debian: `apt-get install chromium`; elsewhere set HARNESS_CHROMIUM). The
screenshot is a CI artifact: $HARNESS_ARTIFACTS/report.png (default reports/artifacts/).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness.reports.builder import ReportInputs, render_run
from tests.reportruns import TODAY, nightly_pair, rec, write_run

REPO = Path(__file__).resolve().parent.parent
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium() -> str:
    given = os.environ.get("HARNESS_CHROMIUM")
    found = given or next((p for p in map(shutil.which, CANDIDATES) if p), None)
    if not found or not Path(found).exists():
        pytest.skip("no Chromium found: install it (Debian/Ubuntu: apt-get install -y chromium) "
                    "or point HARNESS_CHROMIUM at a Chrome/Chromium binary")
    return found


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed: pip install playwright "
        "(the Python package only; it drives the system Chromium, no `playwright install` needed)")
    exe = chromium()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
        yield b
        b.close()


@pytest.fixture
def report(tmp_path) -> Path:
    _, now = nightly_pair(tmp_path)
    return render_run(ReportInputs(run_dir=now, today=TODAY, environ={})).index


@pytest.fixture
def default_like_report(tmp_path) -> Path:
    """Like the default run: 4 tiny models ran on the CPU, 4 real ones skipped everywhere, no CUDA or NPU device."""
    records = []
    for model in ("tiny-llama", "tiny-qwen2-moe", "tiny-qwen3-moe", "tiny-glm4-moe-lite", "glm-4.7-flash",
                  "deepseek-v2-lite", "qwen3-30b-a3b", "llama-3.1-8b-instruct"):
        for device in ("cpu", "cuda", "npu"):
            for offload in ("none", "cpu", "disk"):
                cell = f"hf-{device}-{model}-{offload}"
                for check in ("accuracy", "weight_parity", "logprob_parity"):
                    if device == "cpu" and offload == "cpu":
                        records.append(rec(cell, check, "na", reason="cpu offload means nothing on the cpu"))
                    elif not model.startswith("tiny"):
                        records.append(rec(cell, check, "skipped", reason=f"model {model} needs a local checkpoint: "
                                                                          "set HARNESS_MODEL_ROOT"))
                    elif device != "cpu":
                        records.append(rec(cell, check, "skipped", reason=f"no {device.upper()} device: looked with torch"))
                    else:
                        records.append(rec(cell, check, "pass", boot_s=2.5, log_path=f"/r/logs/{cell}.log"))
    run = write_run(tmp_path / "latest", records, argv=["harness", "run"])
    return render_run(ReportInputs(run_dir=run, today=TODAY, environ={})).index


def artifacts() -> Path:
    out = Path(os.environ.get("HARNESS_ARTIFACTS") or REPO / "reports" / "artifacts")
    out.mkdir(parents=True, exist_ok=True)
    return out


def test_report_in_chromium(browser, report):
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: None if r.url.startswith(("file:", "data:", "about:")) else problems.append(f"network: {r.url}"))
    page.goto(report.as_uri())

    verdict = page.locator("#verdict")
    assert verdict.is_visible() and verdict.inner_text().split()[0] == "NO-GO"
    assert verdict.bounding_box()["y"] < 200  # verdict first: on screen without scrolling
    grid = page.locator("table.grid").first
    assert grid.is_visible()
    broken = page.locator('tr[data-cell="hf-npu-tiny-llama-none"] td[data-check="accuracy"]')
    assert broken.is_visible() and "new failure" in broken.inner_text()
    assert page.locator('[data-diff="new-failure"]').is_visible() and page.locator('[data-diff="fixed"]').is_visible()

    drill = page.locator('details[data-drill="hf-npu-tiny-llama-disk"]')  # a passing cell: closed
    command_or_fig = drill.locator("h4").first
    assert drill.get_attribute("open") is None and not command_or_fig.is_visible()
    drill.locator("summary").click()
    assert drill.get_attribute("open") is not None and command_or_fig.is_visible()
    opened = page.locator('details[data-drill="hf-npu-tiny-llama-none"]')  # the regression: open from the start
    assert opened.locator("table.answers").is_visible() and "Lyon" in opened.inner_text()
    assert opened.locator("pre.log").is_visible()

    page.screenshot(path=str(artifacts() / "report.png"), full_page=True)
    assert problems == []


def test_verdict_coverage_and_heatmap_are_on_the_first_screen(browser, default_like_report):
    """At 1400×900 a release manager sees the verdict, what ran per device and the heatmap without scrolling."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(default_like_report.as_uri())
    verdict, coverage, heatmap = page.locator("#verdict"), page.locator("#coverage"), page.locator("#heatmap")
    assert verdict.get_attribute("data-title") == "GO on cpu only" and "GO on cpu only" in verdict.inner_text()
    for element in (verdict, coverage, heatmap):
        box = element.bounding_box()
        assert element.is_visible() and box is not None and box["y"] + box["height"] <= 900, box
    assert page.locator('#coverage tr[data-value="npu"]').get_attribute("data-ran") == "0"
    assert page.locator("#heatmap tr[data-heat-model]").count() == 8
    page.screenshot(path=str(artifacts() / "first-screen.png"))  # the first screen, as a release manager sees it
    assert page.locator("#heatmap td.sq.h-pass").count() == 8 and page.locator("#heatmap td.sq.h-skipped").count() > 0
    page.locator('#heatmap tr[data-heat-model="tiny-llama"] td.h-pass a').first.click()  # a square opens its drill-down
    assert page.evaluate("location.hash") == "#drill-hf-cpu-tiny-llama-none"
    assert page.locator("details.idle-model").count() == 4  # the real models: one line each
