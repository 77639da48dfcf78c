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

from reports.builder import ReportInputs, render_run
from tests.reportruns import TODAY, nightly_pair

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
