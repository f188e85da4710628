"""The ``resilient-client`` command line (also ``python -m resilient_client``).

Commands: ``demo``, ``chaos``, ``check``, ``probe``, ``incidents list|show``, ``report``,
``outbox list|show|replay|drop``. argparse reads the arguments; rich lays out tables with
colour on a terminal (the ``cli`` extra); without a terminal, or without rich, every
command prints plain aligned lines that a log or ``grep`` reads as well. Exit statuses
are stated in each command's help.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import __version__

__all__ = ["main"]

INCIDENT_STORE_VARIABLE = "RESILIENT_CLIENT_INCIDENTS"
DEFAULT_INCIDENT_STORE = "sqlite:///incidents.db"
_PHASES = ("connect", "read", "write", "pool", "attempt")


# -- output ---------------------------------------------------------------------------


def _console() -> Any:
    """A rich console when stdout is a terminal and rich is installed, else ``None``."""
    try:
        from rich.console import Console
    except ImportError:
        return None
    console = Console(highlight=False)
    return console if console.is_terminal else None


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], title: str = "") -> None:
    """Rows under headers: a rich table on a terminal, aligned plain columns otherwise."""
    console = _console()
    if console is not None:
        from rich.table import Table

        table = Table(title=title or None, title_justify="left")
        for header in headers:
            table.add_column(header, overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _error(command: str, message: object) -> None:
    print(f"resilient-client {command}: {message}", file=sys.stderr)


# -- configuration files ----------------------------------------------------------------


class Probe(BaseModel):
    """One ``[[probes]]`` table: a synthetic check through the full pipeline."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    url: str = Field(min_length=1)
    method: str = "GET"
    expect: tuple[int, ...] | None = None  # statuses that pass; None: any 2xx

    def passes(self, status: int) -> bool:
        return status in self.expect if self.expect else 200 <= status < 300


def _load(path: str) -> tuple[Any, list[Probe]]:
    """The client configuration in ``path`` and its probes; ``ValueError`` naming the
    file for anything invalid, ``FileNotFoundError`` for a missing file."""
    from ._config import load_config

    with warnings.catch_warnings():  # they are in config.warnings, printed by the caller
        warnings.simplefilter("ignore")
        config = load_config(path)  # reads TOML or YAML, explains every error in one line
    probes = []
    for index, table in enumerate(config.probes):
        try:
            probes.append(Probe.model_validate(table))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ValueError(f"{path}: probes[{index}].{where}: {first['msg']}") from exc
    return config, probes


def _timeout_warnings(config: Any) -> list[str]:
    """Timeouts that contradict the deadline of the policy they end up in; an endpoint's
    only when its own table made the contradiction (not when it inherited it)."""
    found = []
    default: dict[str, tuple[float, float]] = {}
    for key, policy in config.effective().items():
        timeouts = policy.timeouts
        for phase in _PHASES:
            pair = (getattr(timeouts, phase), timeouts.total)
            if pair[0] is None or pair[1] is None or pair[0] <= pair[1]:
                continue
            if key == "default":
                default[phase] = pair
            elif default.get(phase) == pair:
                continue
            where = "the default policy" if key == "default" else f"endpoint {key!r}"
            found.append(
                f"{where}: timeouts.{phase} = {pair[0]:g} s exceeds timeouts.total = "
                f"{pair[1]:g} s, so it can never apply (the deadline cuts it first)"
            )
    return found


def _request(client: Any, target: str) -> httpx.Request:
    """``"URL"`` or ``"METHOD URL"`` as a request the client would send (not sent)."""
    method, _, url = target.strip().partition(" ")
    if not url:
        method, url = "GET", method
    request: httpx.Request = client.build_request(method.upper(), url.strip())
    return request


# -- commands -----------------------------------------------------------------------------


def _loaded(command: str, path: str, *, failure: int) -> tuple[Any, list[Probe]] | int:
    """:func:`_load`, or the exit status ``failure`` once the error is printed."""
    try:
        return _load(path)
    except (ValueError, OSError) as exc:
        _error(command, exc)
        return failure


def _client(command: str, config: Any) -> Any:
    """The client ``config`` builds, or ``None`` once why it cannot is printed: a file
    may load and still be refused by the client (a base_url that is no URL, a header
    value that is no string, a CA bundle that is not there)."""
    from ._client import ResilientClient

    try:
        return ResilientClient(**config)
    except (ValueError, TypeError, OSError, ImportError, httpx.InvalidURL) as exc:
        _error(command, f"{config.origin}: {exc}")
        return None


def _check(args: argparse.Namespace) -> int:
    with warnings.catch_warnings():  # each is printed once, below, as a "warning:" line
        warnings.simplefilter("ignore")
        return _checked(args)


def _checked(args: argparse.Namespace) -> int:
    loaded = _loaded("check", args.config, failure=1)
    if isinstance(loaded, int):
        return loaded
    config, probes = loaded
    client = _client("check", config)  # built, never used to send
    if client is None:
        return 1
    print(config)  # its effective policies, and its warnings about keys that never match
    found = _timeout_warnings(config)
    for text in found:
        print(f"warning: {text}")
    if probes:
        print(f"probes: {', '.join(p.name for p in probes)}")
    with client:
        try:
            for target in args.urls:
                request = _request(client, target)
                key = client.pipeline.endpoints.match(request).key
                note = "  (no configured key: the host's default policy)" * key.startswith("*")
                print(f"{request.method} {request.url} -> {key}{note}")
        except (ValueError, TypeError, httpx.InvalidURL) as exc:
            _error("check", exc)
            return 1
    warned = bool(found or config.warnings)
    return 2 if args.strict and warned else 0


def _probe(args: argparse.Namespace) -> int:
    from ._call._end import resilience_info
    from ._redact import redact_url

    loaded = _loaded("probe", args.config, failure=3)
    if isinstance(loaded, int):
        return loaded
    config, probes = loaded
    if not probes:
        _error("probe", f"{args.config} has no [[probes]] tables")
        return 3
    client = _client("probe", config)
    if client is None:
        return 3
    width = max(len(p.name) for p in probes)
    status = 0
    with client:
        try:
            while True:
                passed = 0
                for probe in probes:
                    try:
                        outcome: httpx.Response | Exception = client.request(
                            probe.method.upper(), probe.url
                        )
                    except httpx.HTTPError as exc:
                        outcome = exc
                    info = resilience_info(outcome)
                    if isinstance(outcome, httpx.Response):
                        ok, got = probe.passes(outcome.status_code), str(outcome.status_code)
                    else:
                        ok, got = False, type(outcome).__name__
                    passed += ok
                    took = f"{info.elapsed * 1000:.0f} ms" if info else "-"
                    tries = f"attempts={info.attempts} stop={info.stop_reason}" if info else ""
                    print(
                        f"{'PASS' if ok else 'FAIL'}  {probe.name:<{width}}  "
                        f"{probe.method.upper()} {redact_url(probe.url)} -> {got}  {took}  {tries}",
                        flush=True,
                    )
                status = 0 if passed == len(probes) else 2 if passed == 0 else 1
                if args.once:
                    return status
                from ._clock import SYSTEM_CLOCK

                SYSTEM_CLOCK.sleep(args.interval)
        except KeyboardInterrupt:
            return status


def _store(args: argparse.Namespace, command: str) -> Any:
    """The incident store named by ``--store``, the environment or the default; ``None``
    (after an error on stderr) when it cannot be opened. A missing SQLite file is an
    error: a command that reads must not create an empty store."""
    from .incidents import open_store

    url = args.store or os.environ.get(INCIDENT_STORE_VARIABLE) or DEFAULT_INCIDENT_STORE
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).exists():
        _error(command, f"no incident store at {url[len('sqlite:///') :]} (see --store)")
        return None
    try:
        return open_store(url)
    except (ValueError, TypeError, httpx.HTTPError, ImportError) as exc:
        _error(command, exc)
        return None


def _incidents(args: argparse.Namespace) -> int:
    from .incidents._report_text import LIST_HEADERS, incident_lines, incident_row

    store = _store(args, "incidents")
    if store is None:
        return 2
    try:
        if args.incidents_command == "list":
            found = store.incidents(open_only=args.open)
            if not found:
                print("no incidents")
                return 0
            _table(LIST_HEADERS, [incident_row(i) for i in found], title="incidents")
            return 0
        incident = store.get(args.id)
        if incident is None:
            _error("incidents", f"no incident {args.id}")
            return 1
        print("\n".join(incident_lines(incident)))
        return 0
    except httpx.HTTPError as exc:  # IncidentStoreError is one
        _error("incidents", exc)
        return 2
    finally:
        store.close()


def _report(args: argparse.Namespace) -> int:
    store = _store(args, "report")
    if store is None:
        return 2
    try:
        incident = store.get(args.id)
    except httpx.HTTPError as exc:
        _error("report", exc)
        return 2
    finally:
        store.close()
    if incident is None:
        _error("report", f"no incident {args.id}")
        return 1
    suffixes = {".html": "html", ".htm": "html", ".json": "json", ".md": "markdown"}
    format = args.format or suffixes.get(Path(args.output or "").suffix.lower(), "markdown")
    text = incident.report(format)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:  # no such folder, no permission: one line, not a traceback
            _error("report", f"cannot write {args.output}: {exc.strerror or exc}")
            return 3
        print(f"wrote the {format} report of {incident.id} to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _chaos(args: argparse.Namespace) -> int:
    import signal
    import threading
    import time

    from ._redact import redact_url
    from .chaos import ChaosApp, serve

    class LoggedApp(ChaosApp):
        """The chaos upstream, printing one line per request it answers."""

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return await super().__call__(scope, receive, send)
            started, seen = time.monotonic(), {"status": "-"}

            async def noting(message: Any) -> None:
                if message["type"] == "http.response.start":
                    seen["status"] = str(message["status"])
                await send(message)

            try:
                await super().__call__(scope, receive, noting)
            finally:
                query = scope.get("query_string", b"").decode("latin-1")
                target = redact_url(scope["path"] + (f"?{query}" if query else ""))
                took = (time.monotonic() - started) * 1000
                stamp = time.strftime("%H:%M:%S", time.gmtime())
                print(
                    f"{stamp}  {scope['method']:<6} {target}  -> {seen['status']}  {took:.0f} ms",
                    flush=True,
                )

    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with serve(LoggedApp(), host=args.host, port=args.port) as running:
            print(f"chaos upstream serving at {running.url} (Ctrl-C to stop)", flush=True)
            print("try: curl -i '" + running.url + "/flaky/demo?fail=2'", flush=True)
            while not stop.wait(0.5):
                pass
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        _error("chaos", f"cannot serve on {args.host}:{args.port}: {exc}")
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    print("stopped", flush=True)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ._demo import main as demo

    return demo(args.out, live=False if args.plain else None)


def _outbox(args: argparse.Namespace) -> int:
    from .outbox import _cli

    return _cli.run(args)


# -- the parser -----------------------------------------------------------------------------


def _version() -> str:
    return (
        f"resilient-client {__version__} (Python {platform.python_version()}, "
        f"httpx {httpx.__version__})"
    )


def parser() -> argparse.ArgumentParser:
    """The command line's parser (every option with its help)."""
    top = argparse.ArgumentParser(
        prog="resilient-client",
        description="Resilient httpx clients: try `resilient-client demo` first.",
    )
    top.add_argument(
        "--version", action="version", version=_version(), help="print the version and exit"
    )
    commands = top.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to do (see COMMAND --help)"
    )
    run: dict[str, Callable[[argparse.Namespace], int]] = {}

    def command(
        name: str,
        help: str,
        handler: Callable[[argparse.Namespace], int],
        epilog: str | None = None,
    ) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = commands.add_parser(
            name, help=help, description=help, epilog=epilog
        )
        sub.set_defaults(handler=handler)
        run[name] = handler
        return sub

    demo = command(
        "demo",
        "the story of an outage against an embedded chaos upstream, "
        "with a live table, alerts and escalation reports (about 15 s)",
        _demo,
    )
    demo.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="directory for the reports and the incident store "
        "(default: a new temporary directory)",
    )
    demo.add_argument(
        "--plain",
        action="store_true",
        help="plain lines even on a terminal (the default without one)",
    )

    chaos = command("chaos", "serve the chaos upstream, a line per request, until Ctrl-C", _chaos)
    chaos.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    chaos.add_argument(
        "--port", type=int, default=0, help="port to bind (default 0: any free port, printed)"
    )

    check = command(
        "check",
        "validate a TOML/YAML config: effective policies, matches, warnings",
        _check,
        epilog="exit status: 0 valid, 1 invalid, 2 warnings with --strict",
    )
    check.add_argument("config", metavar="CONFIG", help="a .toml, .yaml or .yml client config")
    check.add_argument(
        "urls",
        metavar="URL",
        nargs="*",
        help="URLs (or 'METHOD URL') to match against the endpoint keys",
    )
    check.add_argument("--strict", action="store_true", help="exit 2 when there are warnings")

    probe = command(
        "probe",
        "run the config's [[probes]] through the full pipeline",
        _probe,
        epilog="exit status: 0 all passed, 1 some failed, 2 all failed, 3 invalid config",
    )
    probe.add_argument(
        "config",
        metavar="CONFIG",
        help="a config with [[probes]] tables "
        "(name, url, method = 'GET', expect = [statuses], default any 2xx)",
    )
    probe.add_argument(
        "--once",
        action="store_true",
        help="one round, then exit with its status (for cron, Kubernetes)",
    )
    probe.add_argument(
        "--interval",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds between rounds when repeating (default 30)",
    )

    store_help = (
        f"sqlite:///path.db or redis://host:port/db (default: "
        f"${INCIDENT_STORE_VARIABLE}, else {DEFAULT_INCIDENT_STORE})"
    )
    incidents = command(
        "incidents",
        "the incidents recorded in a store",
        _incidents,
        epilog="exit status: 0 done, 1 no such incident, 2 store unusable",
    )
    actions = incidents.add_subparsers(
        dest="incidents_command", required=True, metavar="ACTION", help="list or show"
    )
    listing = actions.add_parser("list", help="every incident, newest first")
    listing.add_argument("--store", default=None, help=store_help)
    listing.add_argument("--open", action="store_true", help="only the open ones")
    show = actions.add_parser("show", help="one incident's facts and timeline")
    show.add_argument("id", metavar="ID", help="the incident's id (from `incidents list`)")
    show.add_argument("--store", default=None, help=store_help)

    report = command(
        "report",
        "an incident's escalation report for the provider's support",
        _report,
        epilog="exit status: 0 written, 1 no such incident, 2 store unusable, "
        "3 the output file cannot be written",
    )
    report.add_argument("id", metavar="ID", help="the incident's id (from `incidents list`)")
    report.add_argument("--store", default=None, help=store_help)
    report.add_argument(
        "--format",
        choices=("markdown", "json", "html"),
        default=None,
        help="default: from -o's suffix (.html, .json, .md), else markdown",
    )
    report.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        default=None,
        help="write to FILE instead of standard output",
    )

    from .outbox import _cli as outbox_cli

    outbox_cli.add_parser(commands).set_defaults(handler=_outbox)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); the exit status."""
    args = parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
