"""Quickstart: a resilient client riding through a flaky upstream on loopback.

Run it with ``python examples/quickstart.py``. It serves the chaos upstream (a server that
fails on purpose, ``resilient_client.chaos``) on 127.0.0.1, then makes calls through one
``rc.ResilientClient`` and prints what the pipeline did for each: retries with backoff,
Retry-After honoured, a POST retried safely under an idempotency key, a deadline, a
breaker, and every error envelope as one ``rc.Problem``.
"""

from __future__ import annotations

import logging
import sys
import time

import httpx

import resilient_client as rc
from resilient_client.chaos import serve


def show(title: str, response: httpx.Response) -> None:
    info = rc.resilience_info(response)
    assert info is not None  # every response of a resilient client carries one
    retries = ", ".join(info.retry_reasons) or "none"
    print(
        f"  {title:<44} -> {response.status_code}  attempts={info.attempts}"
        f"  retries=[{retries}]  elapsed={info.elapsed:.2f}s"
    )


def main() -> int:
    logging.basicConfig(level=logging.CRITICAL)
    with serve() as upstream:
        print(f"A flaky upstream at {upstream.url}\n")
        client = rc.ResilientClient(
            base_url=upstream.url,
            # Every call: at most 4 attempts, backoff from 50 ms, 5 s to finish.
            policy=rc.Policy(
                timeouts=rc.Timeouts(read=2.0, total=5.0),
                retry=rc.Retry(max_attempts=4, backoff=rc.Backoff(initial=0.05, max=0.5)),
            ),
            endpoints={
                # A tighter deadline for one endpoint.
                "GET /stall/{name}": rc.Policy(timeouts=rc.Timeouts(total=0.5)),
                # An endpoint key of its own: its own breaker, so its outage stays its own;
                # a consecutive one, to show it trip within a few calls.
                "GET /status/down/{code}": rc.Policy(
                    breaker=rc.Breaker(
                        window="consecutive", failure_threshold=5, reset_timeout=30.0
                    )
                ),
            },
        )
        with client:
            print("Retries with backoff and jitter:")
            show("GET, two 503s then success", client.get("/flaky/users?fail=2"))
            show("GET, connection dropped twice", client.get("/drop/body?when=mid&times=2"))

            print("\nThe server's Retry-After is honoured, up to a cap:")
            show(
                "GET, 429 with Retry-After: 1",
                client.get("/flaky/quota?fail=1&status=429&retry_after=1"),
            )
            show(
                "GET, 503 asking for 10 min (over the cap)",
                client.get("/flaky/maint?fail=1&retry_after=600"),
            )

            print("\nA POST is retried only under an idempotency key (added for you):")
            response = client.post("/payments/shop?lose=1", json={"amount": 4200})
            show("POST, response lost after the charge", response)
            info = rc.resilience_info(response)
            key = info.idempotency_key if info is not None else None
            print(f"  charges recorded by the server: {upstream.app.effects('shop')} (key {key})")

            print("\nA deadline bounds the whole call:")
            start = time.monotonic()
            try:
                client.get("/stall/forever?seconds=30")
            except rc.DeadlineExceeded as exc:
                print(
                    f"  GET, server stalls 30 s -> {type(exc).__name__} after "
                    f"{time.monotonic() - start:.2f}s"
                )

            print("\nA breaker stops hammering a dead endpoint:")
            failed_fast = 0
            for _ in range(20):
                try:
                    client.get("/status/down/503")
                except rc.CircuitOpenError:
                    failed_fast += 1
            attempts = upstream.app.scenario("down").attempts
            print(
                f"  20 calls to an endpoint answering 503 -> the server saw {attempts} "
                f"attempts, {failed_fast} calls failed fast"
            )

            print("\nEvery error envelope becomes one rc.Problem:")
            for fmt, status in (("rfc9457", 400), ("google", 503), ("stripe", 402)):
                problem = rc.parse_problem(client.get(f"/problem/p-{fmt}/{fmt}?status={status}"))
                print(
                    f"  {fmt:<8} {status}: category={problem.category.value:<15} "
                    f"retryable={problem.retryable!s:<5} code={problem.code}"
                )
    print("\nDone.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
