"""Which failed calls the outbox parks: the one rule, pure.

A call is parked when its endpoint's policy says ``outbox=True``, the client has an outbox,
and it is a write that can be sent again safely and unchanged later:

- its method is a write (POST, PUT, PATCH, DELETE) and it carries an idempotency key, so
  the provider deduplicates a replay of a write that did reach it;
- its body is in memory (a one-shot stream cannot be stored);
- it is not itself a replay (the outbox's own sends are never parked again);
- it failed with a *retryable* outcome: its last outcome was judged retryable and a stop
  rule ended the call (attempts, budget, deadline, breaker, a too long Retry-After), or
  the provider was refused locally because it is failing (an open breaker, the deadline,
  the adaptive throttle). A 4xx answer is the caller's to fix, never parked.
"""

from __future__ import annotations

__all__ = ["WRITE_METHODS", "parks"]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def parks(*, method: str, keyed: bool, replayable: bool, replay: bool, retryable: bool) -> bool:
    """Whether a failed call with these properties is parked (see the module docstring)."""
    return retryable and keyed and replayable and not replay and method in WRITE_METHODS
