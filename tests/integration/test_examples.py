"""Every example in ``examples/`` runs against the embedded chaos upstream and says what
its docstring promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

PROMISES = {
    "quickstart.py": [
        "GET, two 503s then success                   -> 200  attempts=3",
        "charges recorded by the server: 1",
        "DeadlineExceeded after 0.5",
        "the server saw 5 attempts, 18 calls failed fast",
    ],
    "payments.py": [
        "charges the provider recorded: 1",
        "rc.WriteParked: entry",
        "(no Authorization: credentials are not kept)",
        "delivered 1, dead 0, pending 0",
        "the replay carried the same key: True",
    ],
    "llm_sdks.py": [
        "OpenAI: 'chaos chat answered attempt 3' after 3 attempts",
        "Anthropic: 'chaos messages answered attempt 3' after 3 attempts",
        "OpenAI down: InternalServerError 500, request id req_down-always-500_",
    ],
    "async_service.py": [
        "provider down:",
        "trigger:",
        "resolve:",
        ": resolved, ",
        '"name": "GET"',  # a span, exported to the console
        '"name": "resilient_client.retries"',  # a metric
    ],
}


def test_every_example_is_tested() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(PROMISES)


@pytest.mark.parametrize("name", sorted(PROMISES))
def test_the_example_runs_and_keeps_its_promises(name: str) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    said = result.stdout + result.stderr
    for promise in PROMISES[name]:
        assert promise in said, promise
