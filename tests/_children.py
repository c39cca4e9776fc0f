"""Run the child processes of a multi-process test to the end, with no clock in any verdict.

A test's children report ``(role, "ok" | "error", value)`` on a queue. The parent waits
for as long as a child still lives, not until a deadline: on a loaded machine a child is
slow, never wrong. When one fails or dies before reporting, the barriers the others may
wait at are broken and the "give up" events they look at are set, so they report and exit
instead of waiting or working forever.
"""

from __future__ import annotations

import queue
from collections.abc import Iterable, Sequence
from typing import Any

POLL = 1.0  # seconds between looks at the children: how often, not how long


def run_children(procs: Sequence[Any], out: Any, release: Iterable[Any] = ()) -> list[tuple]:
    """Start *procs*, return the one result each puts on *out* (in arrival order).

    *release* holds the barriers to abort and the events to set if a child fails.
    Raises AssertionError if a child exited without reporting, or reported an error.
    """
    release = list(release)
    results: list[tuple] = []

    def give_up() -> None:
        for item in release:
            if hasattr(item, "abort"):
                item.abort()
            else:
                item.set()

    for p in procs:
        p.start()
    try:
        while len(results) < len(procs):
            try:
                result = out.get(timeout=POLL)
            except queue.Empty:
                exited = sum(p.exitcode is not None for p in procs)
                if exited <= len(results):
                    continue  # all still at work
                try:  # a child that exited has flushed its result: one more look
                    result = out.get(timeout=POLL)
                except queue.Empty:
                    give_up()
                    raise AssertionError(f"a child exited without reporting; exit codes "
                                         f"{[p.exitcode for p in procs]}, results {results}") from None
            results.append(result)
            if result[1] != "ok":
                give_up()
    finally:
        if len(results) < len(procs):
            give_up()  # an exception here: let the rest stop
        for p in procs:
            p.join(timeout=60)  # they have reported: only their exit is left
            if p.is_alive():
                p.kill()
                p.join()
    errors = [r for r in results if r[1] != "ok"]
    assert not errors, errors
    assert [p.exitcode for p in procs] == [0] * len(procs)
    return results


def wait_for(event: Any, proc: Any) -> bool:
    """Wait until *event* is set or *proc* has exited; True if the event was set."""
    while not event.wait(POLL):
        if proc.exitcode is not None:
            return event.is_set()
    return True
