"""GraphQL ``{"data": ..., "errors": [{message, locations, path, extensions}]}``.

The first error is the problem: ``detail`` is its ``message``, ``code`` its
``extensions.code`` (a convention, not the spec). Its ``path``, ``locations`` and other
``extensions`` members go to ``extensions``, as does the whole ``errors`` list when it holds
more than one. Every error with a ``path`` becomes a field error, the path joined with dots
(``order.0.total``). ``data`` is never copied: it may be large and is not an error.
"""

from __future__ import annotations

from ._model import Draft, FieldError
from ._values import JsonObject, as_code, as_dict, as_str, dotted_path, field_error, with_members

__all__ = ["parse"]


def parse(errors: list[JsonObject]) -> Draft:
    first = errors[0]
    first_extensions = as_dict(first.get("extensions")) or {}
    code = as_code(first_extensions.get("code"))
    extensions = with_members(
        {name: value for name, value in first_extensions.items() if name != "code"},
        first,
        ("path", "locations"),
        errors,
    )
    return Draft(
        format="graphql",
        detail=as_str(first.get("message")),
        code=code,
        field_errors=[e for e in map(_field_error, errors) if e is not None],
        extensions=extensions,
        signals=(code,),
    )


def _field_error(error: JsonObject) -> FieldError | None:
    path = dotted_path(error.get("path"))
    if path is None:
        return None
    error_extensions = as_dict(error.get("extensions")) or {}
    return field_error(path, as_str(error.get("message")), as_code(error_extensions.get("code")))
