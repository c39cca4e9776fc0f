"""The stored tutorial notebooks: what Run All, nbval and a reviewer's diff rely on.

The suite runs every notebook top to bottom under nbval (``notebooks/conftest.py``), and
nbval fails on any cell that raises without the ``raises-exception`` tag. These static
checks make that run prove that JupyterLab's Run All goes through: every error in the
stored outputs is tagged (JupyterLab, nbclient and nbval all let a tagged cell raise and
go on), no cell is skipped, and the stored outputs come from one top-to-bottom run. They
also keep the files reviewable: no widget state, no timing, no tracebacks through this
machine's files. They read JSON only, so they run under ``-p no:nbval`` too.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

# the dev extra's (the README's test command); CI's version matrix runs without the notebooks
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
RAISES = "raises-exception"


def _load_execute():
    spec = importlib.util.spec_from_file_location("nb_execute", NOTEBOOKS / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


execute = _load_execute()


def _code_cells(path: Path) -> list[tuple[int, nbformat.NotebookNode]]:
    nb = nbformat.read(path, as_version=4)
    return [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def test_there_are_notebooks():
    assert len(PATHS) >= 9


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_every_error_is_tagged_and_every_tag_raised(path):
    for i, cell in _code_cells(path):
        raised = [o.ename for o in cell.outputs if o.output_type == "error"]
        tagged = RAISES in cell.metadata.get("tags", [])
        assert bool(raised) == tagged, (f"cell {i}: raised {raised or 'nothing'} but is "
                                        f"{'' if tagged else 'not '}tagged {RAISES!r}")
        # the comment marker helps nbval only (and with the tag, nbval warns: an error here)
        assert "NBVAL_RAISES_EXCEPTION" not in cell.source, f"cell {i}: use the {RAISES!r} tag instead"
        # a cell nbval skips would not be proven to run
        assert "NBVAL_SKIP" not in cell.source and "nbval-skip" not in cell.metadata.get("tags", []), f"cell {i}"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_outputs_come_from_one_run_top_to_bottom(path):
    counts = [cell.execution_count for _, cell in _code_cells(path)]
    assert counts == list(range(1, len(counts) + 1))


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_no_widget_state_timing_or_machine_paths(path):
    raw = path.read_text(encoding="utf-8")
    nb = json.loads(raw)
    assert "widgets" not in nb["metadata"], "widget state is stored: re-execute with notebooks/execute.py"
    assert nb["metadata"]["kernelspec"] == execute.KERNELSPEC
    assert "version" not in nb["metadata"].get("language_info", {})
    assert "application/vnd.jupyter.widget-view+json" not in raw, "a widget view with a random model id"
    for i, cell in _code_cells(path):
        assert "execution" not in cell.metadata, f"cell {i} stores its timing"
        for out in cell.outputs:
            text = execute._output_text(out)
            assert not re.search(r"/tmp/|site-packages|Traceback \(most recent call last\)", text), (
                f"cell {i}: {text[:300]!r}")


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_stored_notebook_is_already_normalized(path):
    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    execute.normalize(nb)
    assert nbformat.writes(nb) == before


def _executed(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def _error_cell(tags: list[str]) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("1 / 0", metadata={"tags": tags} if tags else {})
    cell.outputs = [nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero",
                                           traceback=["ZeroDivisionError: division by zero"])]
    return cell


def test_execute_checks_refuse_a_tag_that_raised_nothing_and_machine_paths():
    execute.check(_executed(_error_cell([RAISES])), "ok.ipynb")
    quiet = nbformat.v4.new_code_cell("1", metadata={"tags": [RAISES]})
    with pytest.raises(execute.NotebookCheckError, match="raised nothing"):
        execute.check(_executed(quiet), "x.ipynb")
    marked = nbformat.v4.new_code_cell("# NBVAL_RAISES_EXCEPTION\n1 / 0")
    with pytest.raises(execute.NotebookCheckError, match="cell tag"):
        execute.check(_executed(marked), "x.ipynb")
    here = nbformat.v4.new_code_cell("print(path)")
    here.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"{NOTEBOOKS.parent}/x\n")]
    with pytest.raises(execute.NotebookCheckError, match="path of this machine"):
        execute.check(_executed(here), "x.ipynb")


def test_normalize_drops_what_varies_between_runs():
    view = nbformat.v4.new_code_cell("qb")
    view.metadata["execution"] = {"iopub.status.busy": "2026-01-01T00:00:00Z"}
    view.outputs = [nbformat.v4.new_output("execute_result", execution_count=1, data={
        "text/plain": "QueryBuilder(...)",
        "application/vnd.jupyter.widget-view+json": {"model_id": "f18b", "version_major": 2, "version_minor": 0}})]
    nb = _executed(view)
    nb.metadata.update(widgets={"application/vnd.jupyter.widget-state+json": {"state": {}}},
                       kernelspec={"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
                       language_info={"name": "python", "version": "3.11.7"})
    execute.normalize(nb)
    assert "widgets" not in nb.metadata and nb.metadata.kernelspec == execute.KERNELSPEC
    assert nb.metadata.language_info == {"name": "python"}
    assert nb.cells[0].metadata == {}
    assert nb.cells[0].outputs[0].data == {"text/plain": "QueryBuilder(...)"}
