"""Incidents and alerts as values, and the pure lifecycle that moves them.

An incident is per provider (a host and port): every endpoint of the provider that
leaves healthy joins it. Its lifecycle is one pure function, :func:`advance`, applied by
whichever store keeps it (memory, SQLite, Redis) as one atomic read-modify-write, so a
fleet of processes sharing a store builds one incident and sends one alert::

    (no incident) ──unhealthy──► open ──healthy for recover_after──► resolved
                                  ▲                                     │
                                  └──── unhealthy within recover_after ─┘  (same incident)

Each process contributes a :class:`Report` per evaluation: its endpoints' states, and
the calls, failures and evidence since its last one (its whole window the first time it
joins), so counts are summed across the fleet. Severity is the worst that any process
reported in the last window: a critical endpoint down → ``"critical"``; any endpoint down
→ ``"error"``; degraded → ``"warning"``. Alerts: one ``trigger`` per incident (held back
while muted by ``monitor.suppress``, sent when the mute ends if still open), an
``update`` when the severity changes (at most one a minute), a ``resolve`` at the end (sent
whenever a trigger was). A reopened incident is announced with a new ``trigger`` under
the same ``dedup_key``: PagerDuty turns a trigger after a resolve into a new alert, and
the people on call must know it is broken again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._rules import RANK, HealthRules, HealthState

__all__ = [
    "Alert",
    "ClientActions",
    "Contribution",
    "EndpointImpact",
    "Evidence",
    "Incident",
    "ProviderStatus",
    "Record",
    "Report",
    "SeriesPoint",
    "Severity",
    "StatusPageIncident",
    "advance",
    "utc",
]

Severity = Literal["critical", "error", "warning"]
_SEVERITY_RANK: dict[str | None, int] = {None: 0, "warning": 1, "error": 2, "critical": 3}

FIRST_SAMPLES = 10  # the first failures of an incident, kept for good
RECENT_SAMPLES = 10  # and the latest ones
_TIMELINE_HEAD, _TIMELINE_TAIL = 50, 150
_SERIES_POINTS = 240  # halved in resolution (pairs merged) when full
_COUNT_KEYS = 50  # distinct statuses / codes / ... kept; the rest count as "other"
UPDATE_INTERVAL = 60.0  # seconds between two severity updates of one incident

_FROZEN = ConfigDict(frozen=True, extra="forbid")


def utc(seconds: float) -> datetime:
    """Epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


class Evidence(BaseModel):
    """One failed call, as support needs it: ``url`` is redacted (no credentials, no
    sensitive query values), ``error`` the exception's class name, ``code``/``title`` the
    provider's problem, ``request_id`` the provider's own id, ``attempts`` made."""

    model_config = _FROZEN

    at: datetime
    method: str
    url: str
    endpoint: str
    status: int | None = None
    error: str | None = None
    code: str | None = None
    title: str | None = None
    request_id: str | None = None
    trace_id: str | None = None
    correlation_id: str | None = None
    idempotency_key: str | None = None
    attempts: int = 0


class ClientActions(BaseModel):
    """What the client did to avoid making an outage worse: retries sent, retries
    refused by the budget, calls failed fast by the breaker, calls shed locally (bulkhead
    or throttle), fallbacks answered, writes parked in the outbox."""

    model_config = _FROZEN

    retries: int = 0
    budget_refusals: int = 0
    fast_failures: int = 0
    shed: int = 0
    fallbacks: int = 0
    writes_parked: int = 0

    def __add__(self, other: ClientActions) -> ClientActions:
        return ClientActions(
            **{name: getattr(self, name) + getattr(other, name) for name in type(self).model_fields}
        )


class StatusPageIncident(BaseModel):
    """An unresolved incident as the provider's status page lists it."""

    model_config = _FROZEN

    name: str
    status: str | None = None  # investigating, identified, monitoring, ...
    impact: str | None = None  # none, minor, major, critical
    created_at: str | None = None
    shortlink: str | None = None


class ProviderStatus(BaseModel):
    """What the provider's status page said when last read: its ``indicator`` (``none``,
    ``minor``, ``major``, ``critical``, ``maintenance``), ``description``, its unresolved
    ``incidents``; ``acknowledged`` when it admits any trouble."""

    model_config = _FROZEN

    page: str
    indicator: str
    description: str
    acknowledged: bool
    incidents: tuple[StatusPageIncident, ...] = ()
    checked_at: datetime


class EndpointImpact(BaseModel):
    """One endpoint's part in an incident: its calls, failed calls and worst state."""

    model_config = _FROZEN

    calls: int = 0
    failed_calls: int = 0
    worst: HealthState = "healthy"


class SeriesPoint(BaseModel):
    """Calls and failures in one stretch of the incident, and the worst state seen."""

    model_config = _FROZEN

    at: datetime
    seconds: float
    calls: int
    failed_calls: int
    state: HealthState


class Incident(BaseModel):
    """One provider's outage, with the evidence to escalate it (see API.md §8).

    Times are aware UTC datetimes; ``statuses`` counts failed calls by HTTP status,
    ``errors`` by exception class, ``codes`` and ``categories`` by the provider's problem;
    ``samples`` are the first and the latest failures; ``timeline`` is ``(at, what)``;
    ``series`` the call volume and failures over time. Round-trips through JSON
    (:meth:`to_json` / :meth:`from_json`) for stores and reports.
    """

    model_config = _FROZEN

    id: str
    provider: str
    endpoints: tuple[str, ...] = ()
    state: Literal["open", "resolved"] = "open"
    severity: Severity = "warning"
    started_at: datetime
    detected_at: datetime
    recovered_at: datetime | None = None
    resolved_at: datetime | None = None
    calls: int = 0
    failed_calls: int = 0
    statuses: dict[int, int] = Field(default_factory=dict)
    errors: dict[str, int] = Field(default_factory=dict)
    codes: dict[str, int] = Field(default_factory=dict)
    categories: dict[str, int] = Field(default_factory=dict)
    by_endpoint: dict[str, EndpointImpact] = Field(default_factory=dict)
    samples: tuple[Evidence, ...] = ()
    timeline: tuple[tuple[datetime, str], ...] = ()
    series: tuple[SeriesPoint, ...] = ()
    client_actions: ClientActions = ClientActions()
    provider_status: ProviderStatus | None = None
    muted: str | None = None  # the suppression's reason while alerts are muted

    @property
    def time_to_detect(self) -> float:
        """Seconds from the first failure to detection."""
        return max(0.0, (self.detected_at - self.started_at).total_seconds())

    @property
    def time_to_recover(self) -> float | None:
        """Seconds from the first failure until health returned; ``None`` while open."""
        if self.recovered_at is None:
            return None
        return max(0.0, (self.recovered_at - self.started_at).total_seconds())

    @property
    def failure_rate(self) -> float:
        """Failed calls over calls (0.0 without calls)."""
        return self.failed_calls / self.calls if self.calls else 0.0

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> Incident:
        return cls.model_validate_json(text)

    def report(self, format: Literal["markdown", "json", "html"] = "markdown") -> str:
        """The escalation report for the provider's support team (API.md §9).

        ``"markdown"`` to paste into a ticket, ``"json"`` for tooling (``"schema":
        "resilient-client/incident/1"``), ``"html"`` one self-contained file with an SVG
        timeline. UTC ISO 8601 dates; no secret in any format. ``ValueError`` for
        another format.
        """
        from ._report import render

        return render(self, format)


@dataclass(frozen=True, slots=True)
class Alert:
    """What sinks are sent: ``action`` ``"trigger"``, ``"update"`` or ``"resolve"``; the
    ``incident`` as it stood; ``dedup_key`` (the incident id, the same for every alert of
    one incident); ``severity``; a one-line ``summary``."""

    action: Literal["trigger", "update", "resolve"]
    incident: Incident
    dedup_key: str
    severity: Severity
    summary: str

    def as_dict(self) -> dict[str, Any]:
        """The alert as JSON-ready data (``"schema": "resilient-client/alert/1"``)."""
        return {
            "schema": "resilient-client/alert/1",
            "action": self.action,
            "dedup_key": self.dedup_key,
            "severity": self.severity,
            "summary": self.summary,
            "incident": json.loads(self.incident.to_json()),
        }


class Reporter(BaseModel):
    model_config = _FROZEN

    severity: Severity | None
    at: float


class Record(BaseModel):
    """An incident with the bookkeeping of its lifecycle, as stores keep it."""

    model_config = _FROZEN

    incident: Incident
    reporters: dict[str, Reporter] = Field(default_factory=dict)
    triggered: bool = False
    alerted_severity: Severity | None = None
    last_alert_at: float | None = None
    last_unhealthy_at: float = 0.0


@dataclass
class Contribution:
    """Calls and evidence from one process over some stretch of time."""

    calls: int = 0
    failed_calls: int = 0
    by_endpoint: dict[str, tuple[int, int]] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)
    categories: dict[str, int] = field(default_factory=dict)
    samples: list[Evidence] = field(default_factory=list)
    actions: ClientActions = field(default_factory=ClientActions)
    first_failure: float | None = None


@dataclass
class Report:
    """One process's view of one provider at one evaluation (wall time ``now``)."""

    process: str
    provider: str
    now: float
    states: Mapping[str, HealthState]
    severity: Severity | None
    window: Contribution
    delta: Contribution
    transitions: list[tuple[float, str]] = field(default_factory=list)
    provider_status: ProviderStatus | None = None
    muted: str | None = None


def advance(
    record: Record | None, report: Report, rules: HealthRules, new_id: Callable[[], str]
) -> tuple[Record | None, list[Alert]]:
    """The provider's incident after ``report``, and the alerts to send (pure).

    Returns ``record`` itself when nothing changed (the store then writes nothing).
    """
    now = report.now
    incident = None if record is None else record.incident
    recent = (
        incident is not None
        and incident.resolved_at is not None
        and now - incident.resolved_at.timestamp() <= rules.recover_after
    )
    if record is None or incident is None or (incident.state == "resolved" and not recent):
        if report.severity is None:
            return record, []
        started = report.window.first_failure or now
        record = Record(
            incident=Incident(
                id=new_id(),
                provider=report.provider,
                started_at=utc(started),
                detected_at=utc(now),
                severity=report.severity,
                timeline=((utc(started), "first failure"),),
            ),
            last_unhealthy_at=now,
        )
    elif incident.state == "resolved":
        if report.severity is None:
            return record, []
        record = record.model_copy(
            update={
                "incident": incident.model_copy(
                    update={
                        "state": "open",
                        "resolved_at": None,
                        "recovered_at": None,
                        "timeline": (*incident.timeline, (utc(now), "reopened")),
                    }
                ),
                "triggered": False,
                "alerted_severity": None,
            }
        )
    return _open(record, report, rules)


def _open(record: Record, report: Report, rules: HealthRules) -> tuple[Record, list[Alert]]:
    now = report.now
    incident = record.incident
    joined = report.process not in record.reporters
    part = report.window if joined else report.delta
    reporters = {
        name: reporter
        for name, reporter in record.reporters.items()
        if now - reporter.at <= rules.window
    }
    reporters[report.process] = Reporter(severity=report.severity, at=now)
    timeline = list(incident.timeline)
    timeline.extend((utc(at), what) for at, what in report.transitions)
    started = incident.started_at
    if part.first_failure is not None and part.first_failure < started.timestamp():
        started = utc(part.first_failure)
    by_endpoint = dict(incident.by_endpoint)
    for name, (calls, failed) in part.by_endpoint.items():
        before = by_endpoint.get(name, EndpointImpact())
        by_endpoint[name] = before.model_copy(
            update={"calls": before.calls + calls, "failed_calls": before.failed_calls + failed}
        )
    for name, state in report.states.items():
        before = by_endpoint.get(name, EndpointImpact())
        if RANK[state] > RANK[before.worst]:
            by_endpoint[name] = before.model_copy(update={"worst": state})
    endpoints = tuple(
        sorted(name for name, impact in by_endpoint.items() if impact.worst != "healthy")
    )
    severities = [r.severity for r in reporters.values() if r.severity is not None]
    severity: Severity = (
        max(severities, key=_SEVERITY_RANK.__getitem__) if severities else incident.severity
    )
    if severity != incident.severity:
        timeline.append((utc(now), f"severity {incident.severity} → {severity}"))
    provider_status = incident.provider_status
    status = report.provider_status
    if status is not None and (
        provider_status is None
        or (status.indicator, status.incidents)
        != (provider_status.indicator, provider_status.incidents)
    ):
        names = ", ".join(i.name for i in status.incidents) or "no incident listed"
        timeline.append((utc(now), f"status page: {status.indicator} ({names})"))
        provider_status = status
    elif status is not None:
        provider_status = status
    last_unhealthy = now if report.severity is not None else record.last_unhealthy_at
    worst: HealthState = max(report.states.values(), key=RANK.__getitem__, default="healthy")
    incident = incident.model_copy(
        update={
            "started_at": started,
            "endpoints": endpoints,
            "severity": severity,
            "calls": incident.calls + part.calls,
            "failed_calls": incident.failed_calls + part.failed_calls,
            "statuses": _merge(incident.statuses, part.statuses),
            "errors": _merge(incident.errors, part.errors),
            "codes": _merge(incident.codes, part.codes),
            "categories": _merge(incident.categories, part.categories),
            "by_endpoint": by_endpoint,
            "samples": _samples(incident.samples, part.samples),
            "series": _series(incident.series, now, rules.bucket, part, worst),
            "client_actions": incident.client_actions + part.actions,
            "provider_status": provider_status,
            "muted": report.muted,
        }
    )
    record = record.model_copy(update={"reporters": reporters, "last_unhealthy_at": last_unhealthy})
    alerts: list[Alert] = []
    if report.severity is None and now - last_unhealthy >= rules.recover_after:
        timeline.append((utc(now), "resolved"))
        incident = incident.model_copy(
            update={
                "state": "resolved",
                "resolved_at": utc(now),
                "recovered_at": utc(last_unhealthy),
                "timeline": _bounded(timeline),
            }
        )
        if record.triggered:
            alerts.append(_alert("resolve", incident))
        return record.model_copy(update={"incident": incident}), alerts
    if not record.triggered:
        if report.muted is None:
            alerts.append(_alert("trigger", incident))
            timeline.append((utc(now), f"alert: trigger ({severity})"))
            record = record.model_copy(
                update={"triggered": True, "alerted_severity": severity, "last_alert_at": now}
            )
        elif incident.muted != record.incident.muted or joined:
            timeline.append((utc(now), f"alert muted: {report.muted}"))
    elif (
        severity != record.alerted_severity
        and report.muted is None
        and now - (record.last_alert_at or -math.inf) >= UPDATE_INTERVAL
    ):
        alerts.append(_alert("update", incident))
        timeline.append((utc(now), f"alert: update ({severity})"))
        record = record.model_copy(update={"alerted_severity": severity, "last_alert_at": now})
    incident = incident.model_copy(update={"timeline": _bounded(timeline)})
    return record.model_copy(update={"incident": incident}), alerts


def _alert(action: Literal["trigger", "update", "resolve"], incident: Incident) -> Alert:
    return Alert(action, incident, incident.id, incident.severity, summary(action, incident))


def summary(action: str, incident: Incident) -> str:
    """One line for a pager: the provider, what is wrong, since when, how badly."""
    since = incident.started_at.strftime("%Y-%m-%d %H:%M:%SZ")
    if action == "resolve":
        took = incident.time_to_recover or 0.0
        return f"{incident.provider} recovered after {took:.0f} s (incident {incident.id})"
    word = {"critical": "critical outage", "error": "outage", "warning": "degraded"}
    names = ", ".join(incident.endpoints[:3]) + (
        f" and {len(incident.endpoints) - 3} more" if len(incident.endpoints) > 3 else ""
    )
    return (
        f"{incident.provider} {word[incident.severity]}: {names or 'endpoints'}; "
        f"{incident.failed_calls} of {incident.calls} calls failed since {since}"
    )[:1024]  # PagerDuty's limit for payload.summary


def _merge(old: Mapping[Any, int], new: Mapping[Any, int]) -> dict[Any, int]:
    merged = dict(old)
    for key, count in new.items():
        if key not in merged and len(merged) >= _COUNT_KEYS:
            key = "other" if not isinstance(key, int) else 0
        merged[key] = merged.get(key, 0) + count
    return merged


def _samples(old: tuple[Evidence, ...], new: list[Evidence]) -> tuple[Evidence, ...]:
    first, recent = list(old[:FIRST_SAMPLES]), list(old[FIRST_SAMPLES:])
    for evidence in new:
        if len(first) < FIRST_SAMPLES:
            first.append(evidence)
        else:
            recent.append(evidence)
    return (*first, *recent[-RECENT_SAMPLES:])


def _series(
    old: tuple[SeriesPoint, ...], now: float, bucket: float, part: Contribution, state: HealthState
) -> tuple[SeriesPoint, ...]:
    start = math.floor(now / bucket) * bucket
    points = list(old)
    if points and points[-1].at.timestamp() + points[-1].seconds > start:
        last = points[-1]
        points[-1] = last.model_copy(
            update={
                "calls": last.calls + part.calls,
                "failed_calls": last.failed_calls + part.failed_calls,
                "state": state if RANK[state] > RANK[last.state] else last.state,
            }
        )
    else:
        points.append(SeriesPoint(at=utc(start), seconds=bucket, calls=part.calls,
                                  failed_calls=part.failed_calls, state=state))  # fmt: skip
    if len(points) > _SERIES_POINTS:
        points = [_pair(points[i], points[i + 1]) if i + 1 < len(points) else points[i]
                  for i in range(0, len(points), 2)]  # fmt: skip
    return tuple(points)


def _pair(a: SeriesPoint, b: SeriesPoint) -> SeriesPoint:
    return SeriesPoint(
        at=a.at,
        seconds=(b.at - a.at).total_seconds() + b.seconds,
        calls=a.calls + b.calls,
        failed_calls=a.failed_calls + b.failed_calls,
        state=a.state if RANK[a.state] >= RANK[b.state] else b.state,
    )


def _bounded(timeline: list[tuple[datetime, str]]) -> tuple[tuple[datetime, str], ...]:
    if len(timeline) <= _TIMELINE_HEAD + _TIMELINE_TAIL:
        return tuple(timeline)
    return (*timeline[:_TIMELINE_HEAD], *timeline[-_TIMELINE_TAIL:])
