"""The normalized error: :class:`Problem`, its :class:`FieldError` items and categories.

Every envelope parser fills a mutable :class:`Draft`; ``_parse`` adds what comes from the
headers and the classifier and turns it into a :class:`Problem` once. That one validation
is cheap (pydantic-core checks the top-level values only; an ``Any`` value is not walked)
and, measured, faster than ``model_construct``'s Python loop for a model this size.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from .._mask import without_unsafe_characters
from .._redact import mask_text, redact_text

__all__ = ["Draft", "ErrorCategory", "FieldError", "Problem", "ProblemFormat", "one_line"]

ProblemFormat = Literal[
    "rfc9457", "google", "microsoft", "jsonapi", "openai", "stripe", "graphql", "unstructured"
]
"""Which envelope the body was read as; ``"openai"`` covers Anthropic's as well."""


class ErrorCategory(enum.StrEnum):
    """What kind of failure a problem is; the decision table is in ``problems._classify``."""

    TRANSIENT = "transient"
    THROTTLED = "throttled"
    INVALID_REQUEST = "invalid_request"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    PERSISTENT = "persistent"
    NETWORK = "network"


class FieldError(BaseModel):
    """One invalid input: ``field`` is the envelope's path (a JSON Pointer, a dotted path,
    a parameter name) as sent, or None when the error names none."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str | None = None
    message: str = ""
    code: str | None = None


class Problem(BaseModel):
    """An error response normalized after RFC 9457, whatever envelope it came in.

    ``status`` is the wire status (0 for a transport failure, see :meth:`for_network_error`);
    a different ``status`` member in an RFC 9457 body is kept in ``extensions["status"]``.
    ``retry_after`` is in seconds, None when neither headers nor body gave a hint.
    ``retryable`` is the client's verdict before the method/idempotency gate, which the
    retry pipeline applies on top.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: int
    type: str | None = None
    title: str | None = None
    detail: str | None = None
    instance: str | None = None
    code: str | None = None
    request_id: str | None = None
    retry_after: float | None = None
    retryable: bool = False
    category: ErrorCategory = ErrorCategory.PERSISTENT
    field_errors: list[FieldError] = Field(default_factory=list)
    format: ProblemFormat = "unstructured"
    extensions: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def for_network_error(cls, exc_name: str) -> Problem:
        """The problem for a transport failure (no response): status 0, category
        ``NETWORK``, retryable (the pipeline still applies its method gate);
        ``exc_name`` (e.g. ``"ConnectError"``) becomes the detail."""
        return cls(status=0, detail=exc_name, retryable=True, category=ErrorCategory.NETWORK)

    def summary(self) -> str:
        """One log-safe line: status and reason phrase, ``[code]``, the detail (whitespace
        collapsed, control and bidirectional formatting characters dropped, cut at 200
        characters) and the request id. Nothing else from the response: no URL, no header
        value, no body beyond ``detail``; a URL the server quoted in them has its
        credentials and sensitive query values replaced with ``REDACTED``, as telemetry's
        ``url.full`` does, and the code and the detail (or title) have e-mail addresses,
        card numbers and tokens masked (``[email]``, ``[card]``, ``[token]``; see
        :func:`~resilient_client.telemetry.mask_text`)."""
        if self.status == 0:
            phrase = ""
            line = "network error"
        else:
            phrase = httpx.codes.get_reason_phrase(self.status)
            line = f"{self.status} {phrase}" if phrase else str(self.status)
        # Masked like the detail: an ad-hoc API's {"error": "<message>"} is read as the
        # code, and quotes what the caller sent as often as a detail does.
        code = shown_code(self) or ""
        if code:
            line += f" [{code}]"
        text = self.detail or (self.title if self.title != phrase else None)
        text = _safe_line(text, 200, mask=True) if text else ""
        if text:
            line += ": " + text
        if _reused_idempotency_key(self):
            line += "; idempotency key reused with a different payload"
        request_id = _safe_line(self.request_id, 200) if self.request_id else ""
        if request_id:
            line += f" (request id {request_id})"
        return line


def _reused_idempotency_key(problem: Problem) -> bool:
    # The idempotency-key draft answers a key replayed with another payload with 422;
    # Stripe says the same with a 400 of type "idempotency_error" (its 409s mean "still
    # in flight", a different thing).
    if problem.type == "idempotency_error" and problem.status != 409:
        return True
    if problem.status != 422:
        return False
    return any(
        "idempot" in text.lower()
        for text in (problem.detail, problem.type, problem.code, problem.title)
        if text
    )


_SPACE = re.compile(r"\s")
_DIGITS_AND_SEPARATORS = "0123456789 -"


def one_line(text: str, limit: int) -> str:
    """``text`` on one line without control characters, at most ``limit`` characters
    (an ellipsis marks a cut)."""
    # Work on a bounded prefix: ``detail`` may be 64 KiB and this runs on every error.
    return _cut(_collapsed(text[: limit * 4]), limit)


def shown_code(problem: Problem) -> str | None:
    """``problem``'s code as messages, log records, spans and incident evidence show it:
    one line of at most 80 characters, with e-mail addresses, card numbers and tokens
    masked (an ad-hoc API's ``{"error": "<message>"}`` is read as the code, and quotes
    what the caller sent as often as a detail does); ``problem.code`` keeps the server's
    text."""
    return _safe_line(problem.code, 80, mask=True) if problem.code else None


def _safe_line(text: str, limit: int, *, mask: bool = False) -> str:
    """:func:`one_line`, with the URLs in ``text`` redacted - and with ``mask``, e-mail
    addresses, card numbers and tokens masked - before it is cut (a URL cut short could
    lose the ``@`` or ``=`` that marks its secret, a card number cut short its check)."""
    bound = limit * 4
    if len(text) > bound:  # the prefix one_line reads, to the end of the word it stops in
        space = _SPACE.search(text, bound)
        if space is not None:
            # A card number with spaces in it may straddle the cut: drop its first part
            # rather than show digits the masking can no longer recognise.
            text = text[: space.start()].rstrip(_DIGITS_AND_SEPARATORS)
    return _cut(mask_text(_collapsed(text)) if mask else redact_text(_collapsed(text)), limit)


def _collapsed(text: str) -> str:
    return " ".join(without_unsafe_characters(text).split())


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass(slots=True)
class Draft:
    """What an envelope parser read from the body, before headers and classification.

    ``signals`` are the body's machine codes the classifier looks up, most specific first;
    ``retry_after`` is the body's own hint (seconds); ``hard_quota`` marks a quota that
    will not refill soon (a daily quota, OpenAI ``insufficient_quota``).
    """

    format: ProblemFormat
    type: str | None = None
    title: str | None = None
    detail: str | None = None
    instance: str | None = None
    code: str | None = None
    request_id: str | None = None
    retry_after: float | None = None
    field_errors: list[FieldError] = field(default_factory=list)
    extensions: dict[str, Any] = field(default_factory=dict)
    signals: tuple[str | None, ...] = ()
    hard_quota: bool = False
