"""The QueryBuilder in a real browser: Voila serves it, headless Chromium drives it.

Needs Debian's ``chromium`` (``tests/setup-chromium.sh``, which the README's test
command runs, installs it) and the ``playwright`` and ``voila`` packages (dev extra). Playwright only drives the system
chromium; it never downloads a browser of its own.

Set ``JOBMAN_NB_SCREENSHOT=docs/querybuilder.png`` to also save the screenshot
shown in the README.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from jobman_nb import JobmanSqliteDAO

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]
CODES = ["psi4", "orca", "cp2k", "gaussian"]
METHODS = ["b3lyp", "pbe0", "mp2", "ccsd(t)", "wb97x-d"]
STATUS_CYCLE = ["COMPLETED"] * 6 + ["FAILED", "FAILED", "RUNNING", "PENDING"]


def _browser_tools():
    """Import playwright and check chromium and voila, or fail saying what is missing (never skip)."""
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append("the chromium browser (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
        missing.append("the playwright package (pip install playwright)")
    try:
        import voila  # noqa: F401
    except ImportError:
        missing.append("the voila package (pip install voila)")
    if missing:
        pytest.fail("BROWSER TEST CANNOT RUN: missing " + "; ".join(missing)
                    + ". Run tests/setup-chromium.sh and pip install -e '.[dev]'.")
    return sync_playwright


def _jobs(n: int = 240) -> list[dict]:
    jobs = []
    for i in range(n):
        status = STATUS_CYCLE[(i * 7) % len(STATUS_CYCLE)]
        jobs.append({
            "key": f"{i:08x}-5e1f-4c2a-9d3b-{(i * 2654435761) % 16**12:012x}",
            "status": status,
            "job_spec": {"dir": f"/scratch/{['alice', 'bob', 'carol'][i % 3]}/jobs/{i:05d}",
                         "resources": {"cpus": [1, 2, 4, 8, 16, 32][i % 6], "mem_gb": [4, 8, 16, 64][i % 4],
                                       "walltime": [3600, 14400, 86400][i % 3]},
                         "cfg": {"code": CODES[i % 4], "method": METHODS[i % 5]}},
            "worker_key": ["cpu_w", "gpu_w", "hpc_w"][i % 3] if status != "PENDING" else None,
            "errors": [{"code": 137, "msg": "out of memory"}] if status == "FAILED" else None,
            "created": 1_717_200_000.0 + 137.0 * i,
            "modified": 1_717_200_000.0 + 137.0 * i + 60.0 * (1 + i % 50),
        })
    return jobs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_url(tmp_path):
    """Serve a notebook showing a QueryBuilder over a small database with Voila on 127.0.0.1."""
    _browser_tools()  # before starting anything: say what is missing
    import nbformat  # here, not at import: the version matrix collects this module without jupyter

    db = tmp_path / "demo.sqlite"
    with JobmanSqliteDAO(db_uri=str(db)) as dao:
        dao.save_jobs(_jobs(), auto_update=False)
    code = ("from jobman_nb import JobmanSqliteDAO\n"
            "from jobman_nb.widgets import QueryBuilder\n"
            f"dao = JobmanSqliteDAO(db_uri={json.dumps(str(db))}, read_only=True)\n"
            "QueryBuilder(dao, query={'order_by': {'field': 'created', 'direction': 'DESC'}, 'limit': 10})")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "app.ipynb")
    port = _free_port()
    log = open(tmp_path / "voila.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "voila", "app.ipynb", "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
         "--show_tracebacks=True"],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:  # any HTTP answer means the server is up (this path is not served: 404)
                urllib.request.urlopen(url + "jobman-nb-ping", timeout=5)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(f"voila did not start:\n{(tmp_path / 'voila.log').read_text()}")
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=20)
        if server.poll() is None:
            server.kill()
        log.close()


def test_query_builder_in_chromium(app_url, tmp_path):
    sync_playwright = _browser_tools()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.set_default_timeout(300_000)  # Voila runs the notebook before it answers: slow on a busy machine
            page.goto(app_url)
            page.locator(".jobman-qb-run").wait_for()

            page.locator(".jobman-qb-add").click()
            page.locator(".jobman-qb-filter .jobman-qb-field select").select_option("job_spec.resources.cpus")
            page.locator(".jobman-qb-filter .jobman-qb-op select").select_option(label=">=")
            value = page.locator(".jobman-qb-filter .jobman-qb-value input")
            value.fill("8")
            value.press("Enter")
            page.locator(".jobman-qb-add").click()
            page.locator(".jobman-qb-filter").nth(1).locator(".jobman-qb-value-choice select").select_option(
                "COMPLETED")
            page.locator(".jobman-qb-run").click()

            page.locator(".jobman-qb-count").get_by_text("matching").wait_for()
            rows = page.locator(".jobman-qb-rows select option")
            expected = [j for j in _jobs() if j["job_spec"]["resources"]["cpus"] >= 8 and j["status"] == "COMPLETED"]
            assert rows.count() == 10
            keys = {j["key"] for j in expected}
            assert all(r.split("\u00a0")[0] in keys for r in rows.all_inner_texts())
            assert f"of {len(expected)}" in page.locator(".jobman-qb-count").inner_text()
            code = page.locator(".jobman-qb-code").inner_text()
            assert "'field': 'job_spec.resources.cpus', 'op': '>=', 'arg': 8" in code

            page.locator(".jobman-qb-filter .jobman-qb-value input").first.fill("eight")
            page.locator(".jobman-qb-filter .jobman-qb-value input").first.press("Enter")
            page.locator(".jobman-qb-message").get_by_text("'eight' is not a number").wait_for()

            page.locator(".jobman-qb-filter .jobman-qb-value input").first.fill("16")
            page.locator(".jobman-qb-filter .jobman-qb-value input").first.press("Enter")
            page.locator(".jobman-qb-run").click()
            page.locator(".jobman-qb-code").get_by_text("'arg': 16").wait_for()
            page.wait_for_function("() => !document.querySelector('.jobman-qb-message').innerText.trim()")
            page.locator(".jobman-qb-rows select option").first.wait_for()
            shot = page.locator(".jobman-qb").screenshot(path=str(tmp_path / "querybuilder.png"))
            assert shot[:8] == b"\x89PNG\r\n\x1a\n"
            target = os.environ.get("JOBMAN_NB_SCREENSHOT")
            if target:
                Path(target).write_bytes(shot)
        finally:
            browser.close()
