"""The ``jobman-nb`` command: make a demo history, look into jobman databases, and operate on them.

Exit codes: 0 success, 1 a runtime error (missing file, not a database, ...),
2 a usage or query error (bad option, bad ``--where``, unknown field). Errors
are printed as one plain line on stderr, without a traceback.

The group and its shared helpers live in :mod:`._app`, output formats in
:mod:`._output`; each other module holds a few commands and registers them on
:data:`main` when imported here.
"""

from __future__ import annotations

from . import _demo, _jobdirs, _ops, _read  # noqa: F401  (importing registers the commands)
from ._app import main

__all__ = ["main"]
