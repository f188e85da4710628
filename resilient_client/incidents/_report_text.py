"""Incidents as rows and lines for a terminal (``resilient-client incidents list|show``).

Plain data out of the report's document (:func:`~._report.document`), so the command
line shows exactly what the reports say, made safe the same way; the command line lays
the rows out (rich on a terminal, aligned columns otherwise).
"""

from __future__ import annotations

from typing import Any

from ._report import document, duration

__all__ = ["LIST_HEADERS", "incident_lines", "incident_row"]

LIST_HEADERS = (
    "id",
    "provider",
    "state",
    "severity",
    "started (UTC)",
    "duration",
    "calls",
    "failed",
    "endpoints",
)


def _short(moment: str | None) -> str:
    return "-" if moment is None else moment.replace("T", " ")[:19]


def incident_row(incident: Any) -> tuple[str, ...]:
    """One line of ``incidents list``, in the order of :data:`LIST_HEADERS`."""
    data = document(incident)
    head, window, impact = data["incident"], data["window"], data["impact"]
    shown = head["endpoints"][:2]
    more = len(head["endpoints"]) - len(shown)
    return (
        head["id"],
        head["provider"],
        head["state"],
        head["peak_severity"],
        _short(window["started_at"]),
        duration(window["duration_seconds"]) if head["state"] == "resolved" else "ongoing",
        str(impact["calls"]),
        str(impact["failed_calls"]),
        ", ".join(shown) + (f" +{more}" if more > 0 else ""),
    )


def incident_lines(incident: Any) -> list[str]:
    """``incidents show``: the incident's facts, one a line, then its timeline."""
    data = document(incident)
    head, window, impact = data["incident"], data["window"], data["impact"]
    actions = data["client_actions"]
    lines = [
        f"incident        {head['id']}",
        f"provider        {head['provider']}",
        f"state           {head['state']}",
        f"severity        {head['peak_severity']} at its worst, {head['severity']} now",
        f"first failure   {window['started_at']}",
        f"detected        {window['detected_at']}  "
        f"(after {duration(window['time_to_detect_seconds'])})",
        f"recovered       {window['recovered_at'] or '-'}  "
        f"(after {duration(window['time_to_recover_seconds'])})",
        f"resolved        {window['resolved_at'] or '-'}",
        f"calls           {impact['calls']}, {impact['failed_calls']} failed "
        f"({impact['failure_rate'] * 100:.1f} %)",
    ]
    for row in impact["endpoints"]:
        lines.append(
            f"  {row['endpoint']:<30} {row['calls']:>6} calls {row['failed_calls']:>6} failed"
            f"  worst {row['worst_state']}"
        )
    breakdown = data["breakdown"]
    for name in ("statuses", "errors", "codes"):
        if breakdown[name]:
            counted = ", ".join(f"{row['key']} x{row['count']}" for row in breakdown[name])
            lines.append(f"{name:<16}{counted}")
    lines.append(
        f"client          {actions['retries']} retries, {actions['budget_refusals']} refused "
        f"by the budget, {actions['fast_failures']} failed fast by a breaker, "
        f"{actions['writes_parked']} writes parked"
    )
    if head["muted"]:
        lines.append(f"muted           {head['muted']}")
    lines.append("timeline (UTC)")
    lines.extend(f"  {event['at']}  {event['what']}" for event in data["timeline"])
    lines.append(
        f"samples         {len(data['samples'])} kept; see `resilient-client report {head['id']}`"
    )
    return lines
