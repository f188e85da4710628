"""Waiting in tests for what another thread, task or server does: always bounded.

A condition that never comes true fails the test (``AssertionError``, or ``False`` from
:func:`eventually` for the caller to assert) instead of hanging the run; the limits only
bound a failure, a passing test never waits them out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def eventually(condition: Callable[[], object], limit: float = 5.0, step: float = 0.01) -> bool:
    """Whether ``condition()`` comes true within ``limit`` seconds, checked every ``step``
    seconds (for an effect of another thread or a server: ``assert eventually(...)``)."""
    give_up = time.monotonic() + limit
    while not condition():
        if time.monotonic() > give_up:
            return False
        time.sleep(step)
    return True


def wait_until(condition: Callable[[], object], limit: float = 5.0, step: float = 0.01) -> None:
    """Like :func:`eventually`, failing the test when the limit passes."""
    if not eventually(condition, limit, step):
        raise AssertionError(f"condition not reached within {limit} s")


async def settle(condition: Callable[[], object], rounds: int = 100) -> None:
    """Let other tasks of this loop run until ``condition()`` holds (at most ``rounds``
    loop turns, no timed wait)."""
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"condition not reached in {rounds} loop turns")
