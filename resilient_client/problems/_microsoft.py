"""Microsoft REST API Guidelines (Azure, Graph): ``{"error": {code, message, target,
details[], innererror}}``.

- ``code`` is ``error.code`` (what Azure also sends as ``x-ms-error-code``); ``detail`` is
  ``error.message``.
- The ``innererror`` chain (Graph spells it ``innerError``) is walked to its deepest
  ``code``, which goes to ``extensions["innererror_code"]`` and is the first code the
  classifier looks at; the chain itself stays in ``extensions["innererror"]``. Graph's
  ``innerError["request-id"]`` becomes ``request_id``.
- ``details[]`` entries become field errors (``target``, ``message``, ``code``); the
  top-level ``target`` and any extra members stay in ``extensions``.
"""

from __future__ import annotations

from ._headers import safe_request_id
from ._model import Draft
from ._values import JsonObject, as_code, as_dict, as_str, either, field_error, objects

__all__ = ["parse"]

_MAPPED = frozenset({"code", "message", "details", "innererror", "innerError"})
_MAX_DEPTH = 32  # an innererror chain deeper than this is garbage, not information


def parse(error: JsonObject) -> Draft:
    code = as_code(error.get("code"))
    extensions = {name: value for name, value in error.items() if name not in _MAPPED}
    inner_code: str | None = None
    request_id: str | None = None
    inner = _inner(error)
    if inner is not None:
        extensions["innererror"] = inner
    for _ in range(_MAX_DEPTH):
        if inner is None:
            break
        inner_code = as_code(inner.get("code")) or inner_code
        request_id = request_id or safe_request_id(as_str(inner.get("request-id")))
        inner = _inner(inner)
    if inner_code is not None:
        extensions["innererror_code"] = inner_code

    field_errors = [
        field_error(
            as_str(detail.get("target")),
            as_str(detail.get("message")),
            as_code(detail.get("code")),
        )
        for detail in objects(error.get("details"))
    ]
    return Draft(
        format="microsoft",
        code=code,
        detail=as_str(error.get("message")),
        request_id=request_id,
        field_errors=field_errors,
        extensions=extensions,
        signals=(inner_code, code),
    )


def _inner(error: JsonObject) -> JsonObject | None:
    return as_dict(either(error, "innererror", "innerError"))
