"""Test support for the breaker tests: one endpoint, one call, fleets of workers."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable
from typing import Any

# tests/ is on sys.path, tests/integration only once an integration test was collected.
from integration.redis_server import _free_port

from resilient_client._breaker import (
    Breaker,
    BreakerRegistry,
    EndpointBreaker,
    Outcome,
    Permit,
    Rejection,
)
from resilient_client._breaker._storage import BreakerStorage
from resilient_client._clock import SYSTEM_CLOCK, Clock

EP = "GET /v1/users/{id}"

# Spawn, not fork: a forked child would inherit the test process's threads' locks.
SPAWN = multiprocessing.get_context("spawn")

# Seconds a fleet may take from start to finish before its stragglers are killed.
FLEET_TIMEOUT = 60.0


def breaker_over(
    storage: BreakerStorage | None, clock: Clock = SYSTEM_CLOCK, **policy: Any
) -> EndpointBreaker:
    """A fresh registry's breaker for :data:`EP` (``storage=None``: in-process state)."""
    return BreakerRegistry(storage, clock).get(EP, Breaker(**policy))


def call(breaker: EndpointBreaker, outcome: Outcome, duration: float = 0.01) -> Permit | Rejection:
    """One call: admit, and if admitted record ``outcome`` taking ``duration`` seconds."""
    permit = breaker.admit()
    if isinstance(permit, Permit):
        breaker.record(permit, outcome, duration)
    return permit


def free_port() -> int:
    """A 127.0.0.1 port nobody listens on (connecting to it fails at once)."""
    return _free_port()


def run_fleet(
    target: Callable[..., None],
    *args: Any,
    workers: int = 4,
    processes: bool = True,
    timeout: float = FLEET_TIMEOUT,
) -> None:
    """Run ``target(*args, index, start)`` in ``workers`` spawned processes (or threads).

    ``start`` is a barrier (of the spawn context, for processes) that releases them
    together; it times out after ``timeout`` seconds, so a worker that died before it
    breaks the others' wait instead of hanging them. Every worker must end within
    ``timeout`` and succeed: processes still alive then are killed, and the assertion
    that each exited with 0 fails; a thread's exception is raised here.
    """
    if processes:
        _run_processes(target, args, workers, timeout)
    else:
        _run_threads(target, args, workers, timeout)


def _run_processes(
    target: Callable[..., None], args: tuple[Any, ...], workers: int, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    start = SPAWN.Barrier(workers, timeout=timeout)
    children = [
        SPAWN.Process(target=target, args=(*args, index, start)) for index in range(workers)
    ]
    try:
        for child in children:
            child.start()
        for child in children:
            child.join(max(0.0, deadline - time.monotonic()))
    finally:
        for child in children:
            if child.is_alive():
                child.kill()
                child.join()
    assert [child.exitcode for child in children] == [0] * workers


def _run_threads(
    target: Callable[..., None], args: tuple[Any, ...], workers: int, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    start = threading.Barrier(workers, timeout=timeout)
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            target(*args, index, start)
        except BaseException as exc:  # reported in the test's thread, not as a warning
            errors.append(exc)

    # Daemons: a thread that hangs cannot be killed, but must not keep pytest alive.
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), f"workers hung past {timeout}s"
    if errors:
        raise errors[0]
