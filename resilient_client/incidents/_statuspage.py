"""What the provider says: its Atlassian Statuspage, read off the call path.

Most API providers publish their status with Atlassian Statuspage, whose v2 JSON API is
public and the same everywhere: ``/api/v2/status.json`` (``status.indicator`` ``none`` /
``minor`` / ``major`` / ``critical`` / ``maintenance``, ``status.description``) and
``/api/v2/incidents/unresolved.json`` (``incidents[]`` with ``name``, ``status``,
``impact``, ``created_at``, ``shortlink``).

The page is read on its own daemon thread, only while an incident is open, at most once
per ``interval`` seconds, each read bounded by ``timeout``. An unreachable page, an HTML
page or any other garbage leaves the last good reading (or none) in place and changes
nothing else; the first failure of a run is logged once at INFO, by its kind only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from .._clock import Clock
from ._incident import ProviderStatus, StatusPageIncident, utc

__all__ = ["StatusPage"]

logger = logging.getLogger("resilient_client.incidents")

_INDICATORS = frozenset({"none", "minor", "major", "critical", "maintenance"})


class _Status(BaseModel):
    model_config = ConfigDict(extra="ignore")
    indicator: str
    description: str


class _StatusDoc(BaseModel):
    model_config = ConfigDict(extra="ignore")
    status: _Status


class _Listed(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    status: str | None = None
    impact: str | None = None
    created_at: str | None = None
    shortlink: str | None = None


class _Unresolved(BaseModel):
    model_config = ConfigDict(extra="ignore")
    incidents: list[_Listed]


def parse(
    page: str, status_body: bytes, unresolved_body: bytes | None, at: float
) -> ProviderStatus:
    """A reading from the two documents' bytes; ``ValueError`` if they are not what
    Statuspage serves (``unresolved_body`` ``None``: that one could not be read)."""
    try:
        status = _StatusDoc.model_validate_json(status_body).status
        listed = [] if unresolved_body is None else _Unresolved.model_validate_json(
            unresolved_body).incidents  # fmt: skip
    except ValidationError as exc:
        raise ValueError("not a Statuspage v2 document") from exc
    if status.indicator not in _INDICATORS:
        raise ValueError("unknown status indicator")
    incidents = tuple(
        StatusPageIncident(
            name=item.name[:200], status=item.status, impact=item.impact,
            created_at=item.created_at, shortlink=item.shortlink,
        )
        for item in listed[:10]
    )  # fmt: skip
    return ProviderStatus(
        page=page,
        indicator=status.indicator,
        description=status.description[:200],
        acknowledged=status.indicator != "none" or bool(incidents),
        incidents=incidents,
        checked_at=utc(at),
    )


class StatusPage:
    """Readings of one or more status pages, by provider (``"*"``: every provider)."""

    def __init__(self, pages: Mapping[str, str], clock: Clock, *, interval: float = 60.0,
                 timeout: float = 5.0) -> None:  # fmt: skip
        self._clock = clock
        for url in pages.values():
            if httpx.URL(url).scheme not in ("http", "https"):
                raise ValueError("status_page must be an http(s) URL")
        self._pages = {provider: url.rstrip("/") for provider, url in pages.items()}
        self._interval = interval
        self._timeout = timeout
        self._latest: dict[str, ProviderStatus] = {}
        self._due = 0.0
        self._failing = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: httpx.Client | None = None

    @classmethod
    def configured(cls, value: str | Mapping[str, str] | None, clock: Clock) -> StatusPage | None:
        """From the monitor's ``status_page=``; ``TypeError`` for anything else."""
        if value is None:
            return None
        if isinstance(value, str):
            return cls({"*": value}, clock)
        if isinstance(value, Mapping):
            return cls(dict(value), clock)
        raise TypeError("status_page must be a URL, a {provider: URL} mapping or None")

    def latest(self, provider: str) -> ProviderStatus | None:
        """The last good reading of ``provider``'s page (or the page for all)."""
        key = provider if provider in self._pages else "*"
        return self._latest.get(key)

    def poke(self) -> None:
        """Read the pages soon if the last read is ``interval`` old (never blocks)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="rc-status-page", daemon=True)
            self._thread.start()
        self._wake.set()

    def read_now(self) -> None:
        """Read every page once, on the calling thread."""
        for provider, url in self._pages.items():
            reading = self._read(url)
            if reading is not None:
                self._latest[provider] = reading

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                return
            if time.monotonic() < self._due:
                continue
            self._due = time.monotonic() + self._interval
            self.read_now()

    def _read(self, url: str) -> ProviderStatus | None:
        if self._client is None:
            self._client = httpx.Client(timeout=self._timeout)
        try:
            status = self._client.get(f"{url}/api/v2/status.json")
            status.raise_for_status()
            unresolved: Any = self._client.get(f"{url}/api/v2/incidents/unresolved.json")
            body = unresolved.content if unresolved.status_code == 200 else None
            reading = parse(str(httpx.URL(url).host), status.content, body, self._clock.wall())
        except (httpx.HTTPError, ValueError) as exc:
            if not self._failing:
                self._failing = True
                logger.info("status page %s could not be read (%s); ignored",
                            httpx.URL(url).host, type(exc).__name__)  # fmt: skip
            return None
        self._failing = False
        return reading

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(2.0)
        if self._client is not None:
            self._client.close()
