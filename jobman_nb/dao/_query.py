"""Old name of :mod:`jobman_nb.dao.query`, kept importable: both names are one module."""

import sys

from . import query

sys.modules[__name__] = query
