"""Run the tutorial notebooks under strict nbval whenever pytest collects this folder.

Equivalent to ``--nbval --nbval-current-env --nbval-sanitize-with
notebooks/nbval_sanitize.cfg``, so plain ``pytest`` checks the notebooks'
stored outputs, and ``pytest -p no:nbval`` skips them.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin("nbval") or config.option.nbval_lax:
        return
    config.option.nbval = True
    config.option.nbval_current_env = True
    if config.option.nbval_sanitize_with is None:
        config.option.nbval_sanitize_with = str(Path(__file__).with_name("nbval_sanitize.cfg"))
