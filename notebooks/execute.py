"""Re-execute the tutorial notebooks in place so their stored outputs are the real ones.

Run from the repository root after changing the API or a notebook::

    python notebooks/execute.py            # all notebooks
    python notebooks/execute.py 02_query_language.ipynb
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).parent
_RAISES = "raises-exception"


def execute(path: Path) -> None:
    """Execute *path* top to bottom in the current environment and save it."""
    nb = nbformat.read(path, as_version=4)
    # nbclient lets exactly the cells that nbval expects to raise do so; the tag is
    # removed again because nbval warns when a tag repeats the cell's comment.
    raising = [i for i, cell in enumerate(nb.cells) if "NBVAL_RAISES_EXCEPTION" in cell.source]
    for i in raising:
        nb.cells[i].metadata.setdefault("tags", []).append(_RAISES)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(HERE)}})
    client.execute()
    for i in raising:
        tags = nb.cells[i].metadata["tags"]
        tags.remove(_RAISES)
        if not tags:
            del nb.cells[i].metadata["tags"]
    nbformat.write(nb, path)
    print(f"executed {path.name}")


if __name__ == "__main__":
    names = sys.argv[1:] or sorted(p.name for p in HERE.glob("*.ipynb"))
    for name in names:
        execute(HERE / name)
