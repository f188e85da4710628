"""What the chaos server saw, per scenario name, readable from any thread.

The server runs on its own event loop thread while tests read these records from the main
thread, so every access goes through one ``threading.Lock``, held only for bookkeeping
(never across an ``await``).
"""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from ._asgi import Request

__all__ = ["FailurePlan", "RecordedRequest", "Recorder", "ScenarioStats", "Visit"]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server received it.

    ``attempt`` numbers the scenario's requests from 1; ``headers`` maps lower-cased names
    to values (a repeated header's values joined with ", "); ``body_size`` is in bytes;
    ``arrived`` is the server clock's monotonic reading, in seconds, when it arrived.
    """

    attempt: int
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body_size: int
    arrived: float

    def as_json(self) -> dict[str, object]:
        """A JSON-ready dict of every field."""
        return {
            "attempt": self.attempt,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": dict(self.headers),
            "body_size": self.body_size,
            "arrived": self.arrived,
        }


@dataclass(frozen=True, slots=True)
class ScenarioStats:
    """A frozen snapshot of one scenario name.

    ``attempts`` counts requests received (whatever their fate), ``in_flight`` the handlers
    running at snapshot time, ``peak_concurrency`` the most that ever ran at once.
    """

    name: str
    attempts: int
    requests: tuple[RecordedRequest, ...]
    in_flight: int
    peak_concurrency: int


@dataclass(frozen=True, slots=True)
class FailurePlan:
    """``/outage/{name}`` fails a ``rate`` share of calls with ``status``, drawn from a
    ``random.Random(seed)`` so a run repeats exactly."""

    rate: float
    status: int = 503
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be within [0, 1], got {self.rate!r}")
        if not 200 <= self.status <= 599:
            raise ValueError(f"status must be within 200..599, got {self.status!r}")


@dataclass(slots=True)
class _Scenario:
    attempts: int = 0
    requests: list[RecordedRequest] = field(default_factory=list)
    in_flight: int = 0
    peak: int = 0
    plan: FailurePlan | None = None
    rng: random.Random | None = None


@dataclass(frozen=True, slots=True)
class Visit:
    """A handler's ticket: its attempt number and the scenario it counts against."""

    attempt: int
    _scenario: _Scenario


class Recorder:
    """Per-name attempt counters, request records, concurrency and failure plans."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scenarios: defaultdict[str, _Scenario] = defaultdict(_Scenario)

    def enter(self, name: str, request: Request, arrived: float) -> Visit:
        """Record ``request`` under ``name`` and count it in flight until :meth:`leave`."""
        with self._lock:
            scenario = self._scenarios[name]
            scenario.attempts += 1
            scenario.in_flight += 1
            scenario.peak = max(scenario.peak, scenario.in_flight)
            scenario.requests.append(
                RecordedRequest(
                    attempt=scenario.attempts,
                    method=request.method,
                    path=request.path,
                    query=request.query,
                    headers=dict(request.headers),
                    body_size=len(request.body),
                    arrived=arrived,
                )
            )
            return Visit(scenario.attempts, scenario)

    def leave(self, visit: Visit) -> None:
        """The handler of ``visit`` is done (after a reset it counts against nothing live)."""
        with self._lock:
            visit._scenario.in_flight -= 1

    def snapshot(self, name: str) -> ScenarioStats:
        """A frozen copy of ``name``'s records (all zero for a name never seen)."""
        with self._lock:
            scenario = self._scenarios.get(name) or _Scenario()
            return ScenarioStats(
                name=name,
                attempts=scenario.attempts,
                requests=tuple(scenario.requests),
                in_flight=scenario.in_flight,
                peak_concurrency=scenario.peak,
            )

    def set_plan(self, name: str, plan: FailurePlan) -> None:
        """Replace ``name``'s failure plan and restart its random sequence."""
        with self._lock:
            scenario = self._scenarios[name]
            scenario.plan = plan
            scenario.rng = random.Random(plan.seed)

    def draw_failure(self, name: str) -> int | None:
        """The status this ``/outage`` call fails with, or None when it succeeds."""
        with self._lock:
            scenario = self._scenarios[name]
            if scenario.plan is None or scenario.rng is None:
                return None
            # Draw even at rate 0 or 1: the n-th call's fate depends on the seed and n alone.
            return scenario.plan.status if scenario.rng.random() < scenario.plan.rate else None

    def reset(self) -> None:
        """Forget every scenario, failure plans included."""
        with self._lock:
            self._scenarios.clear()
