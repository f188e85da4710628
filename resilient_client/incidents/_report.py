"""Escalation reports: one incident as a support team needs it (API.md §9).

``incident.report(format=...)`` comes here. One pure step builds the report's document
(:func:`document`: plain JSON-ready data, the ``"json"`` format as it is); the
``"markdown"`` and ``"html"`` formats are that document through Jinja2 templates shipped
in ``templates/`` (Jinja2 because it is well kept, escapes HTML for us with autoescape on,
and keeps the layout out of Python). The HTML file is self-contained: its styles and its
SVG timeline are inline, it loads nothing.

Every text from the record is made safe again here, whatever store it came from: URLs
redacted, server text masked, identifiers neutralized (defence in depth: the monitor
already did so when it recorded them). Dates are UTC ISO 8601 with milliseconds,
durations read as ``"2 min 05 s"``.

The incident is typed ``Any`` on purpose: ``_incident`` imports this module to delegate
``Incident.report``, and the package keeps no import cycle (``tests/unit/test_layout.py``).
"""

from __future__ import annotations

import functools
import json
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from typing import Any, Literal
from urllib.parse import urlsplit

from .._mask import neutralize
from .._redact import mask_text, redact_url
from ._report_svg import timeline_svg

__all__ = ["SCHEMA", "ReportFormat", "document", "duration", "iso", "peak_severity", "render"]

SCHEMA = "resilient-client/incident/1"
ReportFormat = Literal["markdown", "json", "html"]
_FORMATS = ("markdown", "json", "html")
_TEMPLATES = {"markdown": "report.md", "html": "report.html"}
_SEVERITIES = ("warning", "error", "critical")


def peak_severity(incident: Any) -> str:
    """The worst severity the incident reached (its ``severity`` is the latest one):
    read from the timeline's ``severity a → b`` entries."""
    seen: list[str] = [incident.severity]
    for _, what in incident.timeline:
        if what.startswith("severity "):
            seen.extend(word for word in what.split() if word in _SEVERITIES)
    return max(seen, key=_SEVERITIES.index)


def iso(moment: datetime | None) -> str | None:
    """``moment`` as UTC ISO 8601 with milliseconds (``2026-03-01T14:03:07.250Z``)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def duration(seconds: float | None) -> str:
    """Seconds for a person: ``"850 ms"``, ``"4.2 s"``, ``"2 min 05 s"``, ``"1 h 07 min"``,
    ``"2 d 3 h"``; ``"-"`` for ``None`` (not over yet)."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
    return f"{whole // 86400} d {whole % 86400 // 3600} h"


def _id(value: object) -> str | None:
    return None if value is None else neutralize(str(value), 200)


def _text(value: object) -> str | None:
    return None if value is None else mask_text(str(value)[:1000])


def _versions() -> dict[str, str]:
    """The SDK and its environment, as the process writing the report sees them."""

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    found = {
        "resilient-client": version("resilient-client") or "unknown",
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(terse=True),
    }
    for name in ("httpx", "httpx2"):
        value = version(name)
        if value is not None:
            found[name] = value
    return found


def _sample(evidence: Any) -> dict[str, Any]:
    url = redact_url(evidence.url)
    parts = urlsplit(url)
    return {
        "at": iso(evidence.at),
        "method": _id(evidence.method),
        "endpoint": _id(evidence.endpoint),
        "url": url,
        "target": (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
        "status": evidence.status,
        "error": _id(evidence.error),
        "code": _id(evidence.code),
        "title": _text(evidence.title),
        "request_id": _id(evidence.request_id),
        "trace_id": _id(evidence.trace_id),
        "correlation_id": _id(evidence.correlation_id),
        "idempotency_key": _id(evidence.idempotency_key),
        "attempts": evidence.attempts,
    }


def _counts(counts: dict[Any, int]) -> list[dict[str, Any]]:
    """``{key: count}`` as rows, most frequent first."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    return [{"key": key, "count": count} for key, count in ordered]


def document(incident: Any, *, now: datetime | None = None) -> dict[str, Any]:
    """The report as JSON-ready data (the ``"json"`` format; the templates' context).

    ``now``: when the report is written (default: the current UTC time); ``generated_at``.
    """
    now = now or datetime.now(UTC)
    end = incident.resolved_at or incident.recovered_at
    samples = [_sample(evidence) for evidence in incident.samples]
    keys: dict[str, dict[str, Any]] = {}
    for sample in samples:
        key = sample["idempotency_key"]
        if key is not None and key not in keys:
            keys[key] = {
                "idempotency_key": key,
                "endpoint": sample["endpoint"],
                "first_seen": sample["at"],
                "status": sample["status"],
                "error": sample["error"],
            }
    endpoints = []
    for name, impact in sorted(incident.by_endpoint.items()):
        rate = impact.failed_calls / impact.calls if impact.calls else 0.0
        endpoints.append(
            {
                "endpoint": _id(name),
                "calls": impact.calls,
                "failed_calls": impact.failed_calls,
                "failure_rate": round(rate, 4),
                "worst_state": impact.worst,
            }
        )
    status = incident.provider_status
    actions = incident.client_actions
    return {
        "schema": SCHEMA,
        "generated_at": iso(now),
        "incident": {
            "id": _id(incident.id),
            "provider": _id(incident.provider),
            "state": incident.state,
            "severity": incident.severity,
            "peak_severity": peak_severity(incident),
            "endpoints": [_id(name) for name in incident.endpoints],
            "muted": _text(incident.muted),
        },
        "window": {
            "started_at": iso(incident.started_at),
            "detected_at": iso(incident.detected_at),
            "recovered_at": iso(incident.recovered_at),
            "resolved_at": iso(incident.resolved_at),
            "duration_seconds": None
            if end is None
            else round((end - incident.started_at).total_seconds(), 3),
            "time_to_detect_seconds": round(incident.time_to_detect, 3),
            "time_to_recover_seconds": None
            if incident.time_to_recover is None
            else round(incident.time_to_recover, 3),
        },
        "impact": {
            "calls": incident.calls,
            "failed_calls": incident.failed_calls,
            "failure_rate": round(incident.failure_rate, 4),
            "endpoints": endpoints,
        },
        "breakdown": {
            "statuses": _counts(incident.statuses),
            "errors": _counts({_id(k): v for k, v in incident.errors.items()}),
            "codes": _counts({_id(k): v for k, v in incident.codes.items()}),
            "categories": _counts({_id(k): v for k, v in incident.categories.items()}),
        },
        "samples": samples,
        "idempotency_keys": list(keys.values()),
        "client_actions": {name: getattr(actions, name) for name in type(actions).model_fields},
        "timeline": [{"at": iso(at), "what": _text(what)} for at, what in incident.timeline],
        "series": [
            {
                "at": iso(p.at),
                "seconds": p.seconds,
                "calls": p.calls,
                "failed_calls": p.failed_calls,
                "state": p.state,
            }
            for p in incident.series
        ],
        "provider_status": None
        if status is None
        else {
            "page": redact_url(status.page),
            "indicator": _id(status.indicator),
            "description": _text(status.description),
            "acknowledged": status.acknowledged,
            "checked_at": iso(status.checked_at),
            "incidents": [
                {
                    "name": _text(i.name),
                    "status": _id(i.status),
                    "impact": _id(i.impact),
                    "created_at": _id(i.created_at),
                    "shortlink": None if i.shortlink is None else redact_url(i.shortlink),
                }
                for i in status.incidents
            ],
        },
        "environment": _versions(),
    }


@functools.cache
def _environment() -> Any:
    try:
        import jinja2
    except ImportError as exc:  # pragma: no cover - Jinja2 is a dependency
        raise ImportError(
            "incident reports in markdown or html need Jinja2: pip install Jinja2"
        ) from exc
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("resilient_client.incidents", "templates"),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "svg"), default_for_string=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["duration"] = duration
    environment.filters["md"] = _markdown_cell
    environment.filters["code"] = _markdown_code
    environment.filters["percent"] = lambda rate: f"{rate * 100:.1f} %"
    return environment


def _markdown_cell(value: object) -> str:
    """A value for a Markdown table cell: ``-`` for none; pipes, backticks, angle brackets
    and line breaks escaped, so a server's text can neither break the table nor inject
    markup into the ticket it is pasted into."""
    if value is None or value == "":
        return "-"
    text = " ".join(str(value).split())
    for char in "\\`*_[]<>|":
        text = text.replace(char, "\\" + char)
    return text


def _markdown_code(value: object) -> str:
    """An identifier as a Markdown code span (copied as it is from a ticket): ``-`` for
    none; backticks become quotes and pipes are escaped (GitHub tables split on them
    even inside code spans)."""
    if value is None or value == "":
        return "-"
    text = " ".join(str(value).split()).replace("`", "'").replace("|", "\\|")
    return f"`{text}`"


def render(incident: Any, format: str = "markdown", *, now: datetime | None = None) -> str:
    """The report of ``incident`` in ``format`` (``"markdown"``, ``"json"``, ``"html"``).

    Raises ``ValueError`` for another format.
    """
    if format not in _FORMATS:
        raise ValueError(f"format must be one of {', '.join(_FORMATS)}, not {format!r}")
    data = document(incident, now=now)
    if format == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    template = _environment().get_template(_TEMPLATES[format])
    svg = timeline_svg(incident) if format == "html" else None
    return str(template.render(report=data, svg=svg))
