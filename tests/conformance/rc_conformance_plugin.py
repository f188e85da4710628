"""The pytest plugin injected into httpx's own test suite by ``rc_conformance.py`` (``-p``).

It is loaded before httpx's ``conftest.py`` and test modules are imported, so both
spellings a test may use see the mode's classes: ``httpx.Client`` (looked up at call
time) and ``from httpx import Client`` (bound at import time, after this patch).

Modes, from ``RC_CONFORMANCE_MODE``:

- ``plain``: nothing patched; the baseline.
- ``client``: ``httpx.Client`` / ``httpx.AsyncClient`` are ``rc.ResilientClient`` /
  ``rc.AsyncResilientClient`` (httpx's internals, e.g. ``httpx.get``'s own client, are
  left alone: a user swapping in our client does not change them either).
- ``transport``: the clients are httpx's own, and every transport they use - the one
  given as ``transport=``, the one httpx builds, each proxy's and each mount's - is
  wrapped: ``rc.ResilientTransport(inner)`` / ``rc.AsyncResilientTransport(inner)``.

Both resilient modes use the default ``rc.Policy()``: what a user who swaps in our
classes gets. In every mode a socket guard refuses any connection (and any name lookup)
that is not loopback and records it against the running test, so the run can never reach
the internet and says which test tried. Each test's outcome goes to the JSON file named
by ``RC_CONFORMANCE_REPORT``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from collections.abc import Callable, Generator
from typing import Any

import httpx
import pytest

MODE = os.environ.get("RC_CONFORMANCE_MODE", "plain")
REPORT = os.environ.get("RC_CONFORMANCE_REPORT")
MODES = ("plain", "client", "transport")

_outcomes: dict[str, str] = {}
_refused: dict[str, list[str]] = {}
_current = ["<collection>"]


# -- the socket guard --------------------------------------------------------------


def _is_loopback(host: object) -> bool:
    if not isinstance(host, str | bytes):
        return False
    name = host.decode() if isinstance(host, bytes) else host
    name = name.split("%", 1)[0]  # an IPv6 zone id
    if name.lower() in {"localhost", "localhost.localdomain", "ip6-localhost"}:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _refuse(what: str) -> OSError:
    _refused.setdefault(_current[0], []).append(what)
    # ECONNREFUSED: what a test would see from a firewall, so it fails as it would offline.
    return ConnectionRefusedError(111, f"conformance run: non-loopback {what} refused")


def _guard_address(sock: socket.socket, address: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        raise _refuse(f"connect to {address[0]}")


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _connect(self: socket.socket, address: Any) -> None:
    _guard_address(self, address)
    _real_connect(self, address)


def _connect_ex(self: socket.socket, address: Any) -> int:
    _guard_address(self, address)
    return _real_connect_ex(self, address)


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host is not None and not _is_loopback(host):
        raise _refuse(f"lookup of {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


def _install_guard() -> None:
    # asyncio, trio and httpcore's sync backend all connect through socket.socket's
    # methods and look names up through socket.getaddrinfo, found at call time.
    socket.socket.connect = _connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _getaddrinfo


# -- the modes ------------------------------------------------------------------------


def _wrap_transports(client_class: type[Any], wrapper: Callable[[Any], Any]) -> None:
    """Make every transport a plain client uses one of ours around httpx's."""
    init_transport = client_class._init_transport
    init_proxy_transport = client_class._init_proxy_transport
    init = client_class.__init__

    def _init_transport_wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
        return wrapper(init_transport(self, *args, **kwargs))

    def _init_proxy_transport_wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
        return wrapper(init_proxy_transport(self, *args, **kwargs))

    def __init__(self: Any, *args: Any, mounts: Any = None, **kwargs: Any) -> None:
        # A mounts= transport reaches the client as given, not through _init_transport.
        if mounts is not None:
            mounts = {
                key: None if inner is None else wrapper(inner) for key, inner in mounts.items()
            }
        init(self, *args, mounts=mounts, **kwargs)

    client_class._init_transport = _init_transport_wrapped
    client_class._init_proxy_transport = _init_proxy_transport_wrapped
    client_class.__init__ = __init__


def _install_mode() -> None:
    if MODE not in MODES:
        raise pytest.UsageError(f"RC_CONFORMANCE_MODE must be one of {MODES}, not {MODE!r}")
    if MODE == "plain":
        return
    import resilient_client as rc

    if MODE == "client":
        httpx.Client = rc.ResilientClient  # type: ignore[misc]
        httpx.AsyncClient = rc.AsyncResilientClient  # type: ignore[misc]
    else:
        _wrap_transports(httpx.Client, rc.ResilientTransport)
        _wrap_transports(httpx.AsyncClient, rc.AsyncResilientTransport)


_install_guard()
_install_mode()


# -- the report --------------------------------------------------------------------------


def pytest_make_parametrize_id(config: pytest.Config, val: object, argname: str) -> str | None:
    # A test parametrised over httpx.Client gets the id "Client" in every mode, so test
    # ids compare across modes (our subclasses' own names would make new ids).
    if isinstance(val, type) and val.__module__.startswith("resilient_client"):
        for base in val.__mro__:
            if base.__module__.startswith("httpx"):
                return base.__name__
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    _current[0] = item.nodeid
    try:
        return (yield)
    finally:
        _current[0] = "<between tests>"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # One word per test: the first failing phase decides; a skip in setup is a skip.
    seen = _outcomes.get(report.nodeid)
    if report.failed:
        outcome = "failed" if report.when == "call" else "error"
        if seen not in {"failed", "error"}:
            _outcomes[report.nodeid] = outcome
    elif report.skipped:
        xfail = hasattr(report, "wasxfail")
        if seen is None:
            _outcomes[report.nodeid] = "xfailed" if xfail else "skipped"
    elif report.when == "call" and seen is None:
        _outcomes[report.nodeid] = "xpassed" if hasattr(report, "wasxfail") else "passed"


def pytest_sessionfinish(session: pytest.Session) -> None:
    if REPORT is None:
        return
    with open(REPORT, "w", encoding="utf-8") as file:
        json.dump(
            {
                "mode": MODE,
                "httpx": httpx.__version__,
                "outcomes": _outcomes,
                "refused": _refused,
            },
            file,
            indent=1,
            sort_keys=True,
        )
