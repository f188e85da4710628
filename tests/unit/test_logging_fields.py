"""Every record the SDK logs about a call carries ``endpoint``, ``correlation_id``,
``trace_id`` and ``span_id``; values servers or callers chose cannot forge a line."""

from __future__ import annotations

import contextlib
import io
import logging
import re

import httpx
import pytest
from drivers import Driver
from otel_support import Otel

import resilient_client as rc
from resilient_client._logging import CALL_FIELDS, get_logger, logger, trace_ids
from resilient_client.chaos import RunningServer
from resilient_client.testing import FakeClock, ScriptedTransport

FAST = rc.Policy(retry=rc.Retry(max_attempts=3, backoff=rc.Backoff(initial=0.0, max=0.0)))
ENDPOINTS = {"GET /flaky/{name}": rc.Policy(), "GET /status/{name}/{code}": rc.Policy()}
# The README's example (its "Log record fields" section), less the time and level.
README_FORMAT = "[%(trace_id)s/%(span_id)s] %(endpoint)s %(correlation_id)s %(name)s: %(message)s"


def sdk_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.split(".")[0] == "resilient_client"]


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/flaky/logs?fail=1&status=503", "GET /flaky/{name}"),  # recovers after a retry
        ("/status/logs/503", "GET /status/{name}/{code}"),  # fails after three attempts
    ],
)
def test_every_record_about_a_call_names_its_endpoint_correlation_and_trace(
    driver: Driver,
    upstream: RunningServer,
    otel: Otel,
    caplog: pytest.LogCaptureFixture,
    path: str,
    endpoint: str,
) -> None:
    client = driver.client(
        base_url=upstream.url,
        clock=FakeClock(),
        policy=FAST,
        endpoints=ENDPOINTS,
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
    )
    tracer = otel.tracer_provider.get_tracer("app")
    caplog.set_level(logging.DEBUG, logger="resilient_client")
    with rc.correlation_id("order-7"), tracer.start_as_current_span("handler") as handler:
        driver.request(client, "GET", path)
    trace_id, _ = trace_ids(handler)

    records = sdk_records(caplog)
    assert records, "the call logged nothing at DEBUG"
    span_ids = {format(s.context.span_id, "016x") for s in otel.exporter.get_finished_spans()}
    for record in records:
        assert record.endpoint == endpoint
        assert record.correlation_id == "order-7"
        assert record.trace_id == trace_id
        assert re.fullmatch(r"[0-9a-f]{16}", record.span_id)
        assert record.span_id in span_ids  # the handler's or one of the call's own


def test_outside_any_span_the_trace_fields_are_none(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="resilient_client")
    logger.info("breaker storage reachable again")
    (record,) = sdk_records(caplog)
    assert [getattr(record, name) for name in CALL_FIELDS] == [None, None, None, None]


def test_ids_are_w3c_lowercase_hex(otel: Otel, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="resilient_client")
    with otel.tracer_provider.get_tracer("app").start_as_current_span("s") as span:
        logger.info("inside", extra={"endpoint": "GET /a", "correlation_id": "c"})
    (record,) = sdk_records(caplog)
    context = span.get_span_context()
    assert record.trace_id == f"{context.trace_id:032x}"
    assert record.span_id == f"{context.span_id:016x}"


def test_ids_given_by_the_caller_of_the_logger_are_kept(caplog: pytest.LogCaptureFixture) -> None:
    # A record written after the call's span ended names that span, not the current one.
    caplog.set_level(logging.INFO, logger="resilient_client")
    logger.info("done", extra={"trace_id": "a" * 32, "span_id": "b" * 16})
    (record,) = sdk_records(caplog)
    assert (record.trace_id, record.span_id) == ("a" * 32, "b" * 16)


CHILD_LOGGERS = [
    "resilient_client.breaker",
    "resilient_client.outbox",
    "resilient_client.telemetry",
    "resilient_client.incidents",
]


@pytest.mark.parametrize("name", CHILD_LOGGERS)
def test_child_loggers_carry_the_fields_too(name: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=name)
    logging.getLogger(name).warning("breaker for %s opened", "GET /a")
    (record,) = sdk_records(caplog)
    assert all(hasattr(record, field) for field in CALL_FIELDS)


@pytest.mark.parametrize("name", CHILD_LOGGERS)
def test_the_readme_format_formats_every_sdk_logger(name: str) -> None:
    # A formatter naming a missing field drops the record ("--- Logging error ---").
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(README_FORMAT))
    found = logging.getLogger(name)
    found.addHandler(handler)
    try:
        found.error("incident %s %s", "i-1", "trigger")
    finally:
        found.removeHandler(handler)
    assert stream.getvalue() == f"[None/None] None None {name}: incident i-1 trigger\n"


def test_a_breaker_transition_record_names_its_endpoint(
    driver: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    # The line an on-call engineer filters for: a JSON handler finds it by its endpoint.
    policy = rc.Policy(retry=None, breaker=rc.Breaker(window="consecutive", failure_threshold=2))
    client = driver.client(
        base_url="https://api.test",
        transport=ScriptedTransport([500, 500]),
        clock=FakeClock(),
        policy=policy,
    )
    caplog.set_level(logging.INFO, logger="resilient_client.breaker")
    for _ in range(2):
        driver.request(client, "GET", "/x")
    (record,) = [r for r in sdk_records(caplog) if r.name == "resilient_client.breaker"]
    assert "closed -> open" in record.getMessage()
    assert record.endpoint == "* api.test"


def test_a_new_sdk_logger_gets_the_fields(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="resilient_client.something_new")
    get_logger("resilient_client.something_new").warning("x")
    (record,) = sdk_records(caplog)
    assert record.trace_id is None and record.endpoint is None
    with pytest.raises(ValueError, match="not an SDK logger"):
        get_logger("httpx")


def test_untrusted_values_cannot_forge_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="resilient_client")
    forged = "x\r\n2024-01-01 INFO payment accepted\u202e"
    logger.warning(
        "call to %s failed: %s",
        "GET /a",
        forged,
        extra={"code": forged, "correlation_id": forged, "request_id": forged, "endpoint": "* h"},
    )
    (record,) = sdk_records(caplog)
    escaped = "x\\r\\n2024-01-01 INFO payment accepted\\u202e"
    assert record.code == record.correlation_id == record.request_id == escaped
    assert record.getMessage() == f"call to GET /a failed: {escaped}"
    assert "\n" not in caplog.text.strip()


def test_a_server_code_with_a_newline_reaches_the_log_escaped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Through the whole path: a 4xx whose body carries a forged code.
    def answer(request: httpx.Request) -> httpx.Response:
        body = {"error": {"code": "bad\nINFO forged", "message": "no"}}
        return httpx.Response(400, json=body)

    caplog.set_level(logging.DEBUG, logger="resilient_client")
    transport = httpx.MockTransport(answer)
    with (
        rc.ResilientClient(transport=transport, clock=FakeClock()) as client,
        contextlib.suppress(httpx.HTTPError),  # raised or not: the log is the point
    ):
        client.get("https://api.test/a").read()
    for record in sdk_records(caplog):
        assert "\n" not in record.getMessage()
        assert "\n" not in str(getattr(record, "code", "") or "")


def test_server_prose_read_as_the_problem_code_is_masked_in_logs_and_spans(
    otel: Otel, caplog: pytest.LogCaptureFixture
) -> None:
    # An ad-hoc API's {"error": "<message>"} is read as the problem's code: the record's
    # code field and the span's problem code show it as the ApiError message does.
    body = {"error": "User jane.doe@example.test not found"}
    client = rc.ResilientClient(
        transport=ScriptedTransport([httpx.Response(404, json=body)]),
        clock=FakeClock(),
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
    )
    caplog.set_level(logging.DEBUG, logger="resilient_client")
    assert client.get("https://api.example.com/v1/users/7").status_code == 404
    logged = [record.code for record in sdk_records(caplog) if record.code is not None]
    spanned = [
        span.attributes.get("resilient_client.problem.code") for span in otel.attempt_spans()
    ]
    assert logged and spanned
    assert set(logged + spanned) == {"User [email] not found"}
