"""``rc.Chaos`` and its injector: validation, seeded rates within binomial bounds,
reproducibility, every fault for httpx and httpx2, and the environment switch."""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from typing import Any

import httpx
import httpx2
import pydantic
import pytest

import resilient_client as rc
from resilient_client import httpx2 as rc2
from resilient_client.chaos._inject import (
    ENVIRONMENT_SWITCH,
    Chaos,
    ChaosInjector,
    fault_outcome,
    injected_fault,
    injector_for,
)
from resilient_client.testing import FakeClock, ScriptedTransport, no_waits

URL = "http://api.test/v1/items"
LIBRARIES = [("httpx", httpx, rc), ("httpx2", httpx2, rc2)]


@pytest.fixture(autouse=True)
def chaos_switch_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENVIRONMENT_SWITCH, raising=False)


def within_binomial(hits: int, trials: int, p: float, sigmas: float = 5.0) -> bool:
    """``hits`` lies within ``sigmas`` standard deviations of Binomial(trials, p)'s mean
    (5 sigma: a correct injector fails about once in 3.5 million seeds)."""
    spread = sigmas * math.sqrt(trials * p * (1 - p))
    return abs(hits - trials * p) <= spread


# --- the model -------------------------------------------------------------------------


def test_the_defaults_are_the_contracts() -> None:
    chaos = Chaos()
    assert (chaos.rate, chaos.faults) == (0.05, (503, "reset", "timeout"))
    assert chaos.envelope == "rfc9457"
    assert chaos.latency is None and chaos.seed is None
    with pytest.raises(pydantic.ValidationError):
        chaos.rate = 0.5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rate": -0.1}, "rate"),
        ({"rate": 1.01}, "rate"),
        ({"rate": float("nan")}, "rate"),
        ({"faults": ()}, "faults"),
        ({"faults": (399,)}, "faults"),
        ({"faults": (503, 600)}, "faults"),
        ({"faults": ("explode",)}, "faults"),
        ({"envelope": "xml"}, "envelope"),
        ({"latency": (0.5, 0.1)}, "latency"),
        ({"latency": (-0.1, 0.1)}, "latency"),
        ({"latency": (0.0, float("inf"))}, "latency"),
        ({"seed": "abc"}, "seed"),
        ({"speed": 2}, "speed"),
    ],
)
def test_a_value_out_of_range_is_refused_naming_its_field(kwargs: Any, field: str) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        Chaos(**kwargs)
    assert {str(error["loc"][0]) for error in info.value.errors()} == {field}


def test_a_configuration_file_s_lists_and_strings_are_taken() -> None:
    chaos = Chaos.model_validate({"faults": [429, "reset"], "latency": [0.1, 0.2]})
    assert chaos.faults == (429, "reset") and chaos.latency == (0.1, 0.2)


# --- the picks -------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.05, 0.3, 0.9])
def test_the_share_of_faulted_attempts_is_the_rate(rate: float) -> None:
    trials = 2_000
    for seed in range(10):
        injector = ChaosInjector(Chaos(rate=rate, seed=seed))
        hits = sum(injector.pick() is not None for _ in range(trials))
        assert within_binomial(hits, trials, rate), (seed, hits)


def test_each_fault_is_picked_about_as_often_as_the_others() -> None:
    faults = (429, 503, "reset", "timeout")
    injector = ChaosInjector(Chaos(rate=0.5, faults=faults, seed=7))
    picked = Counter(injector.pick() for _ in range(20_000))
    hits = sum(count for fault, count in picked.items() if fault is not None)
    assert set(picked) == {None, *faults}
    for fault in faults:
        assert within_binomial(picked[fault], hits, 1 / len(faults)), picked


@pytest.mark.parametrize(("rate", "expected"), [(0.0, 0), (1.0, 1_000)])
def test_rates_zero_and_one_never_and_always_fault(rate: float, expected: int) -> None:
    injector = ChaosInjector(Chaos(rate=rate, latency=(0.1, 0.2)))
    assert sum(injector.pick() is not None for _ in range(1_000)) == expected
    assert sum(injector.pick_latency() is not None for _ in range(1_000)) == expected


def test_latency_is_picked_at_the_rate_and_drawn_uniformly_within_its_range() -> None:
    trials = 10_000
    injector = ChaosInjector(Chaos(rate=0.2, latency=(0.5, 1.5), seed=3))
    delays = [d for d in (injector.pick_latency() for _ in range(trials)) if d is not None]
    assert within_binomial(len(delays), trials, 0.2)
    assert all(0.5 <= d <= 1.5 for d in delays)
    # Uniform on [0.5, 1.5]: mean 1.0, standard deviation 1/sqrt(12) per draw.
    mean = sum(delays) / len(delays)
    assert abs(mean - 1.0) <= 5 / math.sqrt(12 * len(delays))


def test_without_latency_no_delay_is_picked() -> None:
    injector = ChaosInjector(Chaos(rate=1.0))
    assert injector.pick_latency() is None


def sequence(injector: ChaosInjector, n: int = 200) -> list[Any]:
    return [(injector.pick(), injector.pick_latency()) for _ in range(n)]


def test_a_seed_makes_the_sequence_repeat() -> None:
    chaos = Chaos(rate=0.3, latency=(0.0, 1.0), seed=42)
    assert sequence(ChaosInjector(chaos)) == sequence(ChaosInjector(chaos))
    other = Chaos(rate=0.3, latency=(0.0, 1.0), seed=43)
    assert sequence(ChaosInjector(chaos)) != sequence(ChaosInjector(other))


def test_turning_latency_on_leaves_the_faults_sequence_as_it_was() -> None:
    plain = ChaosInjector(Chaos(rate=0.3, seed=5))
    slow = ChaosInjector(Chaos(rate=0.3, seed=5, latency=(0.1, 0.2)))
    assert [plain.pick() for _ in range(300)] == [fault for fault, _ in sequence(slow, 300)]


def test_without_a_seed_a_fake_clocks_draw_seeds_the_injector() -> None:
    chaos = Chaos(rate=0.3)
    first = sequence(injector_for(chaos, FakeClock(seed=9)))
    assert first == sequence(injector_for(chaos, FakeClock(seed=9)))
    assert first != sequence(injector_for(chaos, FakeClock(seed=10)))
    # A seed in the policy wins over the clock.
    seeded = Chaos(rate=0.3, seed=1)
    assert sequence(injector_for(seeded, FakeClock(seed=9))) == sequence(ChaosInjector(seeded))


# --- the environment switch -------------------------------------------------------------


@pytest.mark.parametrize("value", ["off", "OFF", " off ", "0", "false", "no"])
def test_the_environment_switch_turns_every_injector_off(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    injector = ChaosInjector(Chaos(rate=1.0, latency=(1.0, 2.0)))
    monkeypatch.setenv(ENVIRONMENT_SWITCH, value)
    assert [injector.pick() for _ in range(100)] == [None] * 100
    assert injector.pick_latency() is None


def test_the_switch_is_read_at_each_decision(monkeypatch: pytest.MonkeyPatch) -> None:
    injector = ChaosInjector(Chaos(rate=1.0, faults=(503,)))
    assert injector.pick() == 503
    monkeypatch.setenv(ENVIRONMENT_SWITCH, "off")
    assert injector.pick() is None
    monkeypatch.setenv(ENVIRONMENT_SWITCH, "on")
    assert injector.pick() == 503


# --- the outcomes, for both libraries ----------------------------------------------------


@pytest.mark.parametrize(("library", "lib", "ns"), LIBRARIES, ids=["httpx", "httpx2"])
def test_reset_is_the_library_s_dropped_connection(library: str, lib: Any, ns: Any) -> None:
    request = lib.Request("GET", URL)
    error = fault_outcome("reset", request, library=library)
    assert type(error) is lib.RemoteProtocolError and error.request is request
    assert injected_fault(error) == "reset"


@pytest.mark.parametrize(("library", "lib", "ns"), LIBRARIES, ids=["httpx", "httpx2"])
def test_timeout_is_the_library_s_read_timeout(library: str, lib: Any, ns: Any) -> None:
    request = lib.Request("GET", URL)
    error = fault_outcome("timeout", request, library=library)
    assert type(error) is lib.ReadTimeout and error.request is request
    assert injected_fault(error) == "timeout"


@pytest.mark.parametrize(("library", "lib", "ns"), LIBRARIES, ids=["httpx", "httpx2"])
@pytest.mark.parametrize(
    ("envelope", "format"),
    [
        ("rfc9457", "rfc9457"),
        ("google", "google"),
        ("microsoft", "microsoft"),
        ("jsonapi", "jsonapi"),
        ("openai", "openai"),
        ("anthropic", "openai"),
        ("stripe", "stripe"),
        ("graphql", "graphql"),
        ("unstructured", "unstructured"),
    ],
)
def test_a_status_is_answered_in_the_envelope_s_error_body(
    library: str, lib: Any, ns: Any, envelope: Any, format: str
) -> None:
    response = fault_outcome(503, lib.Request("GET", URL), envelope=envelope, library=library)
    assert type(response) is lib.Response and response.status_code == 503
    problem = rc.parse_problem(response)
    assert problem.format == format and problem.status == 503 and problem.retryable
    assert injected_fault(response) == 503


@pytest.mark.parametrize(
    ("envelope", "status", "header"),
    [
        ("rfc9457", 503, "1"),
        ("rfc9457", 429, "1"),
        ("microsoft", 429, "1"),
        ("openai", 429, "1"),
        ("anthropic", 503, "1"),
        ("rfc9457", 500, None),  # a 500 carries no hint
        ("google", 503, None),  # Google's hint is RetryInfo in the body
        ("stripe", 429, None),  # Stripe sends none
        ("unstructured", 503, None),  # nor does a proxy's error page
    ],
)
def test_retry_after_is_sent_on_429_and_503_where_the_vendor_sends_it(
    envelope: Any, status: int, header: str | None
) -> None:
    response = fault_outcome(status, httpx.Request("GET", URL), envelope=envelope)
    assert response.headers.get("retry-after") == header


def test_google_s_retry_hint_is_in_its_body() -> None:
    response = fault_outcome(503, httpx.Request("GET", URL), envelope="google")
    assert rc.parse_problem(response).retry_after == 1.0


def test_a_real_outcome_is_not_taken_for_an_injected_one() -> None:
    assert injected_fault(httpx.Response(503)) is None
    assert injected_fault(httpx.ReadTimeout("slow")) is None
    assert injected_fault(None) is None


@pytest.mark.parametrize("fault", [302, "explode", True])
def test_an_unknown_fault_is_refused(fault: Any) -> None:
    with pytest.raises(ValueError, match="fault"):
        fault_outcome(fault, httpx.Request("GET", URL))


def test_an_unknown_library_is_refused() -> None:
    with pytest.raises(ValueError, match="library"):
        fault_outcome(503, httpx.Request("GET", URL), library="requests")


# --- through the real pipeline ------------------------------------------------------------


def injecting(lib: Any, injector: ChaosInjector, library: str, sent: list[Any]) -> Any:
    """A mock upstream that answers 200 unless the injector picks a fault - standing in
    for the pipeline's own attempt, which replaces the send the same way."""

    def answer(request: Any) -> Any:
        fault = injector.pick()
        if fault is None:
            sent.append(request)
            return lib.Response(200)
        return injector.answer(fault, request, library)

    return lib.MockTransport(answer)


@pytest.mark.parametrize(("library", "lib", "ns"), LIBRARIES, ids=["httpx", "httpx2"])
@pytest.mark.parametrize("fault", [503, 429, "reset", "timeout"])
def test_the_pipeline_retries_each_injected_fault_as_a_real_one(
    library: str, lib: Any, ns: Any, fault: Any
) -> None:
    # Rate 1 for the first attempt, then none: seeded so, by a one-fault script.
    picks = iter([fault, None])

    class Once(ChaosInjector):
        def pick(self) -> Any:
            return next(picks)

    sent: list[Any] = []
    injector = Once(Chaos(rate=1.0, faults=(fault,)))
    client = ns.ResilientClient(transport=injecting(lib, injector, library, sent), telemetry=False)
    with no_waits() as waits:
        response = client.get(URL)
    assert response.status_code == 200 and len(sent) == 1
    assert response.extensions["resilience"].attempts == 2
    if fault in (503, 429):  # the injected Retry-After was honoured
        assert waits.delays == [1.0]


@pytest.mark.parametrize(("library", "lib", "ns"), LIBRARIES, ids=["httpx", "httpx2"])
def test_a_steady_rate_opens_the_breaker_and_no_fault_reaches_the_upstream(
    library: str, lib: Any, ns: Any
) -> None:
    sent: list[Any] = []
    injector = ChaosInjector(Chaos(rate=1.0, faults=(503,)), random.Random(0))
    policy = rc.Policy(breaker=rc.Breaker(failure_threshold=3), budget=None)
    client = ns.ResilientClient(
        transport=injecting(lib, injector, library, sent), policy=policy, telemetry=False
    )
    with no_waits():
        assert client.get(URL).status_code == 503
        with pytest.raises(ns.CircuitOpenError):
            client.get(URL)
    assert sent == []


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_injected_latency_is_cut_at_the_attempt_s_limit(kind: str) -> None:
    # A provider 10 s slow meets the 1 s attempt timeout, as a real one would: each
    # attempt times out at 1 s, and the call ends by its 3 s deadline, never sent.
    clock = FakeClock(fixed=0.0)  # zero backoff: only the attempts use up the deadline
    chaos = rc.Chaos(rate=1.0, faults=(503,), latency=(10.0, 10.0))
    policy = rc.Policy(chaos=chaos, timeouts=rc.Timeouts(attempt=1.0, total=3.0))
    transport = ScriptedTransport()
    options: dict[str, Any] = {"transport": transport, "policy": policy, "clock": clock}

    def call() -> None:
        if kind == "sync":
            rc.ResilientClient(telemetry=False, **options).get(URL)
            return

        async def go() -> None:
            async with rc.AsyncResilientClient(telemetry=False, **options) as client:
                await client.get(URL)

        asyncio.run(go())

    with pytest.raises(rc.DeadlineExceeded) as raised:
        call()
    assert clock.monotonic() - 1000.0 == pytest.approx(3.0)
    assert raised.value.__resilience_info__.injected == ()  # no fault: the attempts timed out
    assert transport.requests == []
