"""Escalation reports, pure: formats, escaping, durations, the timeline's geometry."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from resilient_client.incidents import (
    EndpointImpact,
    Evidence,
    Incident,
    ProviderStatus,
    SeriesPoint,
    StatusPageIncident,
)
from resilient_client.incidents._report import duration, iso, peak_severity
from resilient_client.incidents._report_svg import WIDTH, timeline_svg

T0 = datetime(2026, 3, 1, 14, 3, 7, 250000, tzinfo=UTC)
HOSTILE = "<script>alert(1)</script> | `x` [link](http://evil.example)"


def make(**changes: object) -> Incident:
    data: dict[str, object] = {
        "id": "api.example.com-20260301T140307Z-abc123",
        "provider": "api.example.com",
        "endpoints": ("POST /v1/payments",),
        "state": "resolved",
        "severity": "warning",
        "started_at": T0,
        "detected_at": T0 + timedelta(seconds=42),
        "recovered_at": T0 + timedelta(seconds=300),
        "resolved_at": T0 + timedelta(seconds=360),
        "calls": 200,
        "failed_calls": 50,
        "statuses": {503: 45, 500: 5},
        "codes": {"api_error": 50},
        "by_endpoint": {"POST /v1/payments": EndpointImpact(calls=200, failed_calls=50,
                                                            worst="down")},
        "samples": (
            Evidence(at=T0, method="POST", url="https://api.example.com/v1/payments?api_key=s3cr3t",
                     endpoint="POST /v1/payments", status=503, code="api_error",
                     title=HOSTILE, request_id="req_1|2", idempotency_key="key-1",
                     correlation_id="corr-1", trace_id="0af7651916cd43dd8448eb211c80319c",
                     attempts=3),
        ),
        "timeline": ((T0, "first failure"), (T0 + timedelta(seconds=42), "alert: trigger (error)"),
                     (T0 + timedelta(seconds=100), "severity error → warning")),
        "series": tuple(
            SeriesPoint(at=T0 + timedelta(seconds=30 * i), seconds=30.0, calls=20,
                        failed_calls=10 if 1 <= i <= 8 else 0,
                        state="down" if 1 <= i <= 8 else "healthy")
            for i in range(13)
        ),
    }  # fmt: skip
    data.update(changes)
    return Incident.model_validate(data)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0.85, "850 ms"), (4.23, "4.2 s"), (125, "2 min 05 s"),
     (4020, "1 h 07 min"), (3 * 86400 + 7200, "3 d 2 h")],
)  # fmt: skip
def test_durations_read_as_a_person_would_say_them(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_dates_are_utc_iso_8601_with_milliseconds() -> None:
    assert iso(T0) == "2026-03-01T14:03:07.250Z"
    assert iso(None) is None


def test_the_json_report_is_versioned_and_complete() -> None:
    data = json.loads(make().report("json"))
    assert data["schema"] == "resilient-client/incident/1"
    assert data["window"]["time_to_detect_seconds"] == 42.0
    assert data["window"]["time_to_recover_seconds"] == 300.0
    assert data["impact"]["failure_rate"] == 0.25
    assert [row["key"] for row in data["breakdown"]["statuses"]] == [503, 500]
    assert data["samples"][0]["url"].endswith("api_key=REDACTED")
    assert data["idempotency_keys"][0]["idempotency_key"] == "key-1"
    assert data["incident"]["peak_severity"] == "error"


def test_the_worst_severity_is_read_from_the_timeline() -> None:
    assert peak_severity(make()) == "error"
    assert peak_severity(make(timeline=())) == "warning"


def test_server_text_cannot_break_the_markdown_table() -> None:
    text = make().report("markdown")
    row = next(line for line in text.splitlines() if line.startswith("| 2026-03-01T14:03:07"))
    assert row.count(" | ") == 7  # eight cells, the pipe in the request id escaped
    assert "`req_1\\|2`" in row
    assert "Error incident (at its worst), **resolved**" in text
    assert "time to detect: 42.0 s" in text and "time to recover: 5 min 00 s" in text


def test_a_status_page_link_cannot_inject_markup_into_the_markdown() -> None:
    link = "https://stspg.io/x<img src=x onerror=alert(1)>"
    listed = StatusPageIncident(name="Errors", shortlink=link)
    status = ProviderStatus(page="https://status.example.com/<b>", indicator="major",
                            description="Partial outage", acknowledged=True, incidents=(listed,),
                            checked_at=T0)  # fmt: skip
    text = make(provider_status=status).report("markdown")
    # Escaped, a Markdown renderer shows the brackets as text instead of making tags.
    assert "https://stspg.io/x\\<img src=x onerror=alert(1)\\>" in text
    assert text.count("<img") == text.count("\\<img") and text.count("<b>") == 0


def test_server_text_is_escaped_in_html() -> None:
    html = make().report("html")
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="format must be one of markdown, json, html"):
        make().report("pdf")  # type: ignore[arg-type]


def test_the_timeline_draws_every_interval_and_marker_inside_the_chart() -> None:
    svg = timeline_svg(make())
    assert len(svg["bars"]) == len(svg["bands"]) == 13
    assert {band["state"] for band in svg["bands"]} == {"healthy", "down"}
    labels = [marker["label"] for marker in svg["markers"]]
    assert labels == ["first failure", "detected", "alert: trigger", "recovered", "resolved"]
    for marker in svg["markers"]:
        assert svg["left"] <= marker["x"] <= svg["right"] <= WIDTH
        assert marker["ly"] > 0
    tallest = min(bar["y"] for bar in svg["bars"])
    assert tallest == svg["top"]  # the busiest interval fills the chart's height
    points = [tuple(map(float, p.split(","))) for p in svg["rate"].split()]
    assert max(y for _, y in points) == svg["bottom"]  # 0 % on the baseline
    assert min(y for _, y in points) == svg["mid"]  # 50 % half way up


def test_an_incident_without_series_still_renders() -> None:
    html = make(series=(), state="open", resolved_at=None, recovered_at=None).report("html")
    assert "no call volume recorded" in html
    assert "now (still open)" in html
