"""The public surface: curated, sorted, typed; the exception tree; README examples run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import resilient_client as rc
import resilient_client.testing

ROOT = Path(__file__).resolve().parents[2]


def test_all_is_sorted_and_complete() -> None:
    assert rc.__all__ == sorted(rc.__all__, key=lambda name: (name[0].islower(), name))
    # ("@": names pytest's assertion rewriting leaves in a module it rewrote.)
    public = {name for name in vars(rc) if not name.startswith(("_", "@"))}
    modules = {
        "cli",
        "chaos",
        "httpx2",
        "incidents",
        "outbox",
        "problems",
        "pytest_plugin",
        "telemetry",
        "testing",
        "typing",
    }
    assert public - modules - {"annotations"} == set(rc.__all__)


def test_no_tenacity_or_pybreaker_type_in_the_public_surface() -> None:
    for name in rc.__all__:
        module = getattr(getattr(rc, name), "__module__", "") or ""
        assert not module.startswith(("tenacity", "pybreaker")), name


@pytest.mark.parametrize(
    ("exc", "base"),
    [
        (rc.CircuitOpenError, httpx.TransportError),
        (rc.BulkheadFull, httpx.TransportError),
        (rc.LoadShedError, httpx.TransportError),
        (rc.DeadlineExceeded, httpx.TimeoutException),
        (rc.AttemptTimeout, httpx.TimeoutException),
        (rc.ApiError, httpx.HTTPStatusError),
        (rc.ServiceUnavailableError, rc.ServerError),
    ],
)
def test_every_exception_is_an_httpx_error(exc: type[Exception], base: type[Exception]) -> None:
    assert issubclass(exc, base)
    assert issubclass(exc, httpx.HTTPError)
    assert issubclass(exc, rc.ResilienceError)


def _readme_blocks(language: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_ci_runs_exactly_the_readme_test_command() -> None:
    commands = [block.strip() for block in _readme_blocks("bash")]
    assert len(commands) >= 2
    assert "pytest" in commands[1]
    assert "resilient-client demo" in commands[0]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "README.md" in ci
    # Run .ci/run's own selection of the command (its `test_command=$(awk ...)` line) on
    # the README, and check that it picks the README's second command and that CI runs it.
    (selection,) = re.findall(r"^test_command=\$\(.*\)$", ci, flags=re.M)
    assert re.search(r'^bash -c "\$test_command"$', ci, flags=re.M)
    selected = subprocess.run(
        ["bash", "-c", f'{selection}\nprintf %s "$test_command"'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert selected == commands[1]


def test_readme_observer_example_runs() -> None:
    block = next(b for b in _readme_blocks("python") if "class RetryCounter" in b)
    namespace: dict[str, object] = {}
    exec(compile(block, "README.md", "exec"), namespace)
    client = namespace["client"]
    counter = namespace["counter"]
    transport = httpx.MockTransport(
        lambda request: httpx.Response(503 if counter.retries["* api.example.com"] == 0 else 200)
    )  # type: ignore[attr-defined]
    client._transport._inner = transport  # type: ignore[attr-defined]
    with rc.testing.no_waits():  # the retry's backoff is recorded, not slept
        assert client.get("/x").status_code == 200  # type: ignore[attr-defined]
    assert counter.retries == {"* api.example.com": 1}  # type: ignore[attr-defined]


def test_readme_testing_example_runs() -> None:
    block = next(b for b in _readme_blocks("python") if "ScriptedTransport" in b)
    exec(compile("import httpx\nimport resilient_client as rc\n" + block, "README.md", "exec"), {})


def test_readme_toml_examples_load() -> None:
    import tomllib

    blocks = _readme_blocks("toml")
    for other in blocks:  # every example the README shows is a valid configuration
        rc.load_config(tomllib.loads(other))
    block = next(b for b in blocks if "[policy.retry]" in b)
    kwargs = rc.load_config(tomllib.loads(block))
    client = rc.ResilientClient(**kwargs)
    assert kwargs["policy"].retry.max_attempts == 4
    assert kwargs["endpoints"]["POST /v1/payments"].retry.max_attempts == 5
    client.close()


def test_cli_has_a_demo_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "resilient_client.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "demo" in result.stdout


def test_importing_the_package_does_not_import_httpx2() -> None:
    code = "import sys, resilient_client; assert 'httpx2' not in sys.modules, 'httpx2 imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_httpx2_namespace_mirrors_the_top_level_over_httpx2() -> None:
    import httpx2

    from resilient_client import httpx2 as rc2

    assert issubclass(rc2.ResilientClient, httpx2.Client)
    assert issubclass(rc2.AsyncResilientClient, httpx2.AsyncClient)
    assert issubclass(rc2.ResilientTransport, httpx2.BaseTransport)
    assert issubclass(rc2.AsyncResilientTransport, httpx2.AsyncBaseTransport)
    for name in [
        "CircuitOpenError",
        "BulkheadFull",
        "LoadShedError",
        "DeadlineExceeded",
        "ApiError",
    ]:
        ours, theirs = getattr(rc, name), getattr(rc2, name)
        assert issubclass(theirs, httpx2.HTTPError) and not issubclass(theirs, httpx.HTTPError)
        assert issubclass(theirs, rc.ResilienceError)
        assert theirs.__mro__[1] is ours.__mro__[1]  # one behaviour mixin, two trees
    assert rc2.api_error_class(503) is rc2.ServiceUnavailableError  # type: ignore[attr-defined]
