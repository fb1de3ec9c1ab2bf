"""A real-browser test: JupyterLab on loopback, Debian's Chromium driven by Playwright.

Opens notebook 01 (smoke profile), runs it, moves the episode slider and checks that the figure the
slider drives changes. The screenshot is kept in ``outputs/browser/``.
"""
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import NOTEBOOKS, ROOT

pytestmark = pytest.mark.notebook
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTEFACTS = ROOT / "outputs" / "browser"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def jupyterlab(tmp_path):
    """A JupyterLab server on a loopback port, serving a copy of notebook 01 set to the smoke profile."""
    yield from _serve_notebook(tmp_path, "01_dataset_types")


def _serve_notebook(tmp_path, stem):
    """Start JupyterLab on a copy of ``notebooks/<stem>.ipynb`` (smoke profile); yield (url, token, log)."""
    import papermill

    papermill.execute_notebook(str(NOTEBOOKS / f"{stem}.ipynb"), str(tmp_path / f"{stem}.ipynb"),
                               parameters={"profile": "smoke", "output_dir": str(tmp_path / "outputs")},
                               prepare_only=True)
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "config"), MPLBACKEND="module://matplotlib_inline.backend_inline")
    log = open(tmp_path / "jupyterlab.log", "w")  # noqa: SIM115 - closed in _stop
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        _stop(server, log)
        pytest.fail("JupyterLab did not start: " + (tmp_path / "jupyterlab.log").read_text()[-2000:])
    try:
        yield url, token, tmp_path / "jupyterlab.log"
    finally:
        _stop(server, log)


def _stop(server, log, grace=30):
    """Stop the server: terminate, then kill if it is still running after ``grace`` seconds; close its log."""
    server.terminate()
    try:
        server.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=grace)
    finally:
        log.close()


def _in_browser(server, drive, failure_png):
    """Open Chromium on the served notebook and run ``drive(page, url, token)``; on failure save a
    screenshot and print the end of JupyterLab's log."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing in CI: .ci/run installs the Debian package 'chromium'")
        pytest.skip("Debian's Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    url, token, log = server
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            drive(page, url, token)
        except Exception:
            page.screenshot(path=str(ARTEFACTS / failure_png), full_page=True)
            print("JupyterLab log:\n" + log.read_text()[-3000:])
            raise
        finally:
            browser.close()


def test_widget_slider_drives_the_figure(jupyterlab):
    _in_browser(jupyterlab, _drive, "failure.png")


def _wait_for_widget(page, interact, started_within, timeout):
    """True once the slider is shown; False if no cell started running within ``started_within`` s."""
    started = False
    for second in range(timeout):
        if interact.count():
            return True
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        if page.locator(".jp-OutputArea-output:has-text('Traceback')").count():
            pytest.fail("a cell failed: " + page.locator(".jp-OutputArea-output:has-text('Traceback')").first.inner_text()[:1500])
        started = started or page.locator(".jp-InputPrompt:has-text('*')").count() > 0 or errors.count() > 0 \
            or page.locator(".jp-OutputArea-output").count() > 0
        if not started and second >= started_within:
            return False
        page.wait_for_timeout(1000)
    return False


def _drive(page, url, token):
    """Open the notebook, run all cells, move the slider, wait for the figure to change."""
    page.goto(f"{url}/lab/tree/01_dataset_types.ipynb?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    interact = page.locator(".widget-interact").first
    for attempt in range(3):                     # the menu click is occasionally swallowed
        page.click(".jp-Notebook")
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_text("Run All Cells", exact=True).click()
        if _wait_for_widget(page, interact, started_within=60, timeout=300):
            break
    else:
        pytest.fail("the notebook never showed its slider after three 'Run All Cells'")
    figure = interact.locator("img").first
    figure.wait_for(timeout=120_000)
    before = figure.get_attribute("src")
    handle = interact.locator(".noUi-handle").first
    handle.focus()
    handle.press("ArrowRight")
    page.wait_for_function(
        "([el, old]) => el.querySelector('img') && el.querySelector('img').src !== old",
        arg=[interact.element_handle(), before], timeout=60_000)
    interact.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTEFACTS / "widget.png"))
    assert interact.locator(".widget-readout").first.inner_text().strip() == "1"


def test_report_opens_in_chromium(tmp_path):
    """The course report renders in a real browser, with every metric beside its target."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing in CI: .ci/run installs the Debian package 'chromium'")
        pytest.skip("Debian's Chromium is not installed (apt-get install chromium)")
    import matplotlib.pyplot as plt
    from playwright.sync_api import sync_playwright

    from labkit import course, files

    folder = tmp_path / "outputs" / "01_dataset_types"
    record = {"notebook": "01_dataset_types", "profile": "lab", "seed": 0, "elapsed_s": 45.0,
              "metrics": {"supervised_test_accuracy": 0.976, "clustering_ari": 0.34},
              "targets": {"supervised_test_accuracy": {"op": ">=", "value": 0.95},
                          "clustering_ari": {"op": ">=", "value": 0.5}}}
    files.write_json(folder / "metrics.json", record)
    files.write_json(tmp_path / "teacher" / "01_dataset_types" / "metrics.json", record)
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, 1])
    files.save_figure(fig, folder / "curve.png")
    html_path, _ = course.report(folder.parent, targets=tmp_path / "teacher")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        page.goto(html_path.resolve().as_uri())
        rows = page.locator("tr")
        assert rows.count() == 3
        assert "supervised_test_accuracy" in rows.nth(1).inner_text() and "pass" in rows.nth(1).inner_text()
        assert "miss" in rows.nth(2).inner_text()
        assert page.locator("img").evaluate("img => img.naturalWidth") > 0     # the figure decoded
        page.screenshot(path=str(ARTEFACTS / "report.png"), full_page=True)
        browser.close()


@pytest.fixture()
def jupyterlab_00(tmp_path):
    """A JupyterLab server serving a copy of notebook 00 (start here) set to the smoke profile."""
    yield from _serve_notebook(tmp_path, "00_start_here")


def test_start_here_shows_map_and_glossary(jupyterlab_00):
    """Notebook 00 in JupyterLab: the course map and the glossary render, and the search box filters."""
    _in_browser(jupyterlab_00, _drive_start_here, "failure_00.png")


def _accept_kernel_dialog(page):
    """Accept JupyterLab's "Select Kernel" dialog (the default Python 3 kernel) if it is open."""
    dialog = page.locator(".jp-Dialog")
    if dialog.count():
        dialog.get_by_role("button", name="Select").click()
        page.wait_for_timeout(1000)


def _drive_start_here(page, url, token):
    """Run all cells of 00, check the map and the glossary tables, type into the glossary search."""
    page.goto(f"{url}/lab/tree/00_start_here.ipynb?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    search = page.locator(".widget-text input")
    for attempt in range(3):                     # the menu click is occasionally swallowed
        _accept_kernel_dialog(page)
        page.click(".jp-Notebook")
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_text("Run All Cells", exact=True).click()
        _accept_kernel_dialog(page)
        if _wait_for_widget(page, search, started_within=60, timeout=300):
            break
    else:
        pytest.fail("notebook 00 never showed its glossary search box after three 'Run All Cells'")
    tables = page.locator(".jp-OutputArea-output table")
    course_map = tables.filter(has_text="数据集的定义与分类").first
    course_map.scroll_into_view_if_needed()
    assert course_map.is_visible() and "11.4.2.1" in course_map.text_content()
    glossary = tables.filter(has_text="生成对抗网络").filter(has_text="membership inference").first
    glossary.scroll_into_view_if_needed()
    assert glossary.is_visible()
    rows = glossary.locator("tbody tr").count()
    assert rows >= 40, f"the glossary table shows {rows} rows"
    page.screenshot(path=str(ARTEFACTS / "start_here_glossary.png"))
    search = search.first
    search.fill("隐私")
    explorer = page.locator(".widget-vbox").filter(has=search).first
    explorer.locator("table:has-text('差分隐私')").wait_for(timeout=30_000)
    for _ in range(60):                          # the full table is replaced once the filter has run
        filtered = explorer.locator("table tbody tr").count()
        if filtered < rows:
            break
        page.wait_for_timeout(500)
    assert 0 < filtered < rows, f"the search kept {filtered} of {rows} rows"
    explorer.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTEFACTS / "start_here_search.png"))
    # an offline workbook: no prompt to fetch Jupyter's news (the overrides.json `make` installs)
    assert page.get_by_text("official Jupyter news").count() == 0
    # and code lines wrap, so none hides past the right edge (the same overrides.json)
    assert page.locator(".jp-CodeCell .cm-content.cm-lineWrapping").count() > 0
