"""The README's first command runs this demo: it must keep working and keep its promises."""

from __future__ import annotations

import pytest

from resilient_client._demo import main

pytestmark = pytest.mark.integration


def test_the_quickstart_demo_rides_through_the_upstreams_failures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main() == 0
    out = capsys.readouterr().out
    assert "two 503s then success                     -> 200  attempts=3" in out
    assert "charges recorded by the server: 1" in out
    assert "DeadlineExceeded after 0.5" in out
    assert "upstream saw 5 attempts, 18 calls failed fast" in out
    assert out.rstrip().endswith("Done.")
