"""Health rules and the pure incident lifecycle, as tables (no threads, no I/O)."""

from __future__ import annotations

import pydantic
import pytest

from resilient_client.incidents import HealthRules
from resilient_client.incidents._incident import Contribution, Record, Report, advance
from resilient_client.incidents._rules import CallWindow, WindowStats, judge

RULES = HealthRules()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("window", 0.0),
        ("min_calls", 0),
        ("degraded_failure_rate", 0.0),
        ("down_failure_rate", 1.5),
        ("degraded_latency", -1.0),
        ("recover_after", -1.0),
    ],
)
def test_rules_reject_values_out_of_range_naming_the_field(field: str, value: float) -> None:
    with pytest.raises(pydantic.ValidationError, match=field):
        HealthRules(**{field: value})


def test_rules_reject_a_down_rate_below_the_degraded_rate() -> None:
    with pytest.raises(pydantic.ValidationError, match="down_failure_rate"):
        HealthRules(degraded_failure_rate=0.5, down_failure_rate=0.2)


@pytest.mark.parametrize(
    ("current", "calls", "failures", "p95", "breaker_open", "expected"),
    [
        ("healthy", 100, 0, 0.01, False, "healthy"),
        ("healthy", 100, 10, 0.01, False, "degraded"),  # entered at the threshold
        ("healthy", 100, 50, 0.01, False, "down"),
        ("healthy", 9, 9, 0.01, False, "healthy"),  # below min_calls: no outage yet
        ("healthy", 0, 0, None, True, "down"),  # an open breaker is down
        ("down", 0, 0, None, False, "healthy"),  # no traffic is no evidence
        ("down", 100, 30, 0.01, False, "down"),  # held: still above half the threshold
        ("down", 100, 20, 0.01, False, "degraded"),
        ("degraded", 100, 6, 0.01, False, "degraded"),  # hysteresis
        ("degraded", 100, 4, 0.01, False, "healthy"),
        ("down", 5, 5, 0.01, False, "down"),  # few calls, all failing: stays down
        ("healthy", 1, 1, 0.01, False, "healthy"),  # one failed call at low volume
    ],
)
def test_judge_table(
    current: str, calls: int, failures: int, p95: float | None, breaker_open: bool, expected: str
) -> None:
    stats = WindowStats(calls, failures, p95, None)
    assert judge(current, stats, breaker_open, RULES) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("current", "p95", "expected"),
    [
        ("healthy", 2.5, "degraded"),
        ("healthy", 1.5, "healthy"),
        ("degraded", 1.7, "degraded"),
        ("degraded", 1.5, "healthy"),
    ],
)
def test_judge_slow_calls_degrade_with_hysteresis(current: str, p95: float, expected: str) -> None:
    rules = HealthRules(degraded_latency=2.0)
    assert judge(current, WindowStats(100, 0, p95, None), False, rules) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [30.0, 32.9, 33.0, 35.5])  # the bad second's place in a bucket
def test_one_bad_second_at_steady_volume_never_leaves_healthy(bad: float) -> None:
    window = CallWindow(RULES.bucket)
    state = "healthy"
    for tenth in range(600):  # a minute at 10 calls a second, judged after every call
        second = tenth / 10
        window.add(int(second // RULES.bucket), 0.01, bad <= second < bad + 1, 1000.0 + second)
        state = judge(state, window.stats(int(second // RULES.bucket)), False, RULES)  # type: ignore[arg-type]
        assert state == "healthy", f"{state} at {second} s"


def test_a_hard_outage_is_down_within_two_buckets_whatever_the_window_held() -> None:
    window = CallWindow(RULES.bucket)
    for tenth in range(300):  # a full window of healthy calls first
        window.add(int(tenth / 10 // RULES.bucket), 0.01, False, 0.0)
    state, second = "healthy", 30.0
    while state != "down":
        index = int(second // RULES.bucket)
        window.add(index, 0.01, True, 1000.0 + second)
        state = judge(state, window.stats(index), False, RULES)  # type: ignore[arg-type]
        second += 0.1
    assert second - 30.0 <= 2 * RULES.bucket
    assert window.stats(index).failures < RULES.down_failure_rate * window.stats(index).calls


def test_a_few_failed_calls_at_low_volume_are_no_outage() -> None:
    window = CallWindow(RULES.bucket)
    state = "healthy"
    for second in range(0, 120, 4):  # a call every 4 s, every third one failing
        index = int(second // RULES.bucket)
        window.add(index, 0.01, second % 12 == 0, 1000.0 + second)
        state = judge(state, window.stats(index), False, RULES)  # type: ignore[arg-type]
        assert state == "healthy"


def test_the_window_forgets_calls_older_than_the_window() -> None:
    window = CallWindow(6.0)
    window.add(0, 0.01, True, 1.0)
    assert window.stats(9).failures == 1
    assert window.stats(10).calls == 0


def test_p95_comes_from_the_slowest_twentieth_of_calls() -> None:
    window = CallWindow(6.0)
    for _ in range(95):
        window.add(0, 0.010, False, 0.0)
    for _ in range(5):
        window.add(0, 3.0, False, 0.0)
    p95 = window.stats(0).p95
    assert p95 is not None and 0.010 <= p95 < 0.013


def _report(now: float, severity: str | None, process: str = "p1", **kw: object) -> Report:
    states = {"GET /x": "down" if severity else "healthy"}
    window = Contribution(calls=10, failed_calls=10 if severity else 0, first_failure=now - 5)
    delta = Contribution(calls=3, failed_calls=3 if severity else 0)
    return Report(
        process=process,
        provider="api.test",
        now=now,
        states=states,  # type: ignore[arg-type]
        severity=severity,
        window=window,
        delta=delta,
        **kw,
    )  # type: ignore[arg-type]


def _ids() -> object:
    count = iter(range(100))
    return lambda: f"inc-{next(count)}"


def run(steps: list[Report], rules: HealthRules = RULES) -> tuple[Record | None, list[str]]:
    record: Record | None = None
    actions: list[str] = []
    new_id = _ids()
    for report in steps:
        record, alerts = advance(record, report, rules, new_id)  # type: ignore[arg-type]
        actions += [f"{a.action}:{a.severity}:{a.dedup_key}" for a in alerts]
    return record, actions


def test_one_trigger_then_one_resolve_after_recover_after_of_health() -> None:
    steps = [_report(1000.0 + 6 * i, "error") for i in range(5)]
    steps += [_report(1030.0 + 6 * i, None) for i in range(12)]
    record, actions = run(steps)
    assert actions == ["trigger:error:inc-0", "resolve:error:inc-0"]
    assert record is not None
    incident = record.incident
    assert incident.state == "resolved"
    assert incident.started_at.timestamp() == 995.0  # the first failure in the window
    assert incident.time_to_detect == 5.0
    # the window on joining, then deltas until resolved (later calls are no part of it)
    assert incident.calls == 10 + 4 * 3 + 10 * 3
    assert incident.resolved_at is not None
    assert incident.resolved_at.timestamp() - 1024.0 >= RULES.recover_after


def test_severity_changes_send_at_most_one_update_a_minute() -> None:
    steps = [
        _report(1000.0, "warning"),
        _report(1006.0, "error"),
        _report(1012.0, "critical"),
        _report(1066.0, "critical"),
    ]
    _, actions = run(steps)
    assert actions == ["trigger:warning:inc-0", "update:critical:inc-0"]


def test_reopening_within_recover_after_is_the_same_incident() -> None:
    steps = [_report(1000.0, "error")] + [_report(1006.0 + 6 * i, None) for i in range(11)]
    steps += [_report(1090.0, "error")]
    record, actions = run(steps)
    assert actions == ["trigger:error:inc-0", "resolve:error:inc-0", "trigger:error:inc-0"]
    assert record is not None and record.incident.state == "open"
    assert any(what == "reopened" for _, what in record.incident.timeline)


def test_after_recover_after_a_new_outage_is_a_new_incident() -> None:
    steps = [_report(1000.0, "error")] + [_report(1006.0 + 6 * i, None) for i in range(11)]
    steps += [_report(1300.0, "error")]
    _, actions = run(steps)
    assert actions[-1] == "trigger:error:inc-1"


def test_a_muted_incident_keeps_evidence_and_triggers_when_the_mute_ends() -> None:
    steps = [
        _report(1000.0, "error", muted="maintenance"),
        _report(1006.0, "error", muted="maintenance"),
        _report(1012.0, "error"),
    ]
    record, actions = run(steps)
    assert actions == ["trigger:error:inc-0"]
    assert record is not None and record.incident.calls == 16
    assert any("muted: maintenance" in what for _, what in record.incident.timeline)


def test_two_processes_sum_their_counts_into_one_incident_with_one_trigger() -> None:
    steps = [
        _report(1000.0, "error", "a"),
        _report(1001.0, "error", "b"),
        _report(1006.0, "error", "a"),
        _report(1007.0, "error", "b"),
    ]
    record, actions = run(steps)
    assert actions == ["trigger:error:inc-0"]
    assert record is not None and record.incident.calls == 10 + 10 + 3 + 3


def test_the_record_round_trips_through_json() -> None:
    record, _ = run([_report(1000.0, "error")])
    assert record is not None
    assert Record.model_validate_json(record.model_dump_json()) == record
