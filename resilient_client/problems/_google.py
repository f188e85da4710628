"""Google's ``google.rpc.Status`` over HTTP/JSON (AIP-193): ``{"error": {code, message,
status, details[]}}``.

- ``code`` is ``error.status``, the ``google.rpc.Code`` enum name (``UNAVAILABLE``). A bare
  Status carries the gRPC number in ``error.code`` instead; a number in 0-16 that is not
  the wire status is translated to its name.
- ``detail`` is ``error.message``. Details, by ``@type``: ``ErrorInfo`` →
  ``extensions`` ``reason``, ``domain``, ``metadata``; ``RetryInfo.retryDelay`` ("1.5s")
  → the body's retry hint; ``QuotaFailure`` → ``extensions["quota_violations"]``, and a
  daily/monthly quota marks a hard quota; ``BadRequest.fieldViolations`` → field errors;
  ``Help.links`` → ``extensions["help_links"]``; ``LocalizedMessage`` →
  ``extensions["localized_message"]``; ``RequestInfo.requestId`` → ``request_id``;
  ``PreconditionFailure``, ``ResourceInfo`` → ``extensions`` under snake_case names.
  ``DebugInfo`` (server internals, AIP-193 says never show it) is dropped; unknown
  details are kept in ``extensions["details"]``. Both lowerCamelCase and snake_case
  field names are read, as the proto3 JSON mapping allows.
"""

from __future__ import annotations

import re

from ._headers import safe_request_id
from ._model import Draft
from ._values import JsonObject, as_dict, as_int, as_str, either, field_error, objects

__all__ = ["duration_seconds", "parse"]

_GRPC_NAMES = (
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED",
)  # fmt: skip
_DURATION = re.compile(r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))s\s*")
# Quota ids look like "ReadRequestsPerDayPerProject"; descriptions say "per day".
_LONG_QUOTA = re.compile(r"per[ _-]?(?:day|month|year)|daily|monthly|yearly", re.IGNORECASE)
_MAPPED = frozenset({"code", "message", "status", "details"})
_RENAMED = {"PreconditionFailure": "precondition_violations", "ResourceInfo": "resource_info"}


def duration_seconds(value: object) -> float | None:
    """A protobuf JSON Duration (``"1.5s"``) in seconds, negative clamped to 0; else None."""
    text = as_str(value)
    match = _DURATION.fullmatch(text) if text is not None else None
    return max(0.0, float(match.group(1))) if match else None


def parse(error: JsonObject, status: int) -> Draft:
    code = as_str(error.get("status"))
    number = as_int(error.get("code"))
    if code is None and number is not None and number != status and 0 <= number <= 16:
        code = _GRPC_NAMES[number]
    draft = Draft(
        format="google",
        code=code,
        detail=as_str(error.get("message")),
        extensions={name: value for name, value in error.items() if name not in _MAPPED},
        signals=(code,),
    )
    for detail in objects(error.get("details")):
        _read_detail(draft, detail)
    return draft


def _read_detail(draft: Draft, detail: JsonObject) -> None:
    kind = (as_str(detail.get("@type")) or "").rpartition("/")[2].removeprefix("google.rpc.")
    ext = draft.extensions
    if kind == "ErrorInfo":
        for name in ("reason", "domain"):
            if (value := as_str(detail.get(name))) is not None:
                ext[name] = value
        metadata = as_dict(detail.get("metadata"))
        if metadata is not None:
            ext["metadata"] = metadata
            draft.hard_quota |= any(
                "quota" in key.lower() and isinstance(value, str) and _LONG_QUOTA.search(value)
                for key, value in metadata.items()
            )
    elif kind == "RetryInfo":
        draft.retry_after = duration_seconds(either(detail, "retryDelay", "retry_delay"))
    elif kind == "QuotaFailure":
        violations = objects(detail.get("violations"))
        ext["quota_violations"] = violations
        draft.hard_quota |= any(
            isinstance(text, str) and _LONG_QUOTA.search(text)
            for violation in violations
            for text in violation.values()
        )
    elif kind == "BadRequest":
        for violation in objects(either(detail, "fieldViolations", "field_violations")):
            draft.field_errors.append(
                field_error(
                    as_str(violation.get("field")),
                    as_str(violation.get("description")),
                    as_str(violation.get("reason")),
                )
            )
    elif kind == "Help":
        ext["help_links"] = objects(detail.get("links"))
    elif kind == "LocalizedMessage":
        if (message := as_str(detail.get("message"))) is not None:
            ext["localized_message"] = message
    elif kind == "RequestInfo":
        draft.request_id = safe_request_id(as_str(either(detail, "requestId", "request_id")))
    elif kind in _RENAMED:
        ext[_RENAMED[kind]] = {k: v for k, v in detail.items() if k != "@type"}
    elif kind != "DebugInfo":
        ext.setdefault("details", []).append(detail)
