"""The HTML report's timeline, as shapes: pure geometry for ``templates/timeline.svg``.

Calls per interval (bars, the failed part in red), the failure rate (a line on a 0-100 %
axis at the right), the health state per interval (a band under the chart), and markers
for the first failure, detection, alerts, recovery and resolution, over UTC time. The
template only draws what this computes, so the arithmetic is tested without a browser.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["WIDTH", "timeline_svg"]

WIDTH = 960
_LEFT, _RIGHT = 64, 64  # room for the two axes' labels
_ROWS = 3  # rows of marker labels, so that near markers do not overlap
_ROW = 14
_TOP = 12 + _ROWS * _ROW
_HEIGHT = 180  # the chart itself
_BAND = 14  # the health band under it
_CHAR = 6.6  # an 11 px sans-serif character's width, to keep labels apart
_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
_STATE_FILL = {"healthy": "#cfe8d5", "degraded": "#f6d68b", "down": "#e9908a"}
_MARKER_KINDS = {
    "first failure": "start",
    "detected": "detect",
    "recovered": "recover",
    "resolved": "resolve",
    "reopened": "detect",
}


def _markers(incident: Any) -> list[tuple[datetime, str, str]]:
    found: list[tuple[datetime, str, str]] = [
        (incident.started_at, "first failure", "start"),
        (incident.detected_at, "detected", "detect"),
    ]
    for at, what in incident.timeline:
        if what.startswith("alert: "):
            found.append((at, what.split(" (")[0], "alert"))
        elif what == "reopened":
            found.append((at, "reopened", "detect"))
    if incident.recovered_at is not None:
        found.append((incident.recovered_at, "recovered", "recover"))
    if incident.resolved_at is not None:
        found.append((incident.resolved_at, "resolved", "resolve"))
    return sorted(found, key=lambda marker: marker[0])


def _step(span: float) -> int:
    for step in _STEPS:
        if span / step <= 6:
            return step
    return _STEPS[-1] * int(span // (_STEPS[-1] * 6) + 1)


def timeline_svg(incident: Any) -> dict[str, Any]:
    """Shapes of ``incident``'s timeline in SVG user units (see the module docstring)."""
    series = list(incident.series)
    markers = _markers(incident)
    moments = [m[0] for m in markers] + [p.at for p in series]
    moments += [p.at + timedelta(seconds=p.seconds) for p in series]
    start: datetime = min(moments)
    end: datetime = max(moments)
    span: float = max((end - start).total_seconds(), 1.0)
    start -= timedelta(seconds=span * 0.02)
    span *= 1.04
    inner = WIDTH - _LEFT - _RIGHT

    def x(moment: datetime) -> float:
        return round(_LEFT + (moment - start).total_seconds() / span * inner, 1)

    bottom = _TOP + _HEIGHT
    most = max((p.calls for p in series), default=0) or 1
    bars, bands, rate = [], [], []
    for point in series:
        left, right = x(point.at), x(point.at + timedelta(seconds=point.seconds))
        width = max(1.0, right - left - (1.0 if right - left > 3 else 0.0))
        calls_h = point.calls / most * _HEIGHT
        failed_h = point.failed_calls / most * _HEIGHT
        bars.append(
            {
                "x": left,
                "w": round(width, 1),
                "y": round(bottom - calls_h, 1),
                "h": round(calls_h, 1),
                "fy": round(bottom - failed_h, 1),
                "fh": round(failed_h, 1),
                "calls": point.calls,
                "failed": point.failed_calls,
            }
        )
        bands.append(
            {
                "x": left,
                "w": round(max(1.0, right - left), 1),
                "fill": _STATE_FILL[point.state],
                "state": point.state,
            }
        )
        if point.calls:
            share = point.failed_calls / point.calls
            rate.append(f"{round(left + width / 2, 1)},{round(bottom - share * _HEIGHT, 1)}")
    placed: list[dict[str, Any]] = []
    last_end = [-1e9] * _ROWS
    for at, label, kind in markers:
        mx = x(at)
        row = next((r for r in range(_ROWS) if last_end[r] < mx - 4), 0)
        last_end[row] = mx + len(label) * _CHAR
        placed.append(
            {
                "x": mx,
                "label": label,
                "kind": kind,
                "ly": _TOP - 6 - row * _ROW,
                "at": at.strftime("%H:%M:%S"),
            }
        )
    step = _step(span)
    first = datetime.fromtimestamp((start.timestamp() // step + 1) * step, UTC)
    ticks = []
    moment = first
    while moment <= start + timedelta(seconds=span):
        ticks.append({"x": x(moment), "label": moment.strftime("%H:%M:%S")})
        moment += timedelta(seconds=step)
    return {
        "width": WIDTH,
        "height": bottom + _BAND + 58,
        "left": _LEFT,
        "right": WIDTH - _RIGHT,
        "top": _TOP,
        "bottom": bottom,
        "mid": _TOP + _HEIGHT / 2,
        "band_y": bottom + 4,
        "band_h": _BAND,
        "most": most,
        "bars": bars,
        "bands": bands,
        "rate": " ".join(rate),
        "markers": placed,
        "ticks": ticks,
        "tick_y": bottom + _BAND + 20,
        "legend_y": bottom + _BAND + 44,
        "day": start.strftime("%Y-%m-%d"),
        "fills": _STATE_FILL,
    }
