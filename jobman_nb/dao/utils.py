"""Key and timestamp generators and the declarative ``Schema`` classes.

Mirrors ``jobman.dao.utils``: a schema is a class whose attributes are field
infos (dicts with at least a ``'type'``), merged along the MRO by
:meth:`Schema.get_field_infos`.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from ..errors import ArgumentError

__all__ = [
    "check_chunksize",
    "generate_uuid",
    "generate_key",
    "generate_timestamp",
    "generate_timestamp_fields",
    "SchemaMeta",
    "Schema",
    "TimestampedSchemaMixin",
]

FieldInfo = dict[str, Any]


def check_chunksize(chunksize: Any) -> int:
    """Return *chunksize* if it is a positive integer.

    Raises
    ------
    ValueError
        Otherwise, naming the value.
    """
    if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
        raise ArgumentError(f"chunksize must be a positive integer, got {chunksize!r}")
    return chunksize


def generate_uuid(*args: Any, **kwargs: Any) -> str:
    """Return a new random (version 4) UUID as a string."""
    return str(uuid.uuid4())


def generate_key(*args: Any, **kwargs: Any) -> str:
    """Return a new record key (a uuid4 string, as jobman uses)."""
    return str(uuid.uuid4())


def generate_timestamp(*args: Any, **kwargs: Any) -> float:
    """Return the current time as float seconds since the epoch."""
    return time.time()


def generate_timestamp_fields() -> dict[str, FieldInfo]:
    """Return the ``created`` / ``modified`` field infos.

    Returns
    -------
    dict
        ``created`` defaults to the save time; ``modified`` is set on every
        save and update.
    """
    return {
        "created": {"type": "FLOAT", "default": generate_timestamp},
        "modified": {"type": "FLOAT", "auto_update": generate_timestamp},
    }


def _is_field_info(value: Any) -> bool:
    return isinstance(value, dict) and "type" in value


class SchemaMeta(type):
    """Metaclass of :class:`Schema`: collects field infos and documents them.

    The fields a class defines (attributes that are dicts with a ``'type'``)
    are recorded in definition order, and the class docstring gains a
    ``Fields`` section listing each field with its type and ``'doc'``.
    (jobman 0.0.1's version raised AttributeError on Python >= 3.10.)
    """

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any]):
        own = {k: v for k, v in namespace.items() if not k.startswith("_") and _is_field_info(v)}
        cls = super().__new__(mcs, name, bases, dict(namespace))
        cls._own_field_infos = own
        if own:
            lines = [f"    {k} : {v['type']}" + (f"\n        {v['doc']}" if v.get("doc") else "")
                     for k, v in own.items()]
            doc = namespace.get("__doc__") or ""
            cls.__doc__ = (doc.rstrip() + "\n\n" if doc else "") + "Fields\n------\n" + "\n".join(lines)
        return cls


class Schema(metaclass=SchemaMeta):
    """Base class for defining ORM schemas."""

    @classmethod
    def get_field_infos(cls) -> dict[str, FieldInfo]:
        """Return the field infos of this schema, merged along the MRO.

        Base classes come first, so a subclass can override a field.

        Returns
        -------
        dict
            ``{field name: field info}``, each info a fresh dict.
        """
        infos: dict[str, FieldInfo] = {}
        for klass in reversed(cls.__mro__):
            for name, info in vars(klass).get("_own_field_infos", {}).items():
                infos[name] = dict(info)  # an override keeps the base's position
        return infos


class TimestampedSchemaMixin(Schema):
    """Provides created and modified timestamp fields."""

    created = {"type": "FLOAT", "default": generate_timestamp, "doc": "created"}
    modified = {"type": "FLOAT", "auto_update": generate_timestamp, "doc": "modified"}
