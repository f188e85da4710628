"""Real HTTP receivers on 127.0.0.1 for the incident tests: webhooks, PagerDuty- and
Slack-shaped endpoints, and an Atlassian Statuspage-shaped server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from resilient_client.incidents import Alert


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """What it answers: ``status`` (202), after ``delay`` seconds; ``pages`` maps a path to
    a ``(status, content type, body)`` for GETs (the status page)."""

    url: str = ""
    status: int = 202
    delay: float = 0.0
    pages: dict[str, tuple[int, str, bytes]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def posts(self) -> list[Received]:
        return [r for r in self.received if r.method == "POST"]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.posts()) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.posts()


@contextmanager
def receiver(**kwargs: Any) -> Iterator[Receiver]:
    state = Receiver(**kwargs)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            state.received.append(
                Received(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
            )

        def do_POST(self) -> None:
            self._record()
            if state.delay:
                state.stop.wait(state.delay)
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            payload = b'{"status":"success","message":"Event processed"}'
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._record()
            status, media, body = state.pages.get(self.path, (404, "text/plain", b"not found"))
            self.send_response(status)
            self.send_header("Content-Type", media)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stop.set()
        server.shutdown()
        server.server_close()


class Collect:
    """An in-process sink keeping every alert."""

    name = "collect"

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def send(self, alert: Alert) -> None:
        self.alerts.append(alert)
