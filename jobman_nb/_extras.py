"""Optional libraries, imported on first use with a message naming the extra that installs them."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError

#: top-level module -> the extra of jobman_nb that installs it
EXTRAS = {"matplotlib": "plot", "dask": "scale", "duckdb": "scale"}


def require(module: str, what: str) -> ModuleType:
    """Import *module* for *what*, or raise :class:`MissingDependencyError` naming the extra to install.

    Parameters
    ----------
    module : str
        Dotted module name, e.g. ``'matplotlib.pyplot'``; its top-level package must be in :data:`EXTRAS`.
    what : str
        What needs it, for the message, e.g. ``'analytics.plot_durations'``.

    Returns
    -------
    module
        The imported module.

    Raises
    ------
    MissingDependencyError
        If the library is not installed (also an ``ImportError``).
    """
    top = module.partition(".")[0]
    extra = EXTRAS[top]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.partition(".")[0] != top:
            raise  # the library is there but something it imports is not: its own error says what
        raise MissingDependencyError(f"{what} needs {top}, which is not installed: "
                                     f"pip install 'jobman_nb[{extra}]'", name=exc.name) from exc
