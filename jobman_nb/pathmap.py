"""Path maps: where the directories a database records live on this machine.

jobman records absolute job directories as the cluster saw them
(``/scratch/alice/solvation/jobs/job_002``). Read elsewhere (a laptop that
mounts the cluster, a copy of the run unpacked in a temp dir), those paths
only resolve through a map from remote prefixes to local ones::

    PathMap({"/scratch/alice": "/mnt/cluster/alice"})

The longest matching prefix wins, and a prefix only matches whole path
components (``/scratch/al`` does not match ``/scratch/alice/x``). A mapped
path never leaves its target: a recorded path whose ``..`` components climb
out of the prefix is refused (:meth:`PathMap.map` returns no local path and
says why) rather than mapped somewhere nobody asked for. Symlinks are a
property of the local file system; readers check them when they open the
directory (:func:`jobman_nb.read_job_dirs` refuses a mapped directory whose
real path is outside the real target).

Pure functions and one small class; nothing here touches the file system.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .errors import PathMapError

__all__ = ["PathMap", "MappedPath", "PathMapLike", "as_path_map", "parse_path_map"]


@dataclass(frozen=True)
class MappedPath:
    """The outcome of mapping one recorded path.

    Attributes
    ----------
    original : str
        The path as recorded.
    local : str or None
        The path to use on this machine; None when the mapping was refused.
    root : str or None
        The local target of the prefix that matched (None when no prefix matched).
    note : str or None
        Why *local* is None.
    """

    original: str
    local: str | None
    root: str | None = None
    note: str | None = None


def _clean_prefix(text: str, what: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise PathMapError(f"path_map {what} must be a non-empty string, got {text!r}")
    if "\x00" in text:
        raise PathMapError(f"path_map {what} {text!r} contains a NUL byte")
    cleaned = posixpath.normpath(text)
    # normpath keeps a leading '//' (POSIX allows it to mean something else); one is enough here
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


class PathMap:
    """Map recorded (remote) path prefixes to local ones, longest prefix first.

    Parameters
    ----------
    mapping : dict or iterable of (old, new) pairs
        ``{"/scratch/alice": "/mnt/cluster/alice"}``. Trailing slashes are
        ignored; prefixes match whole path components.

    Raises
    ------
    PathMapError
        If a prefix or target is empty or not a string, or one prefix is
        given two different targets.
    """

    def __init__(self, mapping: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = mapping.items() if isinstance(mapping, Mapping) else mapping
        rules: dict[str, str] = {}
        for pair in pairs:
            try:
                old, new = pair
            except (TypeError, ValueError):
                raise PathMapError(f"path_map entries are (old, new) pairs, got {pair!r}") from None
            old, new = _clean_prefix(old, "prefix"), _clean_prefix(new, "target")
            if rules.get(old, new) != new:
                raise PathMapError(f"path_map prefix {old!r} is given two targets: {rules[old]!r} and {new!r}")
            rules[old] = new
        # longest prefix first; ties cannot happen (keys are unique)
        self._rules: list[tuple[str, str]] = sorted(rules.items(), key=lambda kv: -len(kv[0]))

    @property
    def rules(self) -> list[tuple[str, str]]:
        """The ``(prefix, target)`` pairs, in matching order (longest prefix first)."""
        return list(self._rules)

    def map(self, path: str) -> MappedPath:
        """Map one recorded path.

        Parameters
        ----------
        path : str
            A path as the database records it.

        Returns
        -------
        MappedPath
            ``local`` is the path to use here: the mapped path, or *path*
            itself when no prefix matches; None (with a ``note``) when the
            mapped path would climb out of its target through ``..``.
        """
        local, root, note = self.resolve(path)
        return MappedPath(path, local, root, note)

    def resolve(self, path: str) -> tuple[str | None, str | None, str | None]:
        """:meth:`map` as a plain ``(local, root, note)`` tuple: the same answer, for hot loops."""
        for prefix, target in self._rules:
            if prefix == "/":
                rest = path[1:] if path.startswith("/") else None
            elif path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
                rest = path[len(prefix) + 1:]
            else:
                continue
            if rest is None:
                continue
            if not rest:
                return target, target, None
            probe = f"/{rest}/"
            if "//" not in probe and "/./" not in probe and "/../" not in probe:
                # already normal: no empty, '.' or '..' component, so it cannot climb out either
                return (f"{target}/{rest}" if target != "/" else f"/{rest}"), target, None
            local = posixpath.normpath(posixpath.join(target, rest))
            inside = local == target or local.startswith(target.rstrip("/") + "/")
            if not inside:
                return None, target, (f"{path!r} climbs out of the mapped target {target!r} "
                                      f"(through '..'); not read")
            return local, target, None
        return path, None, None

    def __call__(self, path: str) -> str | None:
        """The local path of *path* (None when the mapping is refused)."""
        return self.map(path).local

    def __bool__(self) -> bool:
        return bool(self._rules)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PathMap) and other._rules == self._rules

    def __hash__(self) -> int:
        return hash(tuple(self._rules))

    def __repr__(self) -> str:
        return f"PathMap({dict(self._rules)!r})"


#: What functions accept as a path map.
PathMapLike = PathMap | Mapping[str, str] | Iterable[tuple[str, str]] | None


def as_path_map(path_map: PathMapLike) -> PathMap:
    """Return *path_map* as a :class:`PathMap` (an empty one for None)."""
    if isinstance(path_map, PathMap):
        return path_map
    if path_map is None:
        return PathMap()
    if isinstance(path_map, (str, bytes)):
        raise PathMapError(f"path_map must be a dict {{old prefix: new prefix}}, got the string {path_map!r}")
    return PathMap(path_map)


def parse_path_map(items: Iterable[str]) -> PathMap:
    """Parse command-line ``OLD=NEW`` items into a :class:`PathMap`.

    Raises
    ------
    PathMapError
        If an item has no ``=`` or an empty side.
    """
    pairs = []
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old or not new:
            raise PathMapError(f"--path-map takes OLD=NEW (e.g. /scratch/alice=/mnt/alice), got {item!r}")
        pairs.append((old, new))
    return PathMap(pairs)
