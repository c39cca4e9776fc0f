"""Notebook widgets over a DAO: a query-dict form and a status overview.

``QueryBuilder(dao)`` is a form whose :attr:`~QueryBuilder.query` trait is the
same query dict that code passes to ``dao.query_jobs_df``; ``StatusBoard(dao)``
shows counts per status and opens a builder for the status clicked (and can
refresh itself while jobman runs); ``JobInspector(dao)`` shows one job in full
and, on a writable DAO, requeues the builder's selection.
"""

from .inspector import JobInspector
from .query_builder import QueryBuilder
from .status_board import StatusBoard

__all__ = ["JobInspector", "QueryBuilder", "StatusBoard"]
