"""``resilient-client demo``: the story of an outage, told by the SDK as it happens.

It serves the chaos upstream (``resilient_client.chaos``) on 127.0.0.1 and sends a shop's
traffic to three endpoints of it through one :class:`~resilient_client.ResilientClient`
with an :class:`~resilient_client.IncidentMonitor` attached. Four acts, about 15 seconds:

1. **healthy**: every call answers;
2. **partial failure**: half of ``GET /search``'s attempts answer 503; retries save most
   calls, the retry budget caps the extra load, the monitor opens an incident;
3. **outage**: every ``POST /checkout`` answers 503; its breaker opens and later calls
   fail fast without reaching the provider;
4. **recovery**: the provider answers again; the breaker's probe closes it and the
   incident resolves.

A per-endpoint table updates as it runs (rich's ``Live`` on a terminal; a plain line per
endpoint per second otherwise, for CI logs), each notable call is printed once with why
it stopped (``rc.resilience_info(...).stop_reason``), each alert when it is sent, and at
the end the paths of the escalation reports (HTML and Markdown) it wrote. Its policy uses
short windows (a 2 s health window, a 1 s breaker) so that the story fits in 20 s.
"""

from __future__ import annotations

import queue
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

import resilient_client as rc

from .chaos import serve

__all__ = ["main"]

SECRET = "sk_live_demo_5f1e9c3a7d"  # sent on every call; never in a report or a log line
ENDPOINTS = ("GET /catalog", "GET /search", "POST /checkout")
POLICY = rc.Policy(
    timeouts=rc.Timeouts(total=2.0),
    retry=rc.Retry(max_attempts=3, backoff=rc.Backoff(initial=0.02, max=0.1)),
    # Opens when 90 % of the last 2 s of calls failed: a flaky endpoint stays reachable,
    # a dead one is cut off.
    breaker=rc.Breaker(
        window="time",
        window_size=2.0,
        minimum_calls=6,
        failure_rate_threshold=0.9,
        reset_timeout=1.0,
    ),
    budget=rc.RetryBudget(ratio=0.2, min_per_second=2.0, window=2.0),
)
RULES = rc.HealthRules(window=2.0, min_calls=5, recover_after=1.5)


@dataclass
class Act:
    title: str
    seconds: float
    plans: dict[str, float]  # chaos scenario → share of attempts answering 503
    story: str


ACTS = (
    Act("healthy", 2.0, {"search": 0.0, "checkout": 0.0}, "the provider answers every call"),
    Act(
        "partial failure",
        3.0,
        {"search": 0.5},
        "half of GET /search's attempts answer 503: retries save most calls",
    ),
    Act(
        "outage",
        3.0,
        {"checkout": 1.0},
        "every POST /checkout answers 503: retries cannot help, the breaker will open",
    ),
    Act(
        "recovery",
        7.0,
        {"search": 0.0, "checkout": 0.0},
        "the provider answers again: the breaker probes, the incident resolves",
    ),
)

WHY = {
    "success": "it succeeded",
    "max_attempts": "every allowed attempt was used",
    "budget": "the retry budget is spent (retries may add at most 20 % to the load)",
    "breaker": "the endpoint's breaker opened (or its probe failed): no retry was sent",
    "deadline": "the call's deadline passed",
    "retry_after_too_long": "the server asked to wait longer than allowed",
}

ALERT_WHY = {
    "trigger": "an endpoint left healthy: one incident per provider, one trigger to every sink",
    "update": "the incident's severity changed",
    "resolve": "every endpoint has been healthy for 1.5 s (recover_after): the incident is over",
}
FAST = {  # a call refused before its first attempt, by the exception it raised
    "CircuitOpenError": "the breaker is open, so the call was not sent (no load on the "
    "provider while it is down; a probe will test it after 1 s)",
    "BulkheadFull": "too many calls in flight",
}


class _Alerts:
    """The demo's alert sink: alerts go to a queue the story prints from."""

    name = "demo"

    def __init__(self) -> None:
        self.received: queue.Queue[rc.Alert] = queue.Queue()

    def send(self, alert: rc.Alert) -> None:
        self.received.put(alert)


@dataclass
class _Tally:
    calls: int = 0
    failed: int = 0
    retries: int = 0
    told: set[str] = field(default_factory=set)  # kinds of call already explained this act


class _Screen:
    """Where the story goes: rich (a live table) on a terminal, plain lines otherwise."""

    def __init__(self, out: TextIO | None, live: bool | None) -> None:
        self.console: Any = None
        self.live: Any = None
        self.out = out or sys.stdout
        if out is None and live is not False:
            try:
                from rich.console import Console
            except ImportError:  # the plain view needs nothing beyond the base install
                return
            console = Console(highlight=False)
            if live or console.is_terminal:
                self.console = console

    def say(self, text: str, style: str = "") -> None:
        if self.console is not None:
            self.console.print(text, style=style or None, markup=False)
        else:
            print(text, file=self.out, flush=True)

    def start(self, table: Callable[[], Any]) -> None:
        if self.console is not None:
            from rich.live import Live

            self.live = Live(table(), console=self.console, refresh_per_second=8)
            self.live.start()

    def update(self, table: Callable[[], Any]) -> None:
        if self.live is not None:
            self.live.update(table())

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()


class _Story:
    def __init__(
        self, screen: _Screen, client: rc.ResilientClient, monitor: rc.IncidentMonitor
    ) -> None:
        self.screen, self.client, self.monitor = screen, client, monitor
        self.tally = {key: _Tally() for key in ENDPOINTS}
        self.sent = 0

    def rows(self) -> list[tuple[str, ...]]:
        health = self.monitor.health()
        pipeline = self.client.health()
        rows: list[tuple[str, ...]] = []
        for key in ENDPOINTS:
            tally, found, state = self.tally[key], pipeline.get(key), health.get(key)
            breaker = "-" if found is None or found.breaker is None else found.breaker.state
            budget = "-"
            if found is not None and found.budget is not None:
                snap = found.budget
                budget = "refusing" if snap.refusing else f"{snap.available} left"
            rows.append(
                (
                    key,
                    "healthy" if state is None else state.state,
                    str(tally.calls),
                    str(tally.failed),
                    str(tally.retries),
                    breaker,
                    budget,
                )
            )
        return rows

    def table(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        table = Table(title="endpoints (health judged over the last 2 s)", title_justify="left")
        colours = {
            "healthy": "green",
            "degraded": "yellow",
            "down": "bold red",
            "open": "bold red",
            "half_open": "yellow",
            "refusing": "yellow",
        }
        for name in ("endpoint", "health", "calls", "failed", "retries", "breaker", "budget"):
            table.add_column(
                name, justify="right" if name in ("calls", "failed", "retries") else "left"
            )
        for row in self.rows():
            table.add_row(*(Text(c, style=colours.get(c, "")) for c in row))
        return table

    def plain_rows(self, elapsed: float) -> None:
        for key, state, calls, failed, retries, breaker, budget in self.rows():
            self.screen.say(
                f"  [{elapsed:4.1f}s] {key:<15} {state:<8} calls {calls:>3}  failed "
                f"{failed:>3}  retries {retries:>3}  breaker {breaker:<9} budget {budget}"
            )

    def call(self, key: str) -> None:
        """One call of ``key``, counted, and explained if it is the first of its kind."""
        self.sent += 1
        n = self.sent
        outcome: httpx.Response | Exception
        try:
            if key == "GET /catalog":
                outcome = self.client.get("/catalog")
            elif key == "GET /search":
                outcome = self.client.get(
                    "/search",
                    params={
                        "q": "boots",
                        "format": "google",
                        "request_id": f"srch-{n:05d}",
                        "api_key": SECRET,
                    },
                )
            else:
                outcome = self.client.post(
                    "/checkout",
                    json={"amount": 4200},
                    params={"format": "stripe", "request_id": f"req_{n:05d}"},
                )
        except httpx.HTTPError as exc:
            outcome = exc
        info = rc.resilience_info(outcome)
        tally = self.tally[key]
        tally.calls += 1
        attempts = info.attempts if info is not None else 0
        tally.retries += max(0, attempts - 1)
        status = outcome.status_code if isinstance(outcome, httpx.Response) else None
        failed = status is None or status >= 500
        tally.failed += failed
        reason = info.stop_reason if info is not None else None
        kind = f"{failed}:{reason}:{attempts > 1}"
        if kind in tally.told or (not failed and attempts <= 1):
            return
        tally.told.add(kind)
        what = f"{status}" if status is not None else type(outcome).__name__
        why = WHY.get(reason or "", reason or "no attempt was judged")
        if not failed:
            retried = ", ".join(info.retry_reasons) if info is not None else ""
            self.screen.say(
                f"  {key}: {what} after {attempts} attempts "
                f"(retried after {retried}): the retries saved the call"
            )
        elif attempts == 0:
            why = FAST.get(type(outcome).__name__, why)
            self.screen.say(f"  {key}: failed fast with {what}: {why}", "red")
        else:
            self.screen.say(
                f"  {key}: failed with {what} after {attempts} attempt"
                f"{'s' if attempts > 1 else ''}: stopped because {why}",
                "red",
            )

    def alerts(self, sink: _Alerts) -> bool:
        """Print the alerts sent since last time; whether the incident resolved."""
        resolved = False
        while not sink.received.empty():
            alert = sink.received.get()
            self.screen.say(
                f"  ALERT {alert.action} ({alert.severity}): {alert.summary}", "bold magenta"
            )
            self.screen.say(f"        ({ALERT_WHY[alert.action]})")
            resolved = resolved or alert.action == "resolve"
        return resolved


def main(
    out_dir: str | Path | None = None, *, out: TextIO | None = None, live: bool | None = None
) -> int:
    """Run the story; write the reports to ``out_dir`` (default: a new temporary
    directory). ``out``: write plain lines there instead of the terminal; ``live``:
    force the live table on or off (default: on a terminal, when rich is installed).
    Returns the exit status (0)."""
    started = time.monotonic()
    screen = _Screen(out, live)
    directory = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="rc-demo-"))
    directory.mkdir(parents=True, exist_ok=True)
    store = f"sqlite:///{directory / 'incidents.db'}"
    sink = _Alerts()
    monitor = rc.IncidentMonitor(rules=RULES, sinks=[sink], store=store)
    screen.say("Starting the chaos upstream on 127.0.0.1 (a provider that fails on purpose)...")
    with (
        serve() as upstream,
        rc.ResilientClient(
            base_url=f"{upstream.url}/outage",
            policy=POLICY,
            incidents=monitor,
            endpoints={key: rc.Policy() for key in ENDPOINTS},
            headers={"Authorization": f"Bearer {SECRET}"},
        ) as client,
    ):
        story = _Story(screen, client, monitor)
        screen.say(
            f"Calling {upstream.url}/outage with retries (3 attempts), a retry budget, "
            "a breaker per endpoint and an incident monitor."
        )
        if screen.live is None and screen.console is None:
            screen.say(
                "Each second, one line per endpoint: health as the monitor judges it, "
                "calls, failed calls (after retries), retries sent, breaker, budget."
            )
        screen.start(story.table)
        resolved = False
        try:
            for number, act in enumerate(ACTS, 1):
                screen.say(f"\nAct {number}, {act.title}: {act.story}.", "bold")
                for name, rate in act.plans.items():
                    upstream.app.set_failure_plan(name, rate=rate, seed=number)
                for tally in story.tally.values():
                    tally.told.clear()
                act_start = time.monotonic()
                next_row = act_start + 1.0
                while time.monotonic() - act_start < act.seconds:
                    for key in ENDPOINTS:
                        story.call(key)
                    resolved = story.alerts(sink) or resolved
                    if act.title == "recovery" and resolved:
                        break
                    screen.update(story.table)
                    if screen.live is None and time.monotonic() >= next_row:
                        story.plain_rows(time.monotonic() - started)
                        next_row += 1.0
                    time.sleep(0.05)
            monitor.flush(2.0)
            story.alerts(sink)
            screen.update(story.table)
        finally:
            screen.stop()
        if screen.live is None:
            story.plain_rows(time.monotonic() - started)
        incidents = monitor.incidents()
    monitor.close()
    if not incidents:
        screen.say("\nNo incident was recorded (the machine may be too busy); no report written.")
        return 1
    incident = incidents[0]
    html, markdown = directory / f"{incident.id}.html", directory / f"{incident.id}.md"
    html.write_text(incident.report("html"), encoding="utf-8")
    markdown.write_text(incident.report("markdown"), encoding="utf-8")
    screen.say(
        f"\nIncident {incident.id}: {incident.state}, {incident.failed_calls} of "
        f"{incident.calls} calls failed; detected {incident.time_to_detect:.1f} s after "
        "the first failure."
    )
    screen.say("Escalation reports, ready for the provider's support team:")
    screen.say(f"  HTML:     {html}")
    screen.say(f"  Markdown: {markdown}")
    screen.say(f"Incidents are kept in {store}; try:")
    screen.say(f"  resilient-client incidents list --store {store}")
    screen.say(f"Done in {time.monotonic() - started:.1f} s.")
    return 0
