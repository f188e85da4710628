"""OpenAI-style ``{"error": {message, type, param, code}}`` and Anthropic's
``{"type": "error", "error": {type, message}, "request_id": ...}``: format ``"openai"``.

``detail`` is ``error.message``; ``type`` is ``error.type``; ``code`` is ``error.code``,
else ``error.type``. A ``param`` becomes a field error. Anthropic's body ``request_id``
becomes ``request_id``. Other members of ``error`` and of the body stay in
``extensions``.
"""

from __future__ import annotations

from ._headers import safe_request_id
from ._model import Draft
from ._values import JsonObject, as_code, as_str, field_error

__all__ = ["parse"]

_MAPPED = frozenset({"message", "type", "param", "code"})
_BODY_MAPPED = frozenset({"error", "type", "request_id"})


def parse(error: JsonObject, body: JsonObject) -> Draft:
    kind = as_str(error.get("type"))
    code = as_code(error.get("code"))
    message = as_str(error.get("message"))
    param = as_str(error.get("param"))
    extensions = {name: value for name, value in error.items() if name not in _MAPPED}
    for name, value in body.items():
        if name not in _BODY_MAPPED:
            extensions.setdefault(name, value)
    return Draft(
        format="openai",
        type=kind,
        detail=message,
        code=code or kind,
        request_id=safe_request_id(as_str(body.get("request_id"))),
        field_errors=[field_error(param, message, code)] if param else [],
        extensions=extensions,
        signals=(code, kind),
    )
