"""The request extensions the pipeline reads. The first two are public (API.md §1)."""

from __future__ import annotations

__all__ = [
    "EXT_EXPLICIT_TIMEOUT",
    "EXT_IDEMPOTENCY_KEY",
    "EXT_POLICY",
    "EXT_REPLAY",
    "EXT_RESILIENCE",
    "EXT_STREAM",
]

# A per-call Policy merged over the endpoint's.
EXT_POLICY = "resilience"
# A caller's idempotency key, sent as the endpoint's idempotency header.
EXT_IDEMPOTENCY_KEY = "idempotency_key"
# Where the call's ResilienceInfo is left on the response.
EXT_RESILIENCE = "resilience"
# Set by ResilientClient: whether the caller streams the body, and whether the
# request's timeout was given explicitly rather than httpx's client default.
EXT_STREAM = "resilient_client.stream"
EXT_EXPLICIT_TIMEOUT = "resilient_client.explicit_timeout"
# Set by the outbox on the writes it replays: a replayed write is never parked again.
EXT_REPLAY = "resilient_client.replay"
