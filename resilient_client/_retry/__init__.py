"""The retry room: which outcomes are retried, how long to wait, when a call stops.

``_policy`` the :class:`Retry` and :class:`Backoff` policies; ``_rules`` the verdict on each
outcome (which outcomes are retried); ``_waits`` the delay before the next attempt;
``_stop`` when a call stops instead; ``_loop`` tenacity's decision machine, fed by them.
The rest of the package imports the room from here.
"""

from ._loop import RetryLoop
from ._policy import DEFAULT_RETRY_STATUSES, Backoff, Jitter, Retry
from ._rules import (
    FINAL_SUCCESS,
    IDEMPOTENT_METHODS,
    Failure,
    Verdict,
    classify_exception,
    judge_failure,
    judge_status,
    status_is_candidate,
)
from ._stop import StopReason, stop_reason
from ._waits import Wait, backoff_delay, next_wait

__all__ = [
    "DEFAULT_RETRY_STATUSES",
    "FINAL_SUCCESS",
    "IDEMPOTENT_METHODS",
    "Backoff",
    "Failure",
    "Jitter",
    "Retry",
    "RetryLoop",
    "StopReason",
    "Verdict",
    "Wait",
    "backoff_delay",
    "classify_exception",
    "judge_failure",
    "judge_status",
    "next_wait",
    "status_is_candidate",
    "stop_reason",
]
