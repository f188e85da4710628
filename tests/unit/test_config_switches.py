"""TOML and YAML switch a strategy off with ``false`` or ``"off"``, as ``None`` does in
Python; an empty table still means the defaults."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import resilient_client as rc

# Every Policy strategy that is on by default; the others (bulkhead, throttle) are off
# unless given, and are covered by switching them off again below.
ON_BY_DEFAULT = ["retry", "idempotency", "breaker", "budget"]


@pytest.mark.parametrize("strategy", ON_BY_DEFAULT)
@pytest.mark.parametrize("off", ["false", '"off"', '"OFF"'])
def test_toml_switches_a_strategy_off_for_an_endpoint(
    tmp_path: Path, strategy: str, off: str
) -> None:
    path = tmp_path / "api.toml"
    path.write_text(f'[endpoints."POST /v1/payments"]\n{strategy} = {off}\n')

    kwargs = rc.load_config(path)

    assert getattr(kwargs["endpoints"]["POST /v1/payments"], strategy) is None
    with rc.ResilientClient(**kwargs) as client:
        request = client.build_request("POST", "https://api.test/v1/payments")
        assert getattr(client.pipeline.endpoint_for(request).policy, strategy) is None


@pytest.mark.parametrize("strategy", ["bulkhead", "throttle"])
def test_a_strategy_the_default_turned_on_is_switched_off_again(strategy: str) -> None:
    settings = {"bulkhead": {"max_concurrent": 4}, "throttle": {"k": 2.0}}
    kwargs = rc.load_config(
        {"policy": {strategy: settings[strategy]}, "endpoints": {"GET /health": {strategy: False}}}
    )
    assert getattr(kwargs["policy"], strategy) is not None
    assert getattr(kwargs.effective()["GET /health"], strategy) is None


@pytest.mark.parametrize("off", ["off", "false", "'off'"])
def test_yaml_switches_a_strategy_off(tmp_path: Path, off: str) -> None:
    # Unquoted "off" is YAML 1.1's false; quoted it is the string: both mean off.
    path = tmp_path / "api.yaml"
    path.write_text(f"policy:\n  retry: {off}\n  breaker: {off}\n")

    policy = rc.load_config(path)["policy"]

    assert policy.retry is None and policy.breaker is None


def test_an_empty_table_means_the_defaults_not_off(tmp_path: Path) -> None:
    path = tmp_path / "api.toml"
    path.write_text("[policy]\nretry = {}\n")
    assert rc.load_config(path)["policy"].retry == rc.Retry()


def test_a_timeout_switched_off_means_no_limit() -> None:
    timeouts = rc.load_config({"policy": {"timeouts": {"total": "off", "read": False}}})[
        "policy"
    ].timeouts
    assert timeouts.total is None and timeouts.read is None
    assert timeouts.connect == rc.Timeouts().connect


def test_an_optional_setting_inside_a_strategy_switches_off_too() -> None:
    breaker = rc.load_config(
        {"policy": {"breaker": {"failure_threshold": 3, "slow_call_duration": "off"}}}
    )["policy"].breaker
    assert breaker is not None and breaker.slow_call_duration is None
    assert breaker.failure_threshold == 3


def test_a_boolean_setting_keeps_false_as_false() -> None:
    retry = rc.load_config({"policy": {"retry": {"respect_retry_after": False}}})["policy"].retry
    assert retry is not None and retry.respect_retry_after is False


def test_a_strategy_that_cannot_be_off_says_so(tmp_path: Path) -> None:
    path = tmp_path / "api.toml"
    path.write_text("[policy]\ntimeouts = false\n")
    with pytest.raises(ValueError, match=r"policy\.timeouts: .*cannot be switched off") as raised:
        rc.load_config(path)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize("off", ["false", '"off"'])
def test_toml_switches_the_correlation_header_off(tmp_path: Path, off: str) -> None:
    path = tmp_path / "api.toml"
    path.write_text(f"correlation_header = {off}\n")
    kwargs = rc.load_config(path)
    assert kwargs["correlation_header"] is None

    seen: list[httpx.Headers] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(200)

    with rc.ResilientClient(**kwargs, transport=httpx.MockTransport(answer)) as client:
        client.get("https://api.test/ping")
    assert "x-correlation-id" not in seen[0]
