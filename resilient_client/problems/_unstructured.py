"""Everything that is none of the known envelopes: HTML from a proxy, plain text, an empty
body, invalid JSON, a JSON array or scalar, or an object of no known shape.

The title is the status' reason phrase. A ``text/plain`` body becomes the detail (whitespace
collapsed, control characters dropped, at most 1,024 characters, an ellipsis marking a cut);
HTML and other media types never do (a proxy page is markup, not a message). From a JSON
object of unknown shape a few common members are read (FastAPI and DRF ``detail``,
``message``, OAuth's ``error`` / ``error_description``, ``code``, FastAPI's 422
``detail[]`` list as field errors); the object's other members stay in ``extensions``.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from ._model import Draft, FieldError, one_line
from ._values import JsonObject, as_code, as_dict, as_str, dotted_path, field_error, objects

__all__ = ["from_json", "from_text"]

_TEXT_LIMIT = 1024
_DETAIL_MEMBERS = ("detail", "message", "error_description", "error_message", "title")
_CODE_MEMBERS = ("code", "error", "error_code")


def from_text(status: int, media_type: str, text: str) -> Draft:
    detail = None
    if media_type == "text/plain":
        detail = one_line(text, _TEXT_LIMIT) or None
    return Draft(format="unstructured", title=_phrase(status), detail=detail)


def from_json(status: int, value: object) -> Draft:
    body = as_dict(value)
    if body is None:
        return Draft(format="unstructured", title=_phrase(status))
    extensions = dict(body)
    detail = _take(extensions, _DETAIL_MEMBERS, as_str)
    code = _take(extensions, _CODE_MEMBERS, as_code)
    field_errors = _fastapi_errors(extensions.get("detail"))
    if field_errors:
        del extensions["detail"]
    return Draft(
        format="unstructured",
        title=_phrase(status),
        detail=detail,
        code=code,
        field_errors=field_errors,
        extensions=extensions,
        signals=(code,),
    )


def _phrase(status: int) -> str | None:
    return httpx.codes.get_reason_phrase(status) or None


def _take(
    members: JsonObject, names: tuple[str, ...], read: Callable[[object], str | None]
) -> str | None:
    for name in names:
        value = read(members.get(name))
        if value is not None:
            del members[name]
            return value
    return None


def _fastapi_errors(value: object) -> list[FieldError]:
    return [
        field_error(
            dotted_path(error.get("loc")), as_str(error.get("msg")), as_str(error.get("type"))
        )
        for error in objects(value)
    ]
