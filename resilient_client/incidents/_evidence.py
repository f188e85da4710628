"""Failed calls turned into evidence, off the call path.

The call path only appends a :class:`Failure` (references and a few numbers) to a bounded
queue; the monitor's thread turns each into an :class:`~._incident.Evidence` - the URL
redacted, the provider's problem parsed, its title masked - and counts it by status,
exception class, problem code and category into a per-provider :class:`Book`: one
:class:`~._incident.Contribution` per window bucket (what a process brings when it first
joins an incident) and one since the last evaluation (what it adds afterwards).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .._redact import mask_text, neutralize, redact_url
from ..problems import parse_problem
from ..problems._model import shown_code
from ._incident import FIRST_SAMPLES, RECENT_SAMPLES, Contribution, Evidence, utc

__all__ = ["Book", "Failure", "evidence"]

_TEXT_LIMIT = 200  # characters kept of a server's code, title or request id


class Failure(NamedTuple):
    """A failed call as the call path leaves it (references only: no work done)."""

    wall: float
    provider: str
    endpoint: str
    request: Any
    response: Any
    error: BaseException | None
    correlation_id: str | None
    idempotency_key: str | None
    attempts: int


def _clip(text: object) -> str | None:
    if text is None:
        return None
    return neutralize(str(text))[:_TEXT_LIMIT]


def evidence(failure: Failure) -> tuple[Evidence, str | None]:
    """The evidence of one failure, and its problem category (``None`` without one)."""
    request, response, error = failure.request, failure.response, failure.error
    problem = getattr(error, "problem", None)
    if problem is None and response is not None and response.status_code >= 400:
        problem = parse_problem(response, now=failure.wall)
    category = None
    code = title = request_id = None
    if problem is not None:
        category = str(problem.category)
        code = _clip(shown_code(problem))
        title = None if problem.title is None else _clip(mask_text(problem.title[:1000]))
        request_id = _clip(problem.request_id)
    elif error is not None:
        category = "network"
    trace_id = None
    traceparent = request.headers.get("traceparent")
    if traceparent:
        parts = traceparent.split("-")
        if len(parts) >= 3 and len(parts[1]) == 32:
            trace_id = parts[1]
    return (
        Evidence(
            at=utc(failure.wall),
            method=request.method,
            url=redact_url(request.url)[:2000],
            endpoint=failure.endpoint,
            status=None if response is None else response.status_code,
            error=None if error is None else type(error).__name__,
            code=code,
            title=title,
            request_id=request_id,
            trace_id=trace_id,
            correlation_id=_clip(failure.correlation_id),
            idempotency_key=_clip(failure.idempotency_key),
            attempts=failure.attempts,
        ),
        category,
    )


def _count(counts: dict[Any, int], key: Any) -> None:
    counts[key] = counts.get(key, 0) + 1


def add(part: Contribution, found: Evidence, category: str | None) -> None:
    """Count ``found`` into ``part`` (its samples kept as first and latest ones)."""
    if found.status is not None:
        _count(part.statuses, found.status)
    if found.error is not None:
        _count(part.errors, found.error)
    if found.code is not None:
        _count(part.codes, found.code)
    if category is not None:
        _count(part.categories, category)
    samples = part.samples
    samples.append(found)
    if len(samples) > FIRST_SAMPLES + RECENT_SAMPLES:
        del samples[FIRST_SAMPLES]


class Book:
    """One provider's evidence, per window bucket and since the last evaluation."""

    __slots__ = ("buckets", "delta")

    def __init__(self) -> None:
        self.buckets: dict[int, Contribution] = {}
        self.delta = Contribution()

    def add(self, bucket: int, found: Evidence, category: str | None) -> None:
        add(self.delta, found, category)
        part = self.buckets.get(bucket)
        if part is None:
            part = self.buckets[bucket] = Contribution()
        add(part, found, category)

    def window(self, oldest: int) -> Contribution:
        """Everything counted in buckets from ``oldest`` on (older ones are dropped)."""
        for index in [i for i in self.buckets if i < oldest]:
            del self.buckets[index]
        merged = Contribution()
        for index in sorted(self.buckets):
            part = self.buckets[index]
            for name in ("statuses", "errors", "codes", "categories"):
                counts = getattr(merged, name)
                for key, count in getattr(part, name).items():
                    counts[key] = counts.get(key, 0) + count
            for found in part.samples:
                merged.samples.append(found)
                if len(merged.samples) > FIRST_SAMPLES + RECENT_SAMPLES:
                    del merged.samples[FIRST_SAMPLES]
        return merged
