"""``scripted_transport``: the scripted inner transport, for httpx and for httpx2."""

from __future__ import annotations

from typing import Any

import httpx
import httpx2
import pytest

import resilient_client as rc
from resilient_client import httpx2 as rc2
from resilient_client.testing import ScriptedTransport, no_waits, scripted_transport

URL = "http://api.test/v1/items"


@pytest.mark.parametrize(
    ("library", "lib", "ns"), [("httpx", httpx, rc), ("httpx2", httpx2, rc2)], ids=str
)
def test_a_scripted_transport_answers_its_script_under_the_resilient_client(
    library: Any, lib: Any, ns: Any
) -> None:
    transport = scripted_transport(
        [lib.ConnectError("refused"), 503, lib.Response(201)], library=library
    )
    assert isinstance(transport, lib.MockTransport)
    client = ns.ResilientClient(transport=transport, telemetry=False)
    with no_waits() as waits:
        response = client.get(URL, headers={"X-Trace": "t1"})
    assert isinstance(response, lib.Response) and response.status_code == 201
    assert [type(r) for r in transport.requests] == [lib.Request] * 3
    assert all(r.headers["X-Trace"] == "t1" for r in transport.requests)
    assert len(waits.delays) == 2


def test_the_httpx_flavour_is_the_scripted_transport_class() -> None:
    assert type(scripted_transport([200])) is ScriptedTransport


def test_an_httpx2_script_error_gets_the_request_it_failed() -> None:
    transport = scripted_transport([httpx2.ReadTimeout("slow")], library="httpx2")
    with httpx2.Client(transport=transport) as client, pytest.raises(httpx2.ReadTimeout) as info:
        client.get(URL)
    assert info.value.request.url == URL


def test_an_unknown_library_is_refused() -> None:
    with pytest.raises(ValueError, match="library"):
        scripted_transport([200], library="requests")  # type: ignore[arg-type]
