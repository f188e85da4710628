"""Alert sinks without a network: what each sends for an alert."""

from __future__ import annotations

from datetime import UTC, datetime

from resilient_client.incidents import SlackSink
from resilient_client.incidents._incident import Alert, Incident


def test_a_slack_message_for_an_outage_of_many_endpoints_stays_within_slacks_limits() -> None:
    # Slack answers 400 to a section over 3,000 characters or a field over 2,000, and a 400
    # is not retried: the alert would be lost when the outage is widest.
    now = datetime(2026, 12, 7, tzinfo=UTC)
    endpoints = tuple(f"GET /v1/accounts/{{id}}/things/{i}" for i in range(300))
    incident = Incident(id="inc-1", provider="api.example.com", endpoints=endpoints,
                        started_at=now, detected_at=now)  # fmt: skip
    alert = Alert(
        action="trigger", incident=incident, dedup_key="inc-1", severity="error", summary="x" * 5000
    )
    blocks = SlackSink.message(alert)["blocks"]
    assert len(blocks[1]["text"]["text"]) <= 3000
    fields = [field["text"] for field in blocks[2]["fields"]]
    assert all(len(text) <= 2000 for text in fields)
    (listed,) = [text for text in fields if text.startswith("*Endpoints:*")]
    assert endpoints[0] in listed and listed.endswith(" more")
    shown = listed.count("GET ")
    assert 0 < shown < 300 and listed.endswith(f"... {300 - shown} more")
