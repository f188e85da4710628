"""``configure_telemetry``'s exporters: OTLP with a bounded exit, the console, and none.

Exit times are measured on real child processes: interpreter exit is where the SDK flushes,
and where a collector that is down used to hold the process for 14 s.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import resilient_client
from resilient_client.chaos import RunningServer
from resilient_client.telemetry import configure_telemetry

pytestmark = pytest.mark.integration

# The tree the tests import, so the child runs the same code.
ROOT = Path(resilient_client.__file__).resolve().parents[1]

# From the end of the child's script to its exit. Generous for two shared noisy cores:
# measured 2 s (closed port: two exports of about 1 s, one wait between two connects each)
# and 4 s (silent collector: two exports that each time out after 2 s), against 13 s and
# 20 s with the exporter's own defaults.
CLOSED_PORT_EXIT = 5.0
SILENT_COLLECTOR_EXIT = 7.0

EXPORTING_CHILD = """
import time
from opentelemetry import metrics, trace
from resilient_client.telemetry import configure_telemetry

configure_telemetry("checkout", otlp_endpoint={endpoint!r})
with trace.get_tracer("app").start_as_current_span("charge"):
    metrics.get_meter("app").create_counter("charges").add(1)
print(time.time())  # the script ends; what follows is interpreter exit
"""

CALLING_CHILD = """
import resilient_client as rc
from resilient_client.telemetry import configure_telemetry

configure_telemetry("checkout", exporter={exporter!r})
policy = rc.Policy(retry=rc.Retry(max_attempts=2, backoff=rc.Backoff(initial=0.0, max=0.0)))
with rc.ResilientClient(
    base_url={upstream!r}, policy=policy, endpoints={{"GET /flaky/{{name}}": rc.Policy()}}
) as client:
    assert client.get("/flaky/console?fail=1&status=503").status_code == 200
print("done")
"""


def run_child(script: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def exit_time(script: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``script``; return the process and the seconds its exit took after the
    script's last line printed the wall-clock time."""
    done = run_child(script)
    exited = time.time()
    assert done.returncode == 0, done.stderr
    return done, exited - float(done.stdout.split()[-1])


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent_collector() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


def test_a_process_exits_within_seconds_when_no_collector_listens(closed_port: int) -> None:
    done, elapsed = exit_time(EXPORTING_CHILD.format(endpoint=f"http://127.0.0.1:{closed_port}"))

    assert "Connection refused" in done.stderr  # it did try, and gave up
    assert elapsed < CLOSED_PORT_EXIT


def test_a_process_exits_within_seconds_when_the_collector_never_answers(
    silent_collector: int,
) -> None:
    done, elapsed = exit_time(
        EXPORTING_CHILD.format(endpoint=f"http://127.0.0.1:{silent_collector}")
    )

    assert "Failed to export spans batch" in done.stderr
    assert elapsed < SILENT_COLLECTOR_EXIT


def test_the_console_exporter_prints_the_calls_spans_and_metrics(upstream: RunningServer) -> None:
    done = run_child(CALLING_CHILD.format(exporter="console", upstream=upstream.url))

    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count('"name": "GET /flaky/{name}"') == 3  # the call and its two attempts
    assert '"service.name": "checkout"' in out
    assert "http.client.request.duration" in out  # metrics, printed at exit
    assert "resilient_client.retries" in out


def test_the_none_exporter_records_and_prints_nothing(upstream: RunningServer) -> None:
    done = run_child(CALLING_CHILD.format(exporter="none", upstream=upstream.url))

    assert done.returncode == 0, done.stderr
    assert done.stdout == "done\n"
    assert done.stderr == ""


def test_the_none_exporter_still_gives_working_providers() -> None:
    providers = configure_telemetry("svc", exporter="none", set_global=False)
    try:
        tracer = providers.tracer_provider.get_tracer("app")
        with tracer.start_as_current_span("work") as span:
            assert not span.is_recording()
            assert span.get_span_context().is_valid  # still propagates a trace
        providers.meter_provider.get_meter("app").create_counter("n").add(1)
    finally:
        providers.shutdown()


def test_console_spans_go_to_the_current_standard_output(
    capsys: pytest.CaptureFixture[str],
) -> None:
    providers = configure_telemetry("svc", exporter="console", set_global=False)
    try:
        with providers.tracer_provider.get_tracer("app").start_as_current_span("printed"):
            pass
    finally:
        providers.shutdown()
    assert '"name": "printed"' in capsys.readouterr().out


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"exporter": "jaeger"}, "exporter must be one of 'otlp', 'console', 'none'"),
        ({"exporter": "console", "otlp_endpoint": "http://c:4318"}, "otlp_endpoint"),
        ({"exporter": "none", "export_timeout": 1.0}, "export_timeout"),
        ({"export_timeout": 0}, "export_timeout must be a positive"),
    ],
)
def test_arguments_that_cannot_apply_are_refused(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        configure_telemetry("svc", set_global=False, **kwargs)  # type: ignore[arg-type]
