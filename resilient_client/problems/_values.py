"""Typed reads of parsed JSON values.

RFC 9457 §3.1: a member of the wrong JSON type is ignored as if absent. Every envelope
reads its members through these helpers, so a wrongly typed member simply yields None and
nothing downstream ever sees a value of the wrong type.
"""

from __future__ import annotations

from typing import Any

from ._model import FieldError

__all__ = [
    "JsonObject",
    "as_code",
    "as_dict",
    "as_int",
    "as_list",
    "as_str",
    "dotted_path",
    "either",
    "field_error",
    "objects",
]

JsonObject = dict[str, Any]


def as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def as_int(value: object) -> int | None:
    # bool is an int subclass in Python, but ``true`` is not a number in JSON.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_dict(value: object) -> JsonObject | None:
    return value if isinstance(value, dict) else None


def as_list(value: object) -> list[Any]:
    """The list, or an empty one for anything else (so callers can iterate blindly)."""
    return value if isinstance(value, list) else []


def objects(value: object) -> list[JsonObject]:
    """The JSON objects in ``value``, a list (a new one); other items, and anything that
    is not a list, are skipped."""
    # as_list(), inlined, and no comprehension for an absent or empty member (most are):
    # 1 frame instead of 3.
    if not isinstance(value, list) or not value:
        return []
    return [item for item in value if isinstance(item, dict)]


def either(body: JsonObject, name: str, alias: str) -> Any:
    """Member ``name`` of ``body``, else ``alias`` when ``name`` is absent or null (the
    proto3 JSON mapping accepts ``retryDelay`` and ``retry_delay``; Graph spells Azure's
    ``innererror`` ``innerError``)."""
    value = body.get(name)
    return body.get(alias) if value is None else value


def as_code(value: object) -> str | None:
    """A machine code: a string as is, an integer as its digits (some APIs send numbers)."""
    if isinstance(value, str):
        return value
    number = as_int(value)
    return None if number is None else str(number)


def dotted_path(value: object) -> str | None:
    """A JSON path array (``["order", 0, "total"]``) as ``"order.0.total"``; None when
    ``value`` is not a list or holds no string or integer part."""
    parts = [
        part if isinstance(part, str) else str(part)
        for part in as_list(value)
        if isinstance(part, str) or as_int(part) is not None
    ]
    return ".".join(parts) if parts else None


def field_error(field: str | None, message: str | None, code: str | None) -> FieldError:
    return FieldError(field=field, message=message or "", code=code)


def with_members(
    extensions: dict[str, Any], source: JsonObject, names: tuple[str, ...], errors: list[JsonObject]
) -> dict[str, Any]:
    """``extensions`` with the members ``names`` of ``source`` that it has, and every error
    of ``errors`` when there are several (an envelope's list of errors: the first one is
    the problem, the others are kept)."""
    for name in names:
        if name in source:
            extensions[name] = source[name]
    if len(errors) > 1:
        extensions["errors"] = errors
    return extensions
