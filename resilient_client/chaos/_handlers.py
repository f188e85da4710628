"""The fault endpoints. Each takes a :class:`Call`; query parameters are documented per
handler and a malformed one answers 400 (see :class:`BadParam`)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime

from ._asgi import BadParam, http_date, json_body
from ._call import Call
from ._envelopes import FORMATS, envelope

__all__ = [
    "Failure",
    "drop",
    "echo",
    "fail",
    "failure",
    "flaky",
    "limited",
    "ok",
    "redirect",
    "outage",
    "problem",
    "slow",
    "stall",
    "status",
]

_MAX_SIZE = 64 * 1024 * 1024


def _status(raw: str | None, default: int, param: str = "status") -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParam(param, f"expected an HTTP status, got {raw!r}") from None
    if not 200 <= value <= 599:
        raise BadParam(param, f"expected a status within 200..599, got {raw!r}")
    return value


def _seconds_text(seconds: float) -> str:
    return str(int(seconds)) if seconds == int(seconds) else repr(seconds)


@dataclass(frozen=True, slots=True)
class Failure:
    """How a failure is decorated, parsed from the query (see :func:`failure`)."""

    retry_after: float | None
    retry_after_date: float | None
    retry_after_ms: float | None
    should_retry: bool | None
    request_id: str | None
    format: str | None


def failure(call: Call, format: str | None = None) -> Failure:
    """Parse the failure decorations; parsed eagerly, so a typo answers 400 at once.

    ``retry_after=S`` (Retry-After delta-seconds), ``retry_after_date=S`` (Retry-After as
    an IMF-fixdate S seconds, rounded up, after the ``Date`` header sent with it),
    ``retry_after_ms=MS`` (``retry-after-ms``), ``should_retry=true|false``
    (``x-should-retry``), ``format=<envelope>`` (body in that envelope; default
    ``{"ok": false, "status", "attempt"}``), ``request_id=ID`` (``x-request-id``).
    ``format`` given here (from the path) overrides the query's.
    """
    req = call.request
    spec = Failure(
        retry_after=req.number("retry_after"),
        retry_after_date=req.number("retry_after_date"),
        retry_after_ms=req.number("retry_after_ms"),
        should_retry=req.flag("should_retry"),
        request_id=req.text("request_id"),
        format=format if format is not None else req.text("format"),
    )
    if spec.retry_after is not None and spec.retry_after_date is not None:
        raise BadParam("retry_after_date", "give retry_after or retry_after_date, not both")
    if spec.format is not None and spec.format not in FORMATS:
        raise BadParam("format", f"unknown envelope {spec.format!r}; expected one of {FORMATS}")
    return spec


async def fail(call: Call, status: int, spec: Failure) -> None:
    """Answer ``status`` decorated as ``spec`` says."""
    headers: dict[str, str] = {}
    hint = spec.retry_after
    if spec.retry_after is not None:
        headers["retry-after"] = _seconds_text(spec.retry_after)
    if spec.retry_after_date is not None:
        # Both dates from one whole second, so Retry-After − Date is exactly the delay.
        now = math.floor(call.clock.wall())
        delay = math.ceil(spec.retry_after_date)
        headers["date"] = http_date(now)
        headers["retry-after"] = http_date(now + delay)
        hint = float(delay)
    if spec.retry_after_ms is not None:
        headers["retry-after-ms"] = _seconds_text(spec.retry_after_ms)
        hint = spec.retry_after_ms / 1000.0 if hint is None else hint
    if spec.should_retry is not None:
        headers["x-should-retry"] = "true" if spec.should_retry else "false"
    if spec.request_id is not None:
        headers["x-request-id"] = spec.request_id

    if status in (204, 304):
        body = b""
    elif spec.format is not None:
        extra, body = envelope(spec.format, status, request_id=spec.request_id, retry_after=hint)
        headers = {**extra, **headers}
    else:
        headers = {"content-type": "application/json", **headers}
        body = json_body({"ok": status < 400, "status": status, "attempt": call.attempt})
    await call.answer(status, body, headers)


async def _ok(call: Call) -> None:
    await call.json(200, {"ok": True, "attempt": call.attempt})


async def ok(call: Call) -> None:
    """200 ``{"ok": true}``; ``size=N`` answers N bytes of octet-stream instead;
    ``delay=S`` waits S seconds first."""
    size = call.request.integer("size")
    delay = call.request.number("delay", 0.0) or 0.0
    if size is not None and size > _MAX_SIZE:
        raise BadParam("size", f"at most {_MAX_SIZE} bytes")
    if delay > 0:
        outcome = await call.wait(delay)
        if outcome != "elapsed":
            return await call.abandon(outcome)
    if size is None:
        await call.json(200, {"ok": True})
    else:
        await call.answer(200, b"x" * size, {"content-type": "application/octet-stream"})


async def flaky(call: Call) -> None:
    """The first ``fail=N`` (default 1) requests of the name answer ``status`` (default
    503, decorated as in :func:`failure`); later ones 200 ``{"ok": true, "attempt": k}``."""
    failures = call.request.integer("fail", 1) or 0
    code = _status(call.request.text("status"), 503)
    spec = failure(call)
    if call.attempt <= failures:
        return await fail(call, code, spec)
    await _ok(call)


async def status(call: Call) -> None:
    """``/status/{name}/{code}``: always ``code``, decorated as in :func:`failure`."""
    await fail(call, _status(call.segments[0], 0, param="code"), failure(call))


async def stall(call: Call) -> None:
    """The first ``times=N`` requests (default: every one) wait ``seconds=S`` (default 30)
    before any response byte; the rest, and a stall that ran out, answer 200 at once.
    ``p=F`` (0..1) instead stalls a share F of the name's requests, each drawn from its
    name, number and ``seed=K`` (default 0): the same requests stall on every run (a slow
    tail, for hedging)."""
    seconds = call.request.number("seconds", 30.0) or 0.0
    times = call.request.integer("times")
    share = call.request.number("p")
    if share is not None:
        if share > 1:
            raise BadParam("p", f"expected a share in [0, 1], got {share}")
        seed = call.request.integer("seed", 0)
        stalls = random.Random(f"{call.name}:{call.attempt}:{seed}").random() < share
    else:
        stalls = times is None or call.attempt <= times
    if stalls:
        outcome = await call.wait(seconds)
        if outcome != "elapsed":
            return await call.abandon(outcome)
    await _ok(call)


async def drop(call: Call) -> None:
    """The first ``times=N`` requests (default 1) lose the connection: ``when=before``
    (default) before any response byte, ``when=mid`` after the headers (promising a longer
    ``content-length``) and half the body. Later requests answer 200 ``{"ok": true}``."""
    when = call.request.text("when") or "before"
    times = call.request.integer("times", 1) or 0
    if when not in ("before", "mid"):
        raise BadParam("when", f"expected 'before' or 'mid', got {when!r}")
    if call.attempt > times:
        return await call.json(200, {"ok": True})
    if when == "mid":
        await call.answer(
            200,
            b'{"ok":true,"padding":"',
            {"content-type": "application/json"},
            content_length=1024,
            more_body=True,
        )
    await call.cut()


async def echo(call: Call) -> None:
    """200 with what the server received: method, path, query, headers, body (as text)."""
    req = call.request
    await call.json(
        200,
        {
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "headers": dict(req.headers),
            "body": req.body.decode("utf-8", errors="replace"),
        },
    )


async def redirect(call: Call) -> None:
    """A redirect to ``to=PATH`` (default ``/ok/<name>``) with ``status=`` (default 307,
    which keeps the method and body)."""
    status = call.request.integer("status") or 307
    if status not in (301, 302, 303, 307, 308):
        raise BadParam("status", "a redirect status: 301, 302, 303, 307 or 308")
    target = call.request.text("to") or f"/ok/{call.name}"
    if not target.startswith("/"):
        raise BadParam("to", "a path on this server, starting with /")
    await call.answer(status, b"", {"location": target})


async def slow(call: Call) -> None:
    """Wait ``seconds=S`` (default 1), then 200: a slot-holder for concurrency tests."""
    outcome = await call.wait(call.request.number("seconds", 1.0) or 0.0)
    if outcome != "elapsed":
        return await call.abandon(outcome)
    await _ok(call)


async def outage(call: Call) -> None:
    """Fails as the name's failure plan draws (``ChaosApp.set_failure_plan``), decorated as
    in :func:`failure`; 200 ``{"ok": true, "attempt": k}`` otherwise, and always without a plan."""
    spec = failure(call)
    drawn = call.recorder.draw_failure(call.name)
    if drawn is not None:
        return await fail(call, drawn, spec)
    await _ok(call)


async def problem(call: Call) -> None:
    """``/problem/{name}/{format}``: ``status=N`` (default 400) in that envelope,
    decorated as in :func:`failure`."""
    spec = failure(call, format=call.segments[0])
    await fail(call, _status(call.request.text("status"), 400), spec)


LIMIT_FAMILIES = ("ietf", "x", "x-epoch", "openai", "anthropic", "none")
"""The rate-limit header families ``/limited`` answers with (``none``: no headers)."""


def _go_duration(seconds: float) -> str:
    """OpenAI's form of a duration: ``20ms``, ``1.5s``, ``6m0s`` (rounded up to 1 ms)."""
    millis = math.ceil(seconds * 1000)
    if millis < 1000:
        return f"{millis}ms"
    minutes, rest = divmod(millis, 60_000)
    text = f"{rest / 1000:g}s"
    return f"{minutes}m{text}" if minutes else text


def _limit_headers(
    family: str, limit: int, window: float, remaining: int, reset: float, wall: float
) -> dict[str, str]:
    """The family's headers for ``remaining`` of ``limit`` requests left, the window
    resetting in ``reset`` seconds; whole seconds are rounded up, so a client that
    waits what it is told never arrives early."""
    whole = math.ceil(reset)
    if family == "ietf":
        return {
            "ratelimit": f'"default";r={remaining};t={whole}',
            "ratelimit-policy": f'"default";q={limit};w={math.ceil(window)}',
        }
    if family in ("x", "x-epoch"):
        when = math.ceil(wall + reset) if family == "x-epoch" else whole
        return {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-reset": str(when),
        }
    if family == "openai":
        return {
            "x-ratelimit-limit-requests": str(limit),
            "x-ratelimit-remaining-requests": str(remaining),
            "x-ratelimit-reset-requests": _go_duration(reset),
        }
    if family == "anthropic":
        moment = datetime.fromtimestamp(math.ceil(wall + reset), UTC)
        return {
            "anthropic-ratelimit-requests-limit": str(limit),
            "anthropic-ratelimit-requests-remaining": str(remaining),
            "anthropic-ratelimit-requests-reset": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    return {}


async def limited(call: Call) -> None:
    """A rate-limited endpoint: at most ``limit=N`` (default 10) requests of the name in
    each fixed window of ``window=S`` seconds (default 1; the first window opens with
    the name's first request, on the server's clock). Every request counts, whatever its
    fate. Within the limit, 200 ``{"ok": true, "attempt": k}``; past it, 429 with
    ``Retry-After`` (whole seconds to the window's end, rounded up). Both carry the
    ``family=`` headers (:data:`LIMIT_FAMILIES`; default ``ietf``): ``ietf``
    (``RateLimit`` / ``RateLimit-Policy``), ``x`` (``X-RateLimit-*``, reset in seconds),
    ``x-epoch`` (reset as an epoch time), ``openai``, ``anthropic``, or ``none``."""
    req = call.request
    limit = req.integer("limit", 10) or 0
    window = req.number("window", 1.0) or 0.0
    family = req.text("family") or "ietf"
    if limit < 1:
        raise BadParam("limit", "at least 1 request per window")
    if window <= 0:
        raise BadParam("window", "a window of more than 0 seconds")
    if family not in LIMIT_FAMILIES:
        raise BadParam("family", f"expected one of {LIMIT_FAMILIES}, got {family!r}")
    seen = call.recorder.snapshot(call.name).requests[: call.attempt]
    first, arrived = seen[0].arrived, seen[-1].arrived
    opened = first + math.floor((arrived - first) / window) * window
    used = sum(1 for r in seen if r.arrived >= opened)
    reset = max(0.0, opened + window - call.clock.monotonic())
    headers = _limit_headers(family, limit, window, max(0, limit - used), reset, call.clock.wall())
    if used > limit:
        headers["retry-after"] = str(math.ceil(reset))
        return await call.json(429, {"ok": False, "status": 429, "attempt": call.attempt}, headers)
    await call.json(200, {"ok": True, "attempt": call.attempt}, headers)
