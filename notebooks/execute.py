"""Re-execute the tutorial notebooks in place so their stored outputs are the real ones.

Run from the repository root after changing the API or a notebook::

    python notebooks/execute.py            # all notebooks
    python notebooks/execute.py 02_query_language.ipynb

Re-running it on an unchanged tree leaves ``git diff`` empty. The notebooks do their
part (they write into a fixed scratch folder beside themselves and show errors with
``%xmode Minimal``); what only the run itself can vary is normalized here, before saving:

* each stream is merged into one output, stdout before stderr (nbclient's
  ``coalesce_streams``, the same merge nbval applies when it compares): how a kernel
  splits a stream into messages, and interleaves two, depends on timing;
* no widget state is stored, and widget views keep only their ``text/plain`` form: the
  view's model id is random on every run, and without the state it could only render
  as "model not found";
* no execution timing, and the notebook metadata is fixed (kernelspec ``python3``,
  ``language_info`` without the Python patch version).

Executing also checks what the suite and JupyterLab's Run All rely on: a cell may raise
only if it carries the ``raises-exception`` tag (which nbval, nbclient and JupyterLab
all honour), a tagged cell must raise, and no output may show a path of this machine.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).parent
RAISES = "raises-exception"
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


class NotebookCheckError(Exception):
    """A notebook breaks one of the rules above; the message names the cell."""


def _machine_paths() -> list[str]:
    """Absolute paths that would make a stored output differ from one machine or run to the next."""
    paths = {str(HERE.resolve().parent), sys.prefix, str(Path.home()), tempfile.gettempdir()}
    return sorted(p.rstrip("/") + "/" for p in paths if len(p) > 1)


def _output_text(out: nbformat.NotebookNode) -> str:
    if out.output_type == "stream":
        return out.text
    if out.output_type == "error":
        return "\n".join([out.evalue, *out.traceback])
    return "\n".join(v if isinstance(v, str) else str(v) for v in out.get("data", {}).values())


def normalize(nb: nbformat.NotebookNode) -> None:
    """Drop from an executed notebook *nb* what varies between runs of an unchanged tree."""
    nb.metadata.pop("widgets", None)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata.get("language_info", {}).pop("version", None)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        for out in cell.outputs:
            data = out.get("data", {})
            if _WIDGET_VIEW in data and "text/plain" in data:
                del data[_WIDGET_VIEW]


def check(nb: nbformat.NotebookNode, name: str) -> None:
    """Raise :class:`NotebookCheckError` if executed *nb* raised where untagged, or shows a machine path."""
    paths = _machine_paths()
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        where = f"{name}, cell {i}"
        if "NBVAL_RAISES_EXCEPTION" in cell.source:
            raise NotebookCheckError(f"{where}: mark an error demonstration with the {RAISES!r} cell tag "
                                     "(nbval, nbclient and JupyterLab's Run All honour it), not a comment")
        raised = any(out.output_type == "error" for out in cell.outputs)
        if RAISES in cell.metadata.get("tags", []) and not raised:
            raise NotebookCheckError(f"{where} is tagged {RAISES!r} but raised nothing")
        for out in cell.outputs:
            text = _output_text(out)
            for path in paths:
                if path in text:
                    raise NotebookCheckError(f"{where}: an output shows {path!r}, a path of this machine; "
                                             "write into a relative folder and show short errors (%xmode Minimal)")


def execute(path: Path) -> None:
    """Execute *path* top to bottom in the current environment, check it, normalize it and save it."""
    nb = nbformat.read(path, as_version=4)
    # allow_errors=False: only cells tagged raises-exception may raise, as under nbval and Run All
    client = NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=False, record_timing=False,
                            store_widget_state=False, coalesce_streams=True,
                            resources={"metadata": {"path": str(HERE)}})
    client.execute()
    check(nb, path.name)
    normalize(nb)
    nbformat.write(nb, path)
    print(f"executed {path.name}")


if __name__ == "__main__":
    names = sys.argv[1:] or sorted(p.name for p in HERE.glob("*.ipynb"))
    for name in names:
        execute(HERE / name)
