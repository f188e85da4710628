"""Writes parked straight into an outbox, for the outbox tests (each a keyed POST of the
payments endpoint carrying a canary secret in its Authorization header)."""

from __future__ import annotations

import httpx

from resilient_client.outbox import Outbox, OutboxEntry

EP = "POST /payments/{name}"
CANARY = "canary-secret-51d0"


def park_writes(outbox: Outbox, url: str, n: int, prefix: str = "k") -> list[OutboxEntry]:
    """Park ``n`` keyed POSTs to ``url`` (keys ``<prefix>-0`` ...), as a call that failed
    after 3 attempts with a 503 would."""
    entries = []
    for i in range(n):
        key = f"{prefix}-{i}"
        request = httpx.Request(
            "POST",
            url,
            json={"amount": i},
            headers={"Idempotency-Key": key, "Authorization": f"Bearer {CANARY}"},
        )
        entries.append(
            outbox.park(
                request, endpoint=EP, idempotency_key=key, attempts=3, last_error="status 503"
            )
        )
    return entries
