"""Alert sinks, and the bounded queue that delivers to each off the call path.

Each sink gets its own :class:`Delivery`: a queue of at most ``capacity`` alerts and one
daemon thread that sends them in order, retrying a failed send with backoff (1, 2, 4 s…
capped at 30 s; a 429's ``Retry-After`` honoured up to the cap) up to ``attempts`` times.
A sink that hangs, answers 500 or 429 forever, or refuses connections only ever holds up
its own thread; a call never waits for a sink. When the queue is full the new alert is
dropped, and that is logged once (again only after a delivery has gone through).

Sinks post with a plain ``httpx.Client`` (not a resilient one: an alert about an outage
must not be refused by a breaker, nor be counted as traffic). Their secrets - webhook
URLs, routing keys, signing secrets - appear in no log record, ``repr`` or error: sinks
are named by their kind and host only, and a failure is logged by its status or
exception class, never its message (httpx puts the URL there).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections import deque
from typing import Any, Protocol, runtime_checkable

import httpx

from ._incident import Alert

__all__ = [
    "AlertSink",
    "Delivery",
    "LogSink",
    "PagerDutySink",
    "SinkError",
    "SlackSink",
    "WebhookSink",
]

logger = logging.getLogger("resilient_client.incidents")

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
_MAX_DELAY = 30.0


class SinkError(Exception):
    """A send that failed: ``retryable`` unless the receiver rejected the alert itself
    (a 4xx other than 408/429); ``retry_after`` seconds when the receiver asked."""

    def __init__(self, what: str, *, retryable: bool = True, retry_after: float | None = None):
        super().__init__(what)
        self.retryable = retryable
        self.retry_after = retry_after


@runtime_checkable
class AlertSink(Protocol):
    """Receives alerts, one at a time, on its own delivery thread.

    ``name`` says what it is without any secret (``"webhook hooks.example.com"``);
    ``send`` delivers one alert or raises (a :class:`SinkError` with ``retryable=False``
    is not retried; anything else is).
    """

    name: str

    def send(self, alert: Alert) -> None: ...


class LogSink:
    """Alerts as log records on ``logger`` (default ``resilient_client.incidents``):
    a trigger or update at ``level`` (default WARNING), a resolve at INFO."""

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.WARNING):
        self._logger = logger or logging.getLogger("resilient_client.incidents")
        self._level = level
        self.name = "log"

    def __repr__(self) -> str:
        return "LogSink()"

    def send(self, alert: Alert) -> None:
        level = logging.INFO if alert.action == "resolve" else self._level
        incident = alert.incident
        self._logger.log(
            level,
            "incident %s %s: %s",
            incident.id,
            alert.action,
            alert.summary,
            extra={
                "incident_id": incident.id,
                "provider": incident.provider,
                "severity": alert.severity,
                "action": alert.action,
            },
        )


class _HttpSink:
    """A sink that POSTs JSON: one ``httpx.Client`` per sink, ``timeout`` per send."""

    kind = "http"

    def __init__(self, url: str, timeout: float) -> None:
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"{self.kind} sink needs an http(s) URL")
        if not timeout > 0:
            raise ValueError("timeout must be > 0 seconds")
        self._url = url
        self.name = f"{self.kind} {parsed.host}"
        self._client = httpx.Client(timeout=timeout)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<{self.name}>)"

    def _post(self, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        try:
            response = self._client.post(
                self._url,
                content=body,
                headers={"Content-Type": "application/json", **(headers or {})},
            )
        except httpx.HTTPError as exc:  # its message may hold the URL: the class only
            raise SinkError(type(exc).__name__) from None
        status = response.status_code
        if status < 300:
            return response
        retry_after = None
        if status == 429:
            try:
                retry_after = float(response.headers.get("Retry-After", ""))
            except ValueError:
                retry_after = None
        retryable = status >= 500 or status in (408, 429)
        raise SinkError(f"status {status}", retryable=retryable, retry_after=retry_after)

    def close(self) -> None:
        self._client.close()


class WebhookSink(_HttpSink):
    """POSTs each alert as JSON (:meth:`Alert.as_dict`) to ``url``.

    With ``secret``, the request carries ``X-Resilient-Signature: sha256=<hex>``, the
    HMAC-SHA256 of the raw body under ``secret`` (UTF-8): a receiver recomputes it over
    the bytes it received, and compares with :func:`hmac.compare_digest`. ``timeout``:
    seconds per send (default 10.0). A 2xx is delivered; 408, 429 and 5xx are retried.
    """

    kind = "webhook"

    def __init__(self, url: str, secret: str | None = None, *, timeout: float = 10.0) -> None:
        super().__init__(url, timeout)
        self._secret = None if secret is None else secret.encode("utf-8")

    def send(self, alert: Alert) -> None:
        body = json.dumps(alert.as_dict(), separators=(",", ":")).encode("utf-8")
        headers = {}
        if self._secret is not None:
            digest = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
            headers["X-Resilient-Signature"] = f"sha256={digest}"
        self._post(body, headers)


class PagerDutySink(_HttpSink):
    """PagerDuty Events API v2: a ``trigger`` (or an ``update``: a new trigger with the same
    ``dedup_key``, as PagerDuty documents) carries ``payload.summary`` (≤ 1024 chars),
    ``source`` (the provider), ``severity``, ``timestamp``, ``component`` (the endpoints),
    ``group`` (``"resilient-client"``), ``class`` (``"provider outage"``) and
    ``custom_details``; a ``resolve`` is ``routing_key``, ``dedup_key`` and
    ``event_action`` only. ``dedup_key`` is the incident id. A 202 is delivered; 429 and
    5xx are retried; a 400 (an event PagerDuty rejects) is not.
    """

    kind = "pagerduty"

    def __init__(
        self, routing_key: str, url: str = PAGERDUTY_EVENTS_URL, *, timeout: float = 10.0
    ) -> None:
        if not routing_key:
            raise ValueError("routing_key must be non-empty")
        super().__init__(url, timeout)
        self._routing_key = routing_key

    def event(self, alert: Alert) -> dict[str, Any]:
        """The Events API v2 body for ``alert``."""
        event: dict[str, Any] = {
            "routing_key": self._routing_key,
            "dedup_key": alert.dedup_key,
            "event_action": "resolve" if alert.action == "resolve" else "trigger",
        }
        if alert.action == "resolve":
            return event
        incident = alert.incident
        event["payload"] = {
            "summary": alert.summary[:1024],
            "source": incident.provider,
            "severity": alert.severity,
            "timestamp": incident.detected_at.isoformat(timespec="milliseconds"),
            "component": ", ".join(incident.endpoints)[:255] or incident.provider,
            "group": "resilient-client",
            "class": "provider outage",
            "custom_details": {
                "incident_id": incident.id,
                "started_at": incident.started_at.isoformat(),
                "calls": incident.calls,
                "failed_calls": incident.failed_calls,
                "statuses": {str(k): v for k, v in incident.statuses.items()},
                "codes": incident.codes,
                "errors": incident.errors,
                "request_ids": [s.request_id for s in incident.samples if s.request_id][:10],
            },
        }
        event["client"] = "resilient-client"
        return event

    def send(self, alert: Alert) -> None:
        self._post(json.dumps(self.event(alert)).encode("utf-8"))


class SlackSink(_HttpSink):
    """A Slack incoming-webhook message: ``text`` (the summary, shown in notifications)
    and ``blocks`` (a header and the incident's key facts). 429 and 5xx are retried."""

    kind = "slack"

    def __init__(self, webhook_url: str, *, timeout: float = 10.0) -> None:
        super().__init__(webhook_url, timeout)

    @staticmethod
    def message(alert: Alert) -> dict[str, Any]:
        """The incoming-webhook body for ``alert``."""
        incident = alert.incident
        icon = {
            "trigger": ":rotating_light:",
            "update": ":warning:",
            "resolve": ":white_check_mark:",
        }
        facts = [
            f"*Provider:* {incident.provider}"[:_SLACK_FIELD],
            f"*Severity:* {alert.severity}",
            f"*Endpoints:* {_listed(incident.endpoints, _SLACK_FIELD - 14)}",
            f"*Calls:* {incident.failed_calls} failed of {incident.calls}",
            f"*Incident:* `{incident.id}`",
        ]
        return {
            "text": f"{icon[alert.action]} {alert.summary}",
            "blocks": [
                {
                    "type": "header",
                    "text": {
                        "type": "plain_text",
                        "text": f"{alert.action}: {incident.provider}"[:150],
                    },
                },
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": alert.summary[:_SLACK_SECTION]},
                },
                {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in facts]},
            ],
        }

    def send(self, alert: Alert) -> None:
        self._post(json.dumps(self.message(alert)).encode("utf-8"))


# Slack refuses a message (400, not retried: the alert would be lost) whose section text
# passes 3,000 characters or a field 2,000 - an outage across many endpoints would.
_SLACK_SECTION = 3000
_SLACK_FIELD = 2000


def _listed(names: tuple[str, ...], limit: int) -> str:
    """``names`` joined by commas within ``limit`` characters: those that fit, then how
    many more there are."""
    text = ", ".join(names) or "-"
    if len(text) <= limit:
        return text
    shown: list[str] = []
    used = 0
    for name in names:
        more = f", ... {len(names) - len(shown)} more"
        if used + len(name) + 2 + len(more) > limit:
            break
        shown.append(name)
        used += len(name) + 2
    if not shown:
        return f"{len(names)} endpoints"
    return ", ".join(shown) + f", ... {len(names) - len(shown)} more"


class Delivery:
    """One sink's bounded queue and delivery thread (started on the first alert)."""

    def __init__(self, sink: AlertSink, *, capacity: int = 100, attempts: int = 5,
                 base_delay: float = 1.0) -> None:  # fmt: skip
        self.sink = sink
        self._capacity = capacity
        self._attempts = attempts
        self._base_delay = base_delay
        self._queue: deque[Alert] = deque()
        self._busy = False
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._drop_noted = False
        self.delivered = 0
        self.dropped = 0
        self.failed = 0

    def offer(self, alert: Alert) -> bool:
        """Queue ``alert``; ``False`` (and one log line per episode) when full."""
        with self._cond:
            if self._stop.is_set():
                return False
            if len(self._queue) >= self._capacity:
                self.dropped += 1
                if not self._drop_noted:
                    self._drop_noted = True
                    logger.warning(
                        "alert sink %s is not keeping up: its queue of %d is full; "
                        "alerts are dropped until it delivers again",
                        self.sink.name,
                        self._capacity,
                    )
                return False
            self._queue.append(alert)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"rc-alerts-{self.sink.name}", daemon=True
                )
                self._thread.start()
            self._cond.notify()
            return True

    def idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until the queue is empty and no send is under
        way; whether it is."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def close(self, timeout: float = 2.0) -> None:
        """Stop after the alert being sent; alerts still queued are abandoned."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        close = getattr(self.sink, "close", None)
        if callable(close):
            close()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._stop.is_set())
                if self._stop.is_set():
                    self._queue.clear()
                    self._cond.notify_all()
                    return
                alert = self._queue.popleft()
                self._busy = True
            try:
                self._deliver(alert)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _deliver(self, alert: Alert) -> None:
        delay = self._base_delay
        for attempt in range(1, self._attempts + 1):
            try:
                self.sink.send(alert)
            except Exception as exc:
                retryable = getattr(exc, "retryable", True)
                what = str(exc) if isinstance(exc, SinkError) else type(exc).__name__
                if not retryable or attempt == self._attempts:
                    self.failed += 1
                    logger.warning(
                        "alert sink %s did not take the %s of incident %s after %d attempt(s): %s",
                        self.sink.name,
                        alert.action,
                        alert.dedup_key,
                        attempt,
                        what,
                    )
                    return
                wait = getattr(exc, "retry_after", None) or delay
                if self._stop.wait(min(wait, _MAX_DELAY)):
                    return
                delay = min(delay * 2, _MAX_DELAY)
            else:
                self.delivered += 1
                self._drop_noted = False
                return
