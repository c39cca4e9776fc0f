"""The README's Python examples run, in order, against a demo history."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from jobman_nb.demo import make_history

README = Path(__file__).parents[1] / "README.md"
DATA = Path(__file__).parent / "data"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_has_examples():
    assert len(_python_blocks()) >= 2


def test_readme_examples_run(tmp_path, monkeypatch, capsys):
    # the README's paths are relative to a clone: demo.sqlite and the shared fixture
    monkeypatch.chdir(tmp_path)
    make_history("demo.sqlite", n_jobs=2_000, seed=0)
    (tmp_path / "tests").mkdir()
    shutil.copytree(DATA, tmp_path / "tests" / "data")
    namespace: dict = {}
    opened: dict[int, object] = {}  # the README's DAOs and databases stay open, as in a notebook
    try:
        for i, block in enumerate(_python_blocks()):
            try:
                exec(compile(block, f"README.md python block {i}", "exec"), namespace)
            except Exception as exc:  # pragma: no cover - the failure message is the point
                pytest.fail(f"README python block {i} failed: {exc!r}\n{block}")
            finally:
                opened.update((id(v), v) for v in namespace.values()
                              if type(v).__module__.startswith("jobman_nb.") and callable(getattr(v, "close", None)))
    finally:
        for value in opened.values():
            value.close()
    assert "did you mean 'status'" in capsys.readouterr().out
