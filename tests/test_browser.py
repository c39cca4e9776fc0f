"""The widgets in real JupyterLab: a headless Chromium opens a notebook, runs it and clicks through it.

JupyterLab 4 is served on 127.0.0.1 (a free port, no token) from a temporary root
with its default settings, so widget comms go over kernel subshells (ipykernel 7
runs each comm target's messages on a thread of its own): the test checks that the
handlers really ran on a subshell thread. The notebook, made here, shows a
QueryBuilder and a StatusBoard over a demo database opened read-only, and a builder
over a writable copy of it. The test builds a JSON-path filter, runs it, pages, sorts
by a header click, opens a job in the inspector, clicks a status on the board, then
edits and requeues two jobs on the copy and checks that the file changed (and that
the read-only one did not).

Needs Debian's ``chromium`` (``tests/setup-chromium.sh``, which the README's test
command runs, installs it) and the dev extra (``playwright``, ``jupyterlab``).
Playwright only drives the system chromium; it never downloads a browser. A missing
piece fails the test, it never skips.

Waits are on the page's own states (kernel idle, widget views rendered, texts shown)
with timeouts that grow with the machine's load (``os.getloadavg``); set
``JOBMAN_NB_BROWSER_TIMEOUT`` (seconds) to choose one. Set
``JOBMAN_NB_SCREENSHOT=docs/querybuilder.png`` to also save the README's screenshot.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import sqlite3
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
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]
N_JOBS = 300
LIMIT = 10
JSON_PATH = "job_spec.resources.cpus"


def _timeout_ms() -> float:
    """One wait's timeout: 60 s on an idle machine, more the busier it is (the load per core)."""
    if os.environ.get("JOBMAN_NB_BROWSER_TIMEOUT"):
        return 1000 * float(os.environ["JOBMAN_NB_BROWSER_TIMEOUT"])
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    return 1000 * 60 * min(6.0, max(1.0, load))


def _browser_tools():
    """Import playwright and check chromium and jupyterlab, or fail saying what is missing (never skip)."""
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append("the chromium browser (bash tests/setup-chromium.sh)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
        missing.append("the playwright package (pip install playwright)")
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        missing.append("the jupyterlab package (pip install jupyterlab)")
    if missing:
        pytest.fail("BROWSER TEST CANNOT RUN: missing " + "; ".join(missing)
                    + ". Run tests/setup-chromium.sh and pip install -e '.[dev]'.")
    return sync_playwright


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _notebook(read_only: Path, writable: Path, threads: Path, path_map: dict[str, str]):
    import nbformat  # here, not at import: the version matrix collects this module without jupyter

    cells = [
        "import json, threading\n"
        "from jobman_nb import JobmanSqliteDAO, open_db\n"
        "from jobman_nb.widgets import QueryBuilder, StatusBoard\n"
        f"db = open_db({str(read_only)!r}, path_map={path_map!r})  # read-only; where the job dirs are\n"
        "dao = db.jobman\n"
        "seen = []\n"
        "def record(change):  # on the thread that runs the widget handlers\n"
        "    seen.append(threading.current_thread().name)\n"
        f"    with open({str(threads)!r}, 'w') as f:\n"
        "        json.dump({'main': threading.main_thread().name, 'handlers': seen}, f)",
        f"builder = QueryBuilder(dao, query={{'limit': {LIMIT}}})\n"
        "builder.observe(record, 'query')\n"
        "builder",
        "StatusBoard(dao)",
        f"copy = JobmanSqliteDAO(db_uri={str(writable)!r})\n"
        f"QueryBuilder(copy, query={{'filters': [{{'field': 'status', 'op': '=', 'arg': 'FAILED'}}], "
        f"'order_by': {{'field': 'key'}}, 'limit': {LIMIT}}})",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on 127.0.0.1 over a temp root holding the notebook and two copies of a demo database."""
    _browser_tools()  # before starting anything: say what is missing
    import nbformat

    from jobman_nb.demo import make_history

    root, home = tmp_path / "root", tmp_path / "jupyter"
    root.mkdir()
    demo = tmp_path / "demo.sqlite"
    summary = make_history(demo, n_jobs=N_JOBS, seed=3)  # and its job dirs, beside it
    shutil.copy(demo, root / "demo.sqlite")
    shutil.copy(demo, root / "writable.sqlite")
    nbformat.write(_notebook(root / "demo.sqlite", root / "writable.sqlite", tmp_path / "threads.json",
                             summary["path_map"]), root / "widgets.ipynb")
    # JupyterLab's defaults, in directories of its own: only the news prompt is turned off (it covers buttons)
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_DATA_DIR": str(home / "data"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"), "JUPYTER_PLATFORM_DIRS": "1"}
    port = _free_port()
    log_path = tmp_path / "lab.log"
    log = open(log_path, "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--IdentityProvider.token=",
         "--ServerApp.password=", f"--ServerApp.root_dir={root}", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate"],
        cwd=root, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + _timeout_ms() / 1000
        while True:
            try:
                urllib.request.urlopen(url + "/api/status", timeout=5).close()
                break
            except (urllib.error.URLError, OSError):
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(f"JupyterLab did not start:\n{log_path.read_text()[-5000:]}")
                time.sleep(0.3)
        yield {"url": url, "root": root, "threads": tmp_path / "threads.json", "log": log_path}
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=30)
        if server.poll() is None:
            server.kill()
            server.wait()
        log.close()
        for made in tmp_path.iterdir():  # the demo, its job dirs, JupyterLab's dirs; lab.log stays for a failure
            if made != log_path:
                shutil.rmtree(made) if made.is_dir() else made.unlink()


def _run_all_cells(page, timeout: float) -> None:
    """Run > Run All Cells, once the command is enabled (it is not until the notebook is the current tab)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    first_prompt = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").first
    deadline = time.monotonic() + timeout / 1000
    while True:
        page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").first.click()  # makes the notebook current
        page.locator(".lm-MenuBar-itemLabel:text-is('Run')").click()
        item = page.locator(".lm-Menu-item[data-command='runmenu:run-all']")
        if "lm-mod-disabled" not in (item.get_attribute("class") or ""):
            item.click()
            try:  # the first prompt turns from [ ] to [*] or [1]
                expect(first_prompt).not_to_have_text("[ ]:", timeout=min(timeout, 30_000))
                return
            except (AssertionError, PlaywrightTimeout):
                pass
        else:
            page.keyboard.press("Escape")
        if time.monotonic() > deadline:
            pytest.fail("JupyterLab never ran the notebook's cells (Run All Cells stayed disabled or did nothing)")
        page.wait_for_timeout(1000)


_GEOMETRY = """(view) => {
  const select = view.querySelector('.jobman-qb-rows select'), option = select.options[0];
  const font = (e) => { const c = getComputedStyle(e); return `${c.fontWeight} ${c.fontSize} ${c.fontFamily}`; };
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.font = font(select);
  const textLeft = (e) => { const c = getComputedStyle(e);
    return e.getBoundingClientRect().left + parseFloat(c.borderLeftWidth) + parseFloat(c.paddingLeft); };
  return {ch: ctx.measureText('0').width, rows: textLeft(option), texts: [...select.options].map(o => o.text),
          headers: [...view.querySelectorAll('.jobman-qb-header button')].map(b => [b.innerText, textLeft(b)])};
}"""


def _misaligned(geometry: dict) -> list[str]:
    """The result table's header buttons whose text does not start right above their column (within half a pixel)."""
    ch, left, texts = geometry["ch"], geometry["rows"], geometry["texts"]
    bad = []
    for name, x in geometry["headers"]:
        at = (x - left) / ch  # the character the header starts over
        col = round(at)
        starts = col == 0 or all(t[col - 2:col] == "\u00a0\u00a0" for t in texts)  # a column starts after a gap
        if abs(x - (left + col * ch)) > 0.5 or not starts or all(t[col:col + 1] in ("", "\u00a0") for t in texts):
            bad.append(f"{name!r} at character {at:.2f}")
    return bad


def _keys(cell) -> list[str]:
    """The keys of the result rows a builder shows (the first column of each row)."""
    return [t.split("\u00a0")[0] for t in cell.locator(".jobman-qb-rows select option").all_inner_texts()]


def test_widgets_in_jupyterlab(lab, tmp_path):
    from playwright.sync_api import expect

    sync_playwright = _browser_tools()
    timeout = _timeout_ms()
    expect.set_options(timeout=timeout)
    demo, writable = lab["root"] / "demo.sqlite", lab["root"] / "writable.sqlite"
    with JobmanSqliteDAO(db_uri=str(demo), read_only=True) as dao:
        jobs = dao.query_jobs({"order_by": {"field": "key"}})
    by_key = {j["key"]: j for j in jobs}
    before = demo.read_bytes()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, timeout=timeout)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(timeout)
            page.goto(lab["url"] + "/lab/tree/widgets.ipynb")
            # the toolbar's indicator says idle before the kernel has even started: wait for the status bar's
            expect(page.locator(".jp-Notebook .jp-CodeCell")).to_have_count(4)
            expect(page.get_by_role("button", name=re.compile(r"Python 3 \(ipykernel\) \| Idle"))).to_be_visible()
            _run_all_cells(page, timeout)
            cells = page.locator(".jp-Notebook .jp-CodeCell")
            qb, board, rw = cells.nth(1), cells.nth(2), cells.nth(3)
            for cell, css in [(qb, ".jobman-qb-run"), (board, ".jobman-sb-status"), (rw, ".jobman-qb-run")]:
                cell.locator(".jp-OutputArea-output " + css).first.wait_for()
            expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_be_visible()

            # a filter on a JSON path, a bad value first (the form says why), then a good one; Run
            qb.locator(".jobman-qb-add").click()
            row = qb.locator(".jobman-qb-filter")
            expect(row).to_have_count(1)
            row.locator(".jobman-qb-field select").select_option(JSON_PATH)
            row.locator(".jobman-qb-op select").select_option(label=">=")
            value = row.locator(".jobman-qb-value input")
            value.fill("eight")
            value.press("Enter")
            expect(qb.locator(".jobman-qb-message")).to_contain_text("'eight' is not a number")
            value.fill("8")
            value.press("Enter")
            expect(qb.locator(".jobman-qb-message")).to_have_text("")
            qb.locator(".jobman-qb-run").click()
            matching = [j for j in jobs if j["job_spec"]["resources"]["cpus"] >= 8]
            assert len(matching) > 2 * LIMIT  # so there is a next page, and a second one to sort
            expect(qb.locator(".jobman-qb-count")).to_contain_text(f"1–{LIMIT} of {len(matching)} matching")
            expect(qb.locator(".jobman-qb-code")).to_contain_text(f"'field': '{JSON_PATH}', 'op': '>=', 'arg': 8")
            shown = _keys(qb)
            assert len(shown) == LIMIT and all(by_key[k]["job_spec"]["resources"]["cpus"] >= 8 for k in shown)
            # the filter's field joins the default columns; each header lines up over its column
            expect(qb.locator(".jobman-qb-header button", has_text=JSON_PATH)).to_have_count(1)
            geometry = qb.locator(".jobman-qb-result").evaluate(_GEOMETRY)
            assert len(geometry["headers"]) == 5 and not _misaligned(geometry), geometry

            # next page: other matching jobs
            qb.locator(".jobman-qb-next").click()
            expect(qb.locator(".jobman-qb-count")).to_contain_text(f"{LIMIT + 1}–{2 * LIMIT} of {len(matching)}")
            second = _keys(qb)
            assert len(second) == LIMIT and not set(second) & set(shown)
            assert all(by_key[k]["job_spec"]["resources"]["cpus"] >= 8 for k in second)

            # sort: a click on the 'created' header sorts ascending from page one, a second click descending
            header = qb.locator(".jobman-qb-header button", has_text="created")
            header.click()
            expect(header).to_contain_text("▲")
            expect(qb.locator(".jobman-qb-count")).to_contain_text(f"1–{LIMIT} of")
            header.click()
            expect(header).to_contain_text("▼")
            newest = sorted(matching, key=lambda j: j["created"], reverse=True)[:LIMIT]
            expect(qb.locator(".jobman-qb-rows select option").first).to_contain_text(newest[0]["key"])
            assert _keys(qb) == [j["key"] for j in newest]
            expect(qb.locator(".jobman-qb-code")).to_contain_text("'order_by': {'field': 'created', 'direction': "
                                                                  "'DESC'}")

            # a click on a row opens its job in the inspector: title, the record as pretty JSON, its job dir
            row_of = next(i for i, j in enumerate(newest) if j["status"] == "FAILED")
            pick = newest[row_of]
            qb.locator(".jobman-qb-rows select option").nth(row_of).click()
            inspector = qb.locator(".jobman-qb-inspector")
            expect(inspector.locator(".jobman-inspector-title")).to_contain_text(pick["key"])
            record = inspector.locator(".jobman-inspector-record")
            expect(record).to_contain_text(f'"cpus": {pick["job_spec"]["resources"]["cpus"]}')
            assert record.inner_text().count("\n") > 10  # indented, not one line
            # found through the path_map given to open_db: the demo's dirs are not where the records say
            expect(inspector).to_contain_text("checkpoint: ")
            expect(inspector.locator(".jobman-inspector-requeue")).to_have_count(0)  # read-only: no actions

            # the handlers ran in the kernel on a subshell thread, not on the main one
            threads = json.loads(lab["threads"].read_text())
            assert threads["handlers"], "the builder's query never changed in the kernel"
            assert all(name.startswith("subshell-") for name in threads["handlers"]), threads
            assert threads["main"] not in threads["handlers"]

            # the README's picture: the whole builder, in a window tall enough to hold it
            box = qb.locator(".jobman-qb").bounding_box()
            page.set_viewport_size({"width": 1440, "height": int(box["height"]) + 400})
            shot = qb.locator(".jobman-qb").screenshot(path=str(tmp_path / "querybuilder.png"))
            page.set_viewport_size({"width": 1440, "height": 1000})
            assert shot[:8] == b"\x89PNG\r\n\x1a\n"
            if os.environ.get("JOBMAN_NB_SCREENSHOT"):
                Path(os.environ["JOBMAN_NB_SCREENSHOT"]).write_bytes(shot)

            # the board: a click on FAILED opens a builder under it with the failed jobs
            failed = [j for j in jobs if j["status"] == "FAILED"]
            assert len(failed) > LIMIT
            expect(board.locator(".jobman-sb-total")).to_contain_text(f"{len(jobs):,} in all")
            board.locator(".jobman-sb-status-failed").click()
            expect(board.locator(".jobman-qb-count")).to_contain_text(f"of {len(failed)} matching")
            assert all(by_key[k]["status"] == "FAILED" for k in _keys(board))

            # on the writable copy: select two failed jobs, double their memory and requeue them
            first_two = sorted(j["key"] for j in failed)[:2]
            rw.locator(".jobman-qb-run").click()
            expect(rw.locator(".jobman-qb-count")).to_contain_text(f"of {len(failed)} matching")
            options = rw.locator(".jobman-qb-rows select option")
            options.nth(0).click()
            options.nth(1).click(modifiers=["Control"])
            act = rw.locator(".jobman-qb-inspector")
            expect(act.locator(".jobman-inspector-title")).to_contain_text(first_two[1])
            assert act.locator(".jobman-inspector-edit-path input").input_value() == "job_spec.resources.mem_gb"
            act.locator(".jobman-inspector-edit").click()
            expect(act).to_contain_text("Requeue 2 jobs")
            act.locator(".jobman-inspector-confirm").click()
            expect(act.locator(".jobman-inspector-act-message")).to_contain_text("2 requeued, 0 skipped")
            # the builder ran again: the two are no longer FAILED
            expect(rw.locator(".jobman-qb-count")).to_contain_text(f"of {len(failed) - 2} matching")
        finally:
            browser.close()

    conn = sqlite3.connect(f"file:{writable}?mode=ro", uri=True)
    try:
        now = {key: (status, mem) for key, status, mem in conn.execute(
            "SELECT key, status, json_extract(job_spec, '$.resources.mem_gb') FROM jobman_job")}
    finally:
        conn.close()
    was = {k: (j["status"], j["job_spec"]["resources"]["mem_gb"]) for k, j in by_key.items()}
    assert {k for k in was if now[k] != was[k]} == set(first_two)
    for key in first_two:
        assert now[key] == ("PENDING", 2 * was[key][1])
    assert demo.read_bytes() == before  # the read-only database was not written
