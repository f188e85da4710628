"""The official OpenAI and Anthropic SDKs over the resilient httpx2 client (issue 8).

Each SDK, sync and async, is pointed at the chaos upstream's vendor look-alikes
(``/vendor/{name}/openai/v1``, ``/vendor/{name}/anthropic``) with ``http_client=`` one of
``resilient_client.httpx2``'s clients. Our waits run on a :class:`FakeClock`; the SDKs'
own waits are real but tiny, because the upstream asks for ``retry-after-ms: 1`` on a 500
and both SDKs honour it before their backoff (0.5 s doubling up to 8 s otherwise).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest
from drivers import Driver, Responses
from otel_support import Otel, attrs

import resilient_client as rc
from resilient_client import httpx2 as rc2
from resilient_client.chaos import RunningServer
from resilient_client.testing import FakeClock

pytestmark = pytest.mark.integration

NO_BREAKER = rc.Policy(breaker=None)


class Sdk:
    """One vendor's SDK, sync or async, driven through one synchronous interface.

    ``make(name, ...)`` builds the SDK client over a new resilient httpx2 client with a
    fake clock (``clock``); ``text`` / ``raw`` make one call. The resilient clients and
    the event loop are ``driver``'s (an httpx2 :class:`Driver`).
    """

    def __init__(self, vendor: str, kind: str, url: str) -> None:
        self.vendor = vendor
        self.module: Any = openai if vendor == "openai" else anthropic
        self.url = url
        self.driver = Driver(kind, "httpx2")
        self.clock = FakeClock()

    @property
    def is_async(self) -> bool:
        return self.driver.is_async

    def base_url(self, name: str) -> str:
        # The OpenAI SDK's paths start after /v1, Anthropic's include it.
        suffix = "openai/v1" if self.vendor == "openai" else "anthropic"
        return f"{self.url}/vendor/{name}/{suffix}"

    def make(self, name: str, *, max_retries: int = 0, **resilient: Any) -> Any:
        resilient.setdefault("clock", self.clock)
        return self.sdk_class()(
            base_url=self.base_url(name),
            api_key="test-key",
            http_client=self.driver.client(**resilient),
            max_retries=max_retries,
        )

    def sdk_class(self) -> Any:
        if self.vendor == "openai":
            return openai.AsyncOpenAI if self.is_async else openai.OpenAI
        return anthropic.AsyncAnthropic if self.is_async else anthropic.Anthropic

    def _create(self, client: Any, *, raw: bool = False) -> Any:
        user = [{"role": "user", "content": "Say hello."}]
        if self.vendor == "openai":
            api = client.chat.completions
            api = api.with_raw_response if raw else api
            return api.create(model="gpt-chaos", messages=user)
        api = client.messages.with_raw_response if raw else client.messages
        return api.create(model="claude-chaos", max_tokens=16, messages=user)

    def text(self, client: Any) -> str:
        """Make one call; the reply's text, as the SDK parsed it."""
        reply = self.driver.run(self._create(client))
        if self.vendor == "openai":
            return str(reply.choices[0].message.content)
        return str(reply.content[0].text)

    def raw(self, client: Any) -> Any:
        """Make one call; the SDK's raw response's ``http_response`` (an httpx2.Response)."""
        return self.driver.run(self._create(client, raw=True)).http_response

    def close(self) -> None:
        self.driver.close()


@pytest.fixture(
    params=[
        ("openai", "sync"),
        ("openai", "async"),
        ("anthropic", "sync"),
        ("anthropic", "async"),
    ],
    ids=["openai-sync", "openai-async", "anthropic-sync", "anthropic-async"],
)
def sdk(request: pytest.FixtureRequest, upstream: RunningServer) -> Iterator[Sdk]:
    vendor, kind = request.param
    instance = Sdk(vendor, kind, upstream.url)
    yield instance
    instance.close()


# --- one retry layer, ours ----------------------------------------------------------------


def test_sdk_call_succeeds_after_our_three_attempts(sdk: Sdk, upstream: RunningServer) -> None:
    client = sdk.make("chat")

    assert sdk.text(client) == "chaos chat answered attempt 3"
    assert upstream.app.scenario("chat").attempts == 3
    # Our waits: the server's retry-after-ms (10 ms after the 429, 1 ms after the 500), but
    # never shorter than our own backoff (full jitter of 0.25 s, then of 0.5 s).
    first, second = sdk.clock.sleeps
    assert 0.01 <= first <= 0.25 and 0.001 <= second <= 0.5


def test_each_failed_attempt_parses_in_the_vendors_envelope(sdk: Sdk) -> None:
    responses = Responses()
    sdk.text(sdk.make("chat", observers=[responses]))

    assert [r.status_code for r in responses.seen] == [429, 500, 200]
    throttled, transient = (rc.parse_problem(r) for r in responses.seen[:2])
    # OpenAI's and Anthropic's envelopes both normalize to format "openai".
    assert (throttled.format, transient.format) == ("openai", "openai")
    assert throttled.category is rc.ErrorCategory.THROTTLED
    assert transient.category is rc.ErrorCategory.TRANSIENT
    assert (throttled.request_id, transient.request_id) == ("req_chat_1", "req_chat_2")
    assert throttled.retry_after == 0.01
    assert throttled.type == "rate_limit_error"
    assert transient.type == ("server_error" if sdk.vendor == "openai" else "api_error")


def test_every_attempt_carries_one_idempotency_key_and_correlation_id(
    sdk: Sdk, upstream: RunningServer
) -> None:
    sdk.text(sdk.make("chat"))

    sent = [r.headers for r in upstream.app.scenario("chat").requests]
    assert len(sent) == 3
    assert len({h["idempotency-key"] for h in sent}) == 1
    assert len({h["x-correlation-id"] for h in sent}) == 1
    assert sent[0]["idempotency-key"] and sent[0]["x-correlation-id"]
    # The SDK's own retry counter never moves: our retries happen beneath it.
    assert [h["x-stainless-retry-count"] for h in sent] == ["0", "0", "0"]


def test_resilience_info_is_reachable_through_the_sdks_raw_response(
    sdk: Sdk, upstream: RunningServer
) -> None:
    response = sdk.raw(sdk.make("chat"))

    info = response.extensions["resilience"]
    assert isinstance(response, httpx2.Response)
    assert info.attempts == 3
    assert info.retry_reasons == ("status_429", "status_500")
    assert info.request_id == "req_chat_3"
    wire = upstream.app.scenario("chat").requests[0].headers
    assert info.idempotency_key == wire["idempotency-key"]
    assert info.correlation_id == wire["x-correlation-id"]


def test_each_attempt_is_a_span_under_one_call_span(sdk: Sdk, otel: Otel) -> None:
    endpoint = f"POST /vendor/{{name}}/{sdk.vendor}/v1/**"
    client = sdk.make("chat", endpoints={endpoint: rc.Policy()}, observers=[otel.observer()])
    sdk.text(client)

    attempts = otel.attempt_spans()
    call = otel.call_span()
    attributes = [attrs(s) for s in attempts]
    assert [a["http.response.status_code"] for a in attributes] == [429, 500, 200]
    assert [a.get("http.request.resend_count") for a in attributes] == [None, 1, 2]
    assert all(s.parent is not None and s.parent.span_id == call.context.span_id for s in attempts)
    assert call.name == endpoint
    assert attrs(call)["resilient_client.attempts"] == 3


# --- two retry layers multiply ----------------------------------------------------------------


@pytest.mark.parametrize(("sdk_retries", "seen"), [(0, 3), (2, 9)])
def test_sdk_retries_multiply_ours(
    sdk: Sdk, upstream: RunningServer, sdk_retries: int, seen: int
) -> None:
    # The breaker is off so nothing but the two retry layers decides how many attempts.
    client = sdk.make("storm-always-500", max_retries=sdk_retries, policy=NO_BREAKER)

    with pytest.raises(sdk.module.InternalServerError):
        sdk.text(client)

    sent = [r.headers for r in upstream.app.scenario("storm-always-500").requests]
    assert len(sent) == seen
    # Each SDK retry is a new call for us: a new idempotency key, three attempts each.
    keys = [h["idempotency-key"] for h in sent]
    assert [keys.index(k) for k in keys] == [3 * (i // 3) for i in range(seen)]
    assert [h["x-stainless-retry-count"] for h in sent] == [str(i // 3) for i in range(seen)]


def test_a_breaker_cuts_the_multiplied_storm(sdk: Sdk, upstream: RunningServer) -> None:
    # A streak breaker: the default one (a failure rate once 5 s hold 100 calls) leaves a
    # storm of a few calls to the retry budget.
    breaker = rc.Breaker(window="consecutive", failure_threshold=5, reset_timeout=30.0)
    client = sdk.make("storm-always-500", max_retries=2, policy=rc.Policy(breaker=breaker))

    # 5 consecutive failures open the endpoint's breaker: the SDK's 2nd call stops there,
    # its 3rd is refused locally, and the SDK reports our CircuitOpenError as a
    # connection error.
    with pytest.raises(sdk.module.APIConnectionError) as caught:
        sdk.text(client)

    assert isinstance(caught.value.__cause__, rc2.CircuitOpenError)
    assert upstream.app.scenario("storm-always-500").attempts == 5


# --- why the httpx2 namespace exists ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_anthropic_sdk_rejects_an_httpx_client(kind: str) -> None:
    # Not the integration ``driver`` fixture: its httpx2 flavours are what the SDK takes.
    httpx_driver = Driver(kind)
    try:
        http = httpx_driver.client()
        sdk_class = anthropic.AsyncAnthropic if httpx_driver.is_async else anthropic.Anthropic
        with pytest.raises(TypeError, match="httpx2"):
            sdk_class(api_key="test-key", http_client=http)
    finally:
        httpx_driver.close()


def test_openai_sdk_still_takes_an_httpx_client_through_its_legacy_path(
    upstream: RunningServer,
) -> None:
    # openai 3.x accepts an httpx.Client while httpx is imported (anthropic 2.x does not);
    # if this starts failing, the README's "use resilient_client.httpx2" becomes a must.
    with rc.ResilientClient(clock=FakeClock()) as http:
        client = openai.OpenAI(
            base_url=f"{upstream.url}/vendor/legacy/openai/v1",
            api_key="test-key",
            http_client=http,  # type: ignore[arg-type]
            max_retries=0,
        )
        reply = client.chat.completions.create(
            model="gpt-chaos", messages=[{"role": "user", "content": "Say hello."}]
        )

    assert reply.choices[0].message.content == "chaos legacy answered attempt 3"
    assert upstream.app.scenario("legacy").attempts == 3


# --- the vendor endpoints themselves ----------------------------------------------------------


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
def test_script_header_overrides_the_name(upstream: RunningServer, vendor: str) -> None:
    path = "v1/chat/completions" if vendor == "openai" else "v1/messages"
    url = f"{upstream.url}/vendor/chat/{vendor}/{path}"
    with httpx.Client() as plain:
        answers = [
            plain.post(url, json={}, headers={"x-chaos-script": "always-429"}) for _ in range(3)
        ]

    assert [a.status_code for a in answers] == [429, 429, 429]
    assert answers[0].headers["retry-after-ms"] == "10"
    assert answers[0].headers["retry-after"] == "1"
    request_id_header = "x-request-id" if vendor == "openai" else "request-id"
    assert answers[2].headers[request_id_header] == "req_chat_3"


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("POST", "/vendor/x/openai/v1/embeddings", {}, 404),
        ("POST", "/vendor/x/mistral/v1/chat/completions", {}, 404),
        ("POST", "/vendor/x", {}, 404),
        ("GET", "/vendor/x/anthropic/v1/messages", {}, 405),
        ("POST", "/vendor/x/anthropic/v1/messages", {"x-chaos-script": "sometimes"}, 400),
    ],
)
def test_vendor_endpoints_refuse_what_they_do_not_serve(
    upstream: RunningServer, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    with httpx.Client() as plain:
        answer = plain.request(method, upstream.url + path, headers=headers, json={})

    assert answer.status_code == status
