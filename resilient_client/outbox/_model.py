"""What the outbox keeps: :class:`OutboxEntry`, :class:`ReplayResult`, and how an entry is
made from a request and written to a store.

Times inside an entry are wall-clock instants: an entry outlives the process that parked
it, and another process (another host's, with Redis) replays it, so a monotonic clock
means nothing there. The public fields are UTC datetimes; stores keep epoch seconds.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Required, TypedDict
from urllib.parse import urlsplit, urlunsplit

from .._redact import DEFAULT_REDACTION, Redaction
from ..problems._model import Problem

__all__ = [
    "DROPPED_HEADERS",
    "EntryState",
    "OutboxEntry",
    "ParkDetails",
    "ReplayResult",
    "decode_entry",
    "encode_entry",
    "new_entry",
    "stored_headers",
    "stored_url",
]

EntryState = Literal["pending", "delivered", "dead"]

SCHEMA = "resilient-client/outbox/1"

DROPPED_HEADERS: frozenset[str] = frozenset(
    {
        # Framing and hop-by-hop: the replaying client computes its own.
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        # Trace context belongs to the replay's own trace; baggage may carry personal data.
        "traceparent",
        "tracestate",
        "baggage",
    }
)
"""Headers never stored besides the sensitive ones (which :class:`Redaction` names)."""

_LAST_ERROR_LIMIT = 200


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One parked write.

    - ``id``: the entry's own id (a random UUID, hex); ``idempotency_key``: the key the
      write was first sent with, sent again on every replay; ``idempotency_header``: the
      header that carried it.
    - ``endpoint``: the endpoint key of the original call (``"POST /v1/payments"``).
    - ``parked_at``: when it was parked (UTC); ``attempts``: the original call's attempts;
      ``last_error``: a short, secret-free account of the last failure (``"status 503"``,
      ``"ConnectError"``), updated by each replay that fails.
    - ``state``: ``"pending"`` until it ends ``"delivered"`` or ``"dead"``; ``reason``
      says why it died, ``problem`` keeps the answer that killed it (``None`` otherwise).
    - ``method``, ``url``, ``body``, ``headers``: the write as it will be sent again -
      without sensitive headers, URL credentials or sensitive query parameters (the
      replaying client applies its own); ``correlation_id``: the original call's.
    - ``replays``: replay sends so far; ``next_replay_at``: when it is due (UTC);
      ``settled_at``: when it was delivered or died (``None`` while pending).
    """

    id: str
    idempotency_key: str
    endpoint: str
    parked_at: datetime
    attempts: int
    last_error: str
    state: EntryState = "pending"
    method: str = "POST"
    url: str = ""
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    idempotency_header: str = "Idempotency-Key"
    correlation_id: str | None = None
    replays: int = 0
    next_replay_at: datetime | None = None
    settled_at: datetime | None = None
    reason: str | None = None
    problem: Problem | None = None

    def __repr__(self) -> str:
        # Never the body or the headers: a repr ends up in logs.
        return (
            f"OutboxEntry(id={self.id!r}, endpoint={self.endpoint!r}, state={self.state!r}, "
            f"attempts={self.attempts}, replays={self.replays}, last_error={self.last_error!r})"
        )

    @property
    def due(self) -> float:
        """When the entry is due, in epoch seconds (its parking instant if never put off)."""
        when = self.next_replay_at or self.parked_at
        return when.timestamp()


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What one replay did: the entries it delivered, killed, and left pending (sent and
    still failing, or held back because their endpoint was still failing). Entries not
    yet due are in none of the lists."""

    delivered: list[OutboxEntry] = field(default_factory=list)
    dead: list[OutboxEntry] = field(default_factory=list)
    pending: list[OutboxEntry] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.delivered) + len(self.dead) + len(self.pending)


def utc(seconds: float) -> datetime:
    """Epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


def one_line(text: str, limit: int = _LAST_ERROR_LIMIT) -> str:
    """``text`` on one line, at most ``limit`` characters (it is shown in tables and
    exception messages)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def stored_url(url: str, redaction: Redaction = DEFAULT_REDACTION) -> str:
    """``url`` without its credentials (``user:pw@``) and without the query parameters
    ``redaction`` calls sensitive: the replaying client adds its own auth and ``params``."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query:
        # A parameter is sensitive when redacting it alone changes it.
        query = "&".join(part for part in query.split("&") if redaction.query(part) == part)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def stored_headers(
    headers: Any, redaction: Redaction = DEFAULT_REDACTION
) -> tuple[tuple[str, str], ...]:
    """The headers of a request that may be written to a store, in order.

    Dropped: every header ``redaction`` calls sensitive (``Authorization``, ``Cookie``,
    ``Proxy-Authorization``, API-key headers, and any name matching its pattern) and
    :data:`DROPPED_HEADERS`. ``headers`` is an ``httpx.Headers`` (either library's; names
    keep their case) or anything with ``multi_items()`` / ``items()``.
    """
    raw = getattr(headers, "raw", None)  # names as sent, not lower-cased
    if raw is not None:
        items = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw]
    else:
        items = list(headers.multi_items() if hasattr(headers, "multi_items") else headers.items())
    return tuple(
        (str(name), str(value))
        for name, value in items
        if name.strip().lower() not in DROPPED_HEADERS and not redaction.is_sensitive_header(name)
    )


class ParkDetails(TypedDict, total=False):
    """What is stored with a parked write besides the request: the keywords of
    ``Outbox.park`` / ``Outbox.apark``, declared once. The defaults are
    :func:`new_entry`'s."""

    endpoint: Required[str]
    idempotency_key: Required[str]
    idempotency_header: str
    correlation_id: str | None
    attempts: int
    last_error: str


def new_entry(
    request: Any,
    *,
    now: float,
    redaction: Redaction = DEFAULT_REDACTION,
    endpoint: str,
    idempotency_key: str,
    idempotency_header: str = "Idempotency-Key",
    correlation_id: str | None = None,
    attempts: int = 1,
    last_error: str = "",
) -> OutboxEntry:
    """A pending entry for ``request`` (an ``httpx.Request`` of either library), parked at
    ``now`` (epoch seconds) and due at once; the other keywords are :class:`ParkDetails`.
    Raises ``ValueError`` for a request whose body is a one-shot stream not read into
    memory (it cannot be sent again) or an empty idempotency key."""
    if not idempotency_key:
        raise ValueError("only writes with an idempotency key can be parked")
    try:
        body = bytes(request.content)
    except Exception as exc:  # httpx.RequestNotRead, or httpx2's
        raise ValueError("a write whose body is a one-shot stream cannot be parked") from exc
    parked = utc(now)
    return OutboxEntry(
        id=uuid.uuid4().hex,
        idempotency_key=idempotency_key,
        endpoint=endpoint,
        parked_at=parked,
        attempts=attempts,
        last_error=one_line(last_error),
        method=str(request.method).upper(),
        url=stored_url(str(request.url), redaction),
        body=body,
        headers=stored_headers(request.headers, redaction),
        idempotency_header=idempotency_header,
        correlation_id=correlation_id,
        next_replay_at=parked,
    )


# -- the stored form, shared by every store -----------------------------------------


def _seconds(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _when(value: object) -> datetime | None:
    return None if value is None else utc(float(value))  # type: ignore[arg-type]


def encode_entry(entry: OutboxEntry) -> str:
    """The entry as one JSON document (the body base64-encoded)."""
    document = {
        "schema": SCHEMA,
        "id": entry.id,
        "idempotency_key": entry.idempotency_key,
        "idempotency_header": entry.idempotency_header,
        "endpoint": entry.endpoint,
        "method": entry.method,
        "url": entry.url,
        "body": base64.b64encode(entry.body).decode("ascii"),
        "headers": [list(pair) for pair in entry.headers],
        "correlation_id": entry.correlation_id,
        "parked_at": entry.parked_at.timestamp(),
        "attempts": entry.attempts,
        "last_error": entry.last_error,
        "state": entry.state,
        "replays": entry.replays,
        "next_replay_at": _seconds(entry.next_replay_at),
        "settled_at": _seconds(entry.settled_at),
        "reason": entry.reason,
        "problem": None if entry.problem is None else entry.problem.model_dump(mode="json"),
    }
    return json.dumps(document, separators=(",", ":"))


def decode_entry(text: str | bytes) -> OutboxEntry:
    """The entry :func:`encode_entry` wrote. Raises ``ValueError`` for anything else."""
    try:
        document = json.loads(text)
        if document.get("schema") != SCHEMA:
            raise ValueError(f"not an outbox entry of schema {SCHEMA}")
        problem = document.get("problem")
        return OutboxEntry(
            id=document["id"],
            idempotency_key=document["idempotency_key"],
            idempotency_header=document["idempotency_header"],
            endpoint=document["endpoint"],
            method=document["method"],
            url=document["url"],
            body=base64.b64decode(document["body"]),
            headers=tuple((str(n), str(v)) for n, v in document["headers"]),
            correlation_id=document["correlation_id"],
            parked_at=utc(float(document["parked_at"])),
            attempts=int(document["attempts"]),
            last_error=document["last_error"],
            state=document["state"],
            replays=int(document["replays"]),
            next_replay_at=_when(document["next_replay_at"]),
            settled_at=_when(document["settled_at"]),
            reason=document["reason"],
            problem=None if problem is None else Problem.model_validate(problem),
        )
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"malformed outbox entry: {type(exc).__name__}") from exc
