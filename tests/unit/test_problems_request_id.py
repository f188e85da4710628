"""The server's request id: one lookup, so ``Problem.request_id``,
``ResilienceInfo.request_id`` and telemetry's ``resilient_client.request_id`` agree."""

from __future__ import annotations

import httpx
import pytest
from drivers import Driver
from otel_support import Otel, attrs

import resilient_client as rc
from resilient_client.problems import parse_problem, request_id_from_headers
from resilient_client.problems._headers import response_request_id
from resilient_client.testing import FakeClock, ScriptedTransport

# A repeated header whose first copy is not a usable id (a space in it): Headers.get would
# join the copies with ", ", and a first-copy-only reading would skip to the next name.
REPEATED = [("request-id", "from-second-name"), ("x-request-id", "a b"), ("x-request-id", "r-2")]


def test_the_first_listed_name_wins_wherever_it_stands() -> None:
    headers = httpx.Headers([("request-id", "second"), ("X-Request-ID", "first")])

    assert response_request_id(headers) == "first"
    assert request_id_from_headers(headers) == "first"


def test_a_repeated_header_gives_its_first_well_formed_copy() -> None:
    headers = httpx.Headers(REPEATED)

    assert response_request_id(headers) == "r-2"
    assert request_id_from_headers(headers) == "r-2"
    assert parse_problem(httpx.Response(500, headers=headers)).request_id == "r-2"


def test_custom_names_are_ranked_case_insensitively_the_same_way() -> None:
    headers = httpx.Headers(
        [("x-request-id", "r-1"), ("X-Trace-Token", "bad\x7f"), ("x-trace-token", "t-2")]
    )

    assert response_request_id(headers, names=("X-Trace-Token", "x-request-id")) == "t-2"
    assert response_request_id(headers, names=("x-request-id", "x-trace-token")) == "r-1"
    assert response_request_id(headers, names=("x-other",)) is None
    assert response_request_id(headers, names=("x-trace-✓", "x-request-id")) == "r-1"


def test_a_mapping_of_first_values_still_works() -> None:
    assert request_id_from_headers({"request-id": "r", "x-amz-request-id": "s"}) == "r"
    assert request_id_from_headers({"x-request-id": "a b"}) is None


def test_the_problem_the_info_and_the_spans_report_the_same_request_id(
    driver: Driver, otel: Otel
) -> None:
    transport = ScriptedTransport([httpx.Response(404, headers=REPEATED)])
    client = driver.client(
        base_url="https://api.test",
        transport=transport,
        observers=[otel.observer()],
        clock=FakeClock(),
    )

    response = driver.request(client, "GET", "/x")

    info: rc.ResilienceInfo = response.extensions["resilience"]
    assert info.request_id == "r-2"
    assert parse_problem(response).request_id == "r-2"
    spans = otel.spans()
    assert len(spans) == 2  # the call's and its attempt's: the loop below checks both
    for span in spans:
        assert attrs(span)["resilient_client.request_id"] == "r-2"


@pytest.mark.parametrize("names", [["X-Trace-Token"], ["x-trace-token", "x-request-id"]])
def test_configured_request_id_headers_read_a_repeated_header_the_same_way(
    driver: Driver, otel: Otel, names: list[str]
) -> None:
    answer = httpx.Response(200, headers=[("x-trace-token", "a b"), ("x-trace-token", "t-2")])
    client = driver.client(
        base_url="https://api.test",
        transport=ScriptedTransport([answer]),
        observers=[otel.observer(request_id_headers=names)],
        clock=FakeClock(),
    )

    driver.request(client, "GET", "/x")

    spans = otel.spans()
    assert len(spans) == 2  # the call's and its attempt's: the loop below checks both
    for span in spans:
        assert attrs(span)["resilient_client.request_id"] == "t-2"
