"""The call room: one logical call's life, the pipeline it runs in, and its endpoints.

A call passes the strategies in this order, outermost first; :data:`PIPELINE` is the one
place that order is written as data (the README's picture is drawn from it)::

    deadline → bulkhead / throttle → rate limit → retry (budget, backoff, Retry-After)
             → hedging → kill switch → failover → breaker → attempt timeout → inner transport
"""

from __future__ import annotations

__all__ = ["PIPELINE"]

# (strategy, the room that holds its policy, state and per-call rule, what it does to a call)
PIPELINE: tuple[tuple[str, str, str], ...] = (
    ("deadline", "resilient_client._deadline", "bounds the whole call: every attempt and wait"),
    ("bulkhead", "resilient_client._bulkhead", "admits the call once: a slot among max_concurrent"),
    (
        "throttle",
        "resilient_client._throttle",
        "admits the call once: sheds load the provider refuses",
    ),
    ("rate limit", "resilient_client._rate_limit", "paces each attempt under the provider's limit"),
    (
        "retry",
        "resilient_client._retry",
        "judges each outcome, picks the wait, decides when to stop",
    ),
    (
        "budget",
        "resilient_client._budget",
        "asked before each retry: retries stay a share of calls",
    ),
    (
        "hedging",
        "resilient_client._hedging",
        "races another attempt when one is slow: the first final answer wins",
    ),
    (
        "kill switch",
        "resilient_client._isolation",
        "asked before each attempt: an isolated endpoint is refused",
    ),
    (
        "failover",
        "resilient_client._failover",
        "picks each attempt's origin: the primary, or the next one",
    ),
    ("breaker", "resilient_client._breaker", "asked before each attempt, told every outcome"),
    ("attempt timeout", "resilient_client._timeout", "caps one attempt, clipped to the deadline"),
    ("inner transport", "httpx", "sends the attempt"),
)
