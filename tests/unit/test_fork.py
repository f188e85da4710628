"""Issue 17, point 4: real ``os.fork()`` children of a process whose threads use the client
get fresh locks, their own random draws, and none of their parent's connections."""

from __future__ import annotations

import os
import select
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import resilient_client as rc
from resilient_client._clock import SYSTEM_CLOCK

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
from test_hostile_kit import Hostile

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() here")

CHILD_TIMEOUT = 10.0


@pytest.fixture(scope="module")
def hostile() -> Iterator[Hostile]:
    with Hostile() as server:
        yield server


def _fork(child: callable) -> int:  # type: ignore[valid-type]
    pid = os.fork()
    if pid == 0:  # the child: never back into pytest
        code = 1
        try:
            code = child()
        finally:
            os._exit(code)
    return pid


def _wait(pids: list[int]) -> dict[int, int | None]:
    """Each child's exit status; None for one still running after CHILD_TIMEOUT (killed)."""
    statuses: dict[int, int | None] = {}
    deadline = time.monotonic() + CHILD_TIMEOUT
    while len(statuses) < len(pids) and time.monotonic() < deadline:
        for pid in pids:
            if pid not in statuses:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    statuses[pid] = os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    for pid in pids:
        if pid not in statuses:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            statuses[pid] = None
    return statuses


def _echoed(client: rc.ResilientClient, url: str, tag: str) -> bool:
    response = client.get(url, headers={"X-Echo": tag})
    return response.headers.get("x-echo") == tag


def test_children_forked_while_threads_call_get_fresh_locks_and_connections(
    hostile: Hostile,
) -> None:
    policy = rc.Policy(
        bulkhead=rc.Bulkhead(max_concurrent=4, max_wait=5.0),
        throttle=rc.AdaptiveThrottle(),
        timeouts=rc.Timeouts(total=5.0),
    )
    url = hostile.url("/ok")
    crossed: list[str] = []
    stop = threading.Event()
    with rc.ResilientClient(policy=policy) as client:

        def parent_calls(name: str) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                tag = f"parent-{name}-{n}"
                if not _echoed(client, url, tag):
                    crossed.append(tag)

        threads = [threading.Thread(target=parent_calls, args=(str(i),)) for i in range(3)]
        for thread in threads:
            thread.start()

        def child() -> int:
            tags = [f"child-{os.getpid()}-{n}" for n in range(3)]
            return 0 if all(_echoed(client, url, tag) for tag in tags) else 3

        pids = []
        try:
            for _ in range(100):
                pids.append(_fork(child))
                time.sleep(0.002)
            statuses = _wait(pids)
        finally:
            stop.set()
            for thread in threads:
                thread.join()

    hung = [pid for pid, status in statuses.items() if status is None]
    failed = [status for status in statuses.values() if status not in (0, None)]
    assert (hung, failed, crossed) == ([], [], [])


def test_a_lock_held_by_another_thread_at_fork_is_fresh_in_the_child(hostile: Hostile) -> None:
    # Deterministic: hold every endpoint lock the call path takes while forking.
    policy = rc.Policy(bulkhead=rc.Bulkhead(max_concurrent=2), retry=rc.Retry(max_attempts=3))
    with rc.ResilientClient(policy=policy) as client:
        client.get(hostile.url("/ok"))
        endpoint = client._transport.pipeline.endpoints.all()[-1]  # type: ignore[attr-defined]
        locks = [
            endpoint.breaker._lock,
            endpoint.budget._lock,
            endpoint.bulkhead._lock,
            client._transport.pipeline.endpoints._breakers._lock,  # type: ignore[attr-defined]
            client.cookies.jar._cookies_lock,  # type: ignore[attr-defined] # httpx's jar
        ]
        held = threading.Event()
        release = threading.Event()

        def hold() -> None:
            for lock in locks:
                lock.acquire()
            held.set()
            release.wait()
            for lock in locks:
                lock.release()

        holder = threading.Thread(target=hold)
        holder.start()
        held.wait()
        try:

            def child() -> int:
                # A new host (a new endpoint: the registry's lock), then the held one's
                # breaker, budget (retried 503s) and bulkhead.
                client.get(hostile.url("/ok", host="localhost"))
                response = client.get(hostile.url("/retry-after?value=0"))
                return 0 if response.status_code == 503 else 3

            statuses = _wait([_fork(child)])
        finally:
            release.set()
            holder.join()

    assert list(statuses.values()) == [0]


def test_a_child_draws_its_own_jitter() -> None:
    read, write = os.pipe()

    def child() -> int:
        os.write(write, repr(SYSTEM_CLOCK.random()).encode())
        return 0

    pid = _fork(child)
    parent_draw = SYSTEM_CLOCK.random()
    select.select([read], [], [], CHILD_TIMEOUT)
    child_draw = float(os.read(read, 64))
    os.close(read)
    os.close(write)

    assert _wait([pid]) == {pid: 0}
    assert child_draw != parent_draw


def test_the_child_does_not_close_the_parents_connections(hostile: Hostile) -> None:
    with httpx.Client() as plain, rc.ResilientClient(transport=httpx.HTTPTransport()) as client:
        client.get(hostile.url("/ok"))
        pool = client._transport._inner._pool  # type: ignore[attr-defined]
        before = list(pool.connections)

        statuses = _wait([_fork(lambda: 0 if not pool.connections else 3)])

        assert statuses == {next(iter(statuses)): 0}
        assert pool.connections == before
        assert _echoed(client, hostile.url("/ok"), "after")  # the parent's one still works
        del plain


def test_a_child_forked_while_a_thread_starts_a_hedge_pool_can_hedge(hostile: Hostile) -> None:
    # Deterministic: hold the lock a driver's first hedge race takes to make its thread
    # pool (another thread racing for the first time) while forking.
    policy = rc.Policy(hedging=rc.Hedging(delay=0.5), timeouts=rc.Timeouts(total=5.0))
    with rc.ResilientClient(policy=policy) as client:
        lock = client._transport._race_lock  # type: ignore[attr-defined]
        lock.acquire()
        try:
            statuses = _wait([_fork(lambda: 0 if _echoed(client, hostile.url("/ok"), "h") else 3)])
        finally:
            lock.release()

    assert list(statuses.values()) == [0]
