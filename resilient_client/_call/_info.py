"""What the pipeline did for one call, attached as ``response.extensions["resilience"]``."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["ResilienceInfo"]


# A NamedTuple rather than a frozen dataclass: immutable all the same, and built on every
# call - a frozen dataclass's __init__ costs ~2 us (one object.__setattr__ per field).
class ResilienceInfo(NamedTuple):
    """The record of one call.

    - ``endpoint``: the matched endpoint key, e.g. ``"GET /v1/users/{id}"``, or
      ``"* <host>"`` for a request that matched no key.
    - ``attempts``: attempts made, the first included.
    - ``elapsed``: seconds from the start of the call to its end, waits included.
    - ``idempotency_key``: the key sent with every attempt, or ``None``.
    - ``correlation_id``: the call's correlation id: the one sent in the correlation
      header (kept for logs and spans when the client sends none).
    - ``request_id``: the server's own request id from the last response, if it sent one.
    - ``retry_reasons``: why each retry was made, e.g. ``("status_503", "timeout")``.
    - ``stop_reason``: why no further attempt was made: ``"success"``, ``"max_attempts"``,
      ``"deadline"``, ``"retry_after_too_long"``, ``"breaker"``, ``"isolated"`` (an
      endpoint an operator isolated, ``client.isolate()``), ``"budget"``, or the last
      verdict's reason (``"status_not_retryable"``, ``"method_not_retryable"``, ...);
      for a call refused before its first attempt, who refused it (``"bulkhead"``,
      ``"throttle"``, ``"rate_limit"``, ``"breaker"``).
    - ``fallback``: the response came from the policy's fallback, not the server.
    - ``injected``: the faults chaos put in place of attempts (``"503"``, ``"reset"``...),
      which never reached the server (``rc.Chaos``); empty for a real call.
    - ``origin``: with failover (``rc.Failover``), who answered: the origin
      (``"scheme://host[:port]"``, e.g. ``"https://us.api.example.com"``) of the call's
      last attempt; ``None`` when no attempt was sent, and without failover (the
      request's own URL says who answered).
    - ``hedges``: how many of the attempts were hedges (``rc.Hedging``): sent while an
      earlier attempt was still on its way.
    """

    endpoint: str
    attempts: int
    elapsed: float
    idempotency_key: str | None
    correlation_id: str
    request_id: str | None = None
    retry_reasons: tuple[str, ...] = ()
    stop_reason: str | None = None
    fallback: bool = False
    injected: tuple[str, ...] = ()
    origin: str | None = None
    hedges: int = 0

    def __str__(self) -> str:
        attempts = "1 attempt" if self.attempts == 1 else f"{self.attempts} attempts"
        parts = [f"{self.endpoint}: {attempts} in {self.elapsed:.2f} s"]
        if self.retry_reasons:
            parts.append("retried for " + ", ".join(self.retry_reasons))
        if self.stop_reason is not None:
            parts.append(f"stopped by {self.stop_reason}")
        if self.hedges:
            parts.append("1 hedge" if self.hedges == 1 else f"{self.hedges} hedges")
        if self.fallback:
            parts.append("answered by the fallback")
        if self.injected:
            parts.append("chaos injected " + ", ".join(self.injected))
        if self.request_id is not None:
            parts.append(f"request id {self.request_id}")
        if self.idempotency_key is not None:
            parts.append(f"idempotency key {self.idempotency_key}")
        parts.append(f"correlation id {self.correlation_id}")
        return "; ".join(parts)
