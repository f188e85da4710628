"""Kill switches (``client.isolate()`` / ``restore()``): the rules, against scripted
transports and in-process storages (the real upstream and Redis: tests/integration)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from drivers import Driver
from otel_support import Otel, attrs

import resilient_client as rc
import resilient_client.typing as rct
from resilient_client._breaker._storage import (
    BreakerStorageUnavailable,
    Exchange,
    MemoryBreakerStorage,
    SharedView,
)
from resilient_client._isolation import check_reason, endpoint_key
from resilient_client.testing import FakeClock, ScriptedTransport

USERS = "GET /v1/users/{id}"
PAY = "POST /v1/payments"
NO_WAIT = rc.Retry(max_attempts=3, backoff=rc.Backoff(initial=0.0, max=0.0))


def make(driver: Driver, transport: httpx.MockTransport | None = None, **kwargs: Any) -> Any:
    kwargs.setdefault("clock", FakeClock())
    kwargs.setdefault("policy", rc.Policy(retry=NO_WAIT))
    kwargs.setdefault(
        "endpoints",
        {USERS: rc.Policy(), PAY: rc.Policy(breaker=None), "GET /v1/plain": rc.Policy()},
    )
    return driver.client(
        base_url="https://api.test", transport=transport or ScriptedTransport(), **kwargs
    )


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "error", "says"),
    [
        ("", ValueError, "must not be empty"),
        ("   ", ValueError, "must not be empty"),
        ("two\nlines", ValueError, "one printable line"),
        ("x" * 201, ValueError, "at most 200"),
        (None, TypeError, "not NoneType"),
        (42, TypeError, "not int"),
    ],
)
def test_a_reason_must_be_one_nonempty_line(reason: object, error: type, says: str) -> None:
    with pytest.raises(error, match=says):
        check_reason(reason)


def test_a_reason_is_kept_stripped() -> None:
    assert check_reason("  deploy of v2 in progress ") == "deploy of v2 in progress"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (USERS, USERS),
        ("get  /v1/users/{id}", USERS),  # any spelling that parses to the key
        ("* API.test", "* api.test"),  # a host's default, seen or not
        ("* other.test:8443", "* other.test:8443"),
    ],
)
def test_an_endpoint_key_is_resolved_to_its_normal_form(text: str, expected: str) -> None:
    assert endpoint_key(text, [USERS, PAY]) == expected


def test_an_unknown_key_names_itself_and_the_closest_known_one() -> None:
    with pytest.raises(ValueError, match=r"unknown endpoint key 'GET /v1/user/\{id\}'") as raised:
        endpoint_key("GET /v1/user/{id}", [USERS, PAY])
    assert f"did you mean {USERS!r}?" in str(raised.value)


def test_a_malformed_key_says_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="'GET v1/users': the path must start with '/'"):
        endpoint_key("GET v1/users", [USERS])
    with pytest.raises(TypeError, match="must be a str"):
        endpoint_key(None, [USERS])


def test_bad_input_through_the_client_changes_nothing(driver: Driver) -> None:
    transport = ScriptedTransport()
    client = make(driver, transport)
    with pytest.raises(ValueError, match="did you mean"):
        client.isolate("GET /v1/user/{id}", reason="maintenance")
    with pytest.raises(ValueError, match="must not be empty"):
        client.isolate(USERS, reason="")
    with pytest.raises(TypeError):
        client.isolate(USERS, reason=None)
    with pytest.raises(ValueError, match="unknown endpoint key"):
        client.restore("DELETE /v1/users/{id}")
    assert driver.request(client, "GET", "/v1/users/1").status_code == 200
    assert len(transport.requests) == 1


# -- refused until restored -----------------------------------------------------------------


@pytest.mark.parametrize("key", [USERS, PAY], ids=["with-breaker", "breaker-none"])
def test_an_isolated_endpoint_fails_fast_until_restored(driver: Driver, key: str) -> None:
    transport = ScriptedTransport()
    client = make(driver, transport)
    method, path = ("GET", "/v1/users/1") if key == USERS else ("POST", "/v1/payments")
    assert client.isolate(key, reason="provider incident INC-42") is None
    with pytest.raises(rc.CircuitOpenError) as raised:
        driver.request(client, method, path)
    error = raised.value
    assert (error.reason, error.isolation, error.endpoint) == (
        "isolated",
        "provider incident INC-42",
        key,
    )
    assert str(error) == f"endpoint {key!r} isolated by a kill switch: provider incident INC-42"
    assert error.retry_after is None
    info = rc.resilience_info(error)
    assert info is not None and (info.stop_reason, info.attempts) == ("isolated", 0)
    assert transport.requests == []  # not sent, not retried
    assert client.restore(key) is True
    assert client.restore(key) is False  # nothing isolated any more: a no-op
    assert driver.request(client, method, path).status_code == 200
    assert len(transport.requests) == 1


def test_other_endpoints_are_untouched(driver: Driver) -> None:
    transport = ScriptedTransport()
    client = make(driver, transport)
    client.isolate(USERS, reason="maintenance")
    assert driver.request(client, "GET", "/v1/plain").status_code == 200
    assert driver.request(client, "GET", "/elsewhere").status_code == 200
    assert len(transport.requests) == 2


def test_an_isolated_host_default_refuses_its_calls(driver: Driver) -> None:
    transport = ScriptedTransport()
    client = make(driver, transport)
    client.isolate("* api.test", reason="host decommissioned")
    with pytest.raises(rc.CircuitOpenError, match="host decommissioned"):
        driver.request(client, "GET", "/anything")
    assert transport.requests == []


def test_an_open_breakers_refusal_says_open(driver: Driver) -> None:
    policy = rc.Policy(retry=None, breaker=rc.Breaker(failure_threshold=1))
    client = make(driver, ScriptedTransport([503]), policy=policy, endpoints={})
    driver.request(client, "GET", "/x")
    with pytest.raises(rc.CircuitOpenError) as raised:
        driver.request(client, "GET", "/x")
    assert (raised.value.reason, raised.value.isolation) == ("open", None)
    info = rc.resilience_info(raised.value)
    assert info is not None and info.stop_reason == "breaker"


def test_isolation_holds_whatever_the_breaker_state_and_takes_no_probe(driver: Driver) -> None:
    clock = FakeClock()
    policy = rc.Policy(retry=None, breaker=rc.Breaker(failure_threshold=1, reset_timeout=5.0))
    transport = ScriptedTransport([503])
    client = make(driver, transport, clock=clock, policy=policy, endpoints={})
    driver.request(client, "GET", "/x")
    client.isolate("* api.test", reason="maintenance")
    clock.advance(10.0)  # the break is over: a probe would be due
    with pytest.raises(rc.CircuitOpenError) as raised:
        driver.request(client, "GET", "/x")
    assert raised.value.reason == "isolated"
    client.restore("* api.test")
    assert driver.request(client, "GET", "/x").status_code == 200  # the probe, now
    assert len(transport.requests) == 2


def test_an_isolation_stops_a_call_between_its_attempts(driver: Driver) -> None:
    client_box: list[Any] = []

    def isolate_after_first(request: httpx.Request) -> httpx.Response:
        client_box[0].isolate(USERS, reason="pulled mid-call")
        return httpx.Response(503)

    transport = httpx.MockTransport(isolate_after_first)
    client = make(driver, transport)
    client_box.append(client)
    with pytest.raises(rc.CircuitOpenError, match="pulled mid-call") as raised:
        driver.request(client, "GET", "/v1/users/1")
    info = rc.resilience_info(raised.value)
    assert info is not None and (info.attempts, info.stop_reason) == (1, "isolated")


def test_a_fallback_answers_an_isolated_endpoint(driver: Driver) -> None:
    seen: list[BaseException] = []

    def fallback(request: httpx.Request, failure: Any) -> httpx.Response:
        seen.append(failure)
        return httpx.Response(200, json={"cached": True})

    client = make(driver, endpoints={USERS: rc.Policy(fallback=fallback)})
    client.isolate(USERS, reason="maintenance")
    response = driver.request(client, "GET", "/v1/users/1")
    assert response.json() == {"cached": True}
    assert response.extensions["resilience"].fallback
    assert [type(f).__name__ for f in seen] == ["CircuitOpenError"]
    assert seen[0].reason == "isolated"  # type: ignore[attr-defined]


def test_a_keyed_write_of_an_outbox_endpoint_is_parked(driver: Driver, tmp_path: Path) -> None:
    outbox = rc.Outbox(f"sqlite:///{tmp_path / 'outbox.db'}")
    transport = ScriptedTransport()
    client = make(driver, transport, outbox=outbox, endpoints={PAY: rc.Policy(outbox=True)})
    client.isolate(PAY, reason="maintenance")
    with pytest.raises(rc.WriteParked) as raised:
        driver.request(client, "POST", "/v1/payments", json={"amount": 1})
    assert raised.value.entry.endpoint == PAY
    assert isinstance(raised.value.__cause__, rc.CircuitOpenError)
    assert transport.requests == []
    outbox.close()


# -- visible --------------------------------------------------------------------------------


def test_health_and_breakers_show_the_isolation(driver: Driver) -> None:
    client = make(driver)
    client.isolate(USERS, reason="INC-7")
    client.isolate(PAY, reason="INC-8")
    health = client.health()
    assert health[USERS].isolated == "INC-7"
    assert health[PAY].isolated == "INC-8"
    assert health["GET /v1/plain"].isolated is None
    table = str(health)
    assert "isolated: INC-7 (breaker closed" in table
    assert "isolated: INC-8 (breaker off)" in table
    assert client.breakers()[USERS].isolated == "INC-7"
    assert f"{USERS}: isolated: INC-7; closed" in str(client.breakers())
    client.restore(USERS)
    assert client.health()[USERS].isolated is None
    assert "isolated" not in str(client.breakers())


def test_the_rejection_is_announced_and_recorded_by_telemetry(driver: Driver, otel: Otel) -> None:
    kinds: list[str] = []

    class Rejections:
        events = frozenset({rct.CallRejected})

        def on_event(self, call: object, event: Any) -> None:
            kinds.append(event.kind)

    client = make(driver, observers=[otel.observer(), Rejections()])
    client.isolate(USERS, reason="maintenance")
    with pytest.raises(rc.CircuitOpenError):
        driver.request(client, "GET", "/v1/users/1")
    assert kinds == ["isolated"]
    span = otel.call_span()
    assert [attrs(e)["resilient_client.rejected_by"] for e in span.events] == ["isolated"]
    assert attrs(span)["resilient_client.outcome"] == "rejected"
    assert otel.attempt_spans() == []
    (point,) = otel.points("resilient_client.rejections")
    assert attrs(point) == {
        "resilient_client.endpoint": USERS,
        "resilient_client.rejected_by": "isolated",
    }


def test_the_transport_has_the_same_switches(driver: Driver) -> None:
    inner = ScriptedTransport()
    transport = driver.transport(inner, endpoints={USERS: rc.Policy()}, clock=FakeClock())
    client = driver.plain_client(base_url="https://api.test", transport=transport)
    transport.isolate(USERS, reason="maintenance")
    with pytest.raises(rc.CircuitOpenError, match="maintenance"):
        driver.request(client, "GET", "/v1/users/1")
    assert transport.restore(USERS) is True
    assert driver.request(client, "GET", "/v1/users/1").status_code == 200


# -- shared through a storage -------------------------------------------------------------


@pytest.mark.parametrize("key", [USERS, PAY], ids=["with-breaker", "breaker-none"])
def test_clients_sharing_a_storage_share_isolations(driver: Driver, key: str) -> None:
    storage = MemoryBreakerStorage()
    transport = ScriptedTransport()
    a = make(driver, breaker_storage=storage)
    b = make(driver, transport, breaker_storage=storage)
    method, path = ("GET", "/v1/users/1") if key == USERS else ("POST", "/v1/payments")
    a.isolate(key, reason="fleet maintenance")
    with pytest.raises(rc.CircuitOpenError, match="fleet maintenance"):
        driver.request(b, method, path)
    assert b.health()[key].isolated == "fleet maintenance"
    assert a.restore(key) is True
    assert driver.request(b, method, path).status_code == 200
    assert b.restore(key) is False
    assert len(transport.requests) == 1


def test_a_restore_elsewhere_lifts_an_isolation_made_here(driver: Driver) -> None:
    storage = MemoryBreakerStorage()
    transport = ScriptedTransport()
    a = make(driver, transport, breaker_storage=storage)
    b = make(driver, breaker_storage=storage)
    a.isolate(USERS, reason="maintenance")
    with pytest.raises(rc.CircuitOpenError):
        driver.request(a, "GET", "/v1/users/1")
    assert b.restore(USERS) is True
    assert driver.request(a, "GET", "/v1/users/1").status_code == 200


class _Unreachable(MemoryBreakerStorage):
    """A storage that stopped answering (as Redis down does)."""

    down = False

    def _check(self) -> None:
        if self.down:
            raise BreakerStorageUnavailable("down")

    def exchange(self, request: Exchange, /) -> SharedView:
        self._check()
        return super().exchange(request)

    def isolate(self, endpoint: str, reason: str, /) -> None:
        self._check()
        super().isolate(endpoint, reason)

    def restore(self, endpoint: str, /) -> bool:
        self._check()
        return super().restore(endpoint)

    def isolation(self, endpoint: str, /) -> str | None:
        self._check()
        return super().isolation(endpoint)


@pytest.mark.parametrize("key", [USERS, PAY], ids=["with-breaker", "breaker-none"])
def test_an_isolation_seen_holds_while_the_storage_is_unreachable(driver: Driver, key: str) -> None:
    storage = _Unreachable()
    a = make(driver, breaker_storage=storage)
    b = make(driver, breaker_storage=storage)
    method, path = ("GET", "/v1/users/1") if key == USERS else ("POST", "/v1/payments")
    a.isolate(key, reason="maintenance")
    with pytest.raises(rc.CircuitOpenError):
        driver.request(b, method, path)  # b learns of it
    storage.down = True
    with pytest.raises(rc.CircuitOpenError, match="maintenance"):
        driver.request(b, method, path)  # and it holds


def test_an_unreachable_storage_isolates_here_and_warns(
    driver: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    storage = _Unreachable()
    storage.down = True
    transport = ScriptedTransport()
    client = make(driver, transport, breaker_storage=storage)
    with caplog.at_level(logging.WARNING, logger="resilient_client"):
        client.isolate(USERS, reason="maintenance")
    (record,) = [r for r in caplog.records if r.name == "resilient_client"]
    assert "isolated in this process only" in record.getMessage()
    with pytest.raises(rc.CircuitOpenError, match="maintenance"):
        driver.request(client, "GET", "/v1/users/1")
    assert client.health()[USERS].isolated == "maintenance"
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="resilient_client"):
        assert client.restore(USERS) is True
    assert "restored in this process only" in caplog.records[0].getMessage()
    storage.down = False
    assert driver.request(client, "GET", "/v1/users/1").status_code == 200


class _Opaque:
    """A third-party storage that keeps no isolations (only the BreakerStorage protocol)."""

    def __init__(self) -> None:
        self._inner = MemoryBreakerStorage()

    def exchange(self, request: Exchange, /) -> SharedView:
        return self._inner.exchange(request)

    async def aexchange(self, request: Exchange, /) -> SharedView:
        return self._inner.exchange(request)


def test_a_storage_without_isolations_isolates_locally_and_says_so_once(
    driver: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    storage = _Opaque()
    assert isinstance(storage, rct.BreakerStorage)
    transport = ScriptedTransport()
    a = make(driver, transport, breaker_storage=storage)
    b = make(driver, transport, breaker_storage=storage)
    with caplog.at_level(logging.WARNING, logger="resilient_client"):
        a.isolate(USERS, reason="maintenance")
        a.isolate(PAY, reason="maintenance")
    (record,) = [r for r in caplog.records if r.name == "resilient_client"]
    assert "keeps no isolations" in record.getMessage()
    with pytest.raises(rc.CircuitOpenError):
        driver.request(a, "GET", "/v1/users/1")
    assert driver.request(b, "GET", "/v1/users/1").status_code == 200  # local only
    assert a.restore(USERS) is True
