"""The quickstart demo: calls riding through a flaky upstream on loopback.

It starts the chaos upstream (``resilient_client.chaos``) on 127.0.0.1, then makes calls
through a ResilientClient and prints what the pipeline did for each. Run it with
``python examples/quickstart.py`` or ``resilient-client demo``.
"""

from __future__ import annotations

import logging
import time

import httpx

import resilient_client as rc

from .chaos import serve


def _show(title: str, response: httpx.Response) -> None:
    info: rc.ResilienceInfo = response.extensions["resilience"]
    retries = ", ".join(info.retry_reasons) or "none"
    print(
        f"  {title:<46} -> {response.status_code}  attempts={info.attempts}"
        f"  retries=[{retries}]  elapsed={info.elapsed:.2f}s"
    )


def main() -> int:
    logging.basicConfig(level=logging.CRITICAL)
    print("Starting a flaky upstream on 127.0.0.1 ...")
    with serve() as upstream:
        print(f"  upstream at {upstream.url}\n")
        policy = rc.Policy(
            timeouts=rc.Timeouts(read=2.0, total=5.0),
            retry=rc.Retry(max_attempts=4, backoff=rc.Backoff(initial=0.05, max=0.5)),
        )
        endpoints = {
            "GET /stall/{name}": rc.Policy(timeouts=rc.Timeouts(total=0.5)),
            # An endpoint key of its own: its own breaker, so its outage stays its own.
            "GET /status/down/{code}": rc.Policy(),
        }
        with rc.ResilientClient(
            base_url=upstream.url, policy=policy, endpoints=endpoints
        ) as client:
            print("Retries with backoff and jitter:")
            _show("GET, two 503s then success", client.get("/flaky/users?fail=2"))
            _show(
                "GET, connection dropped mid-body twice", client.get("/drop/body?when=mid&times=2")
            )

            print("\nThe server's Retry-After is honoured:")
            _show(
                "GET, 429 with Retry-After: 1",
                client.get("/flaky/quota?fail=1&status=429&retry_after=1"),
            )
            _show(
                "GET, 503 asking for 10 min (over the cap)",
                client.get("/flaky/maint?fail=1&retry_after=600"),
            )

            print("\nPOST is retried only with an idempotency key (added for you):")
            response = client.post("/payments/shop?lose=1", json={"amount": 4200})
            _show("POST, response lost after the charge", response)
            print(
                f"  {'':<46}    charges recorded by the server: {upstream.app.effects('shop')}"
                f" (key {response.extensions['resilience'].idempotency_key})"
            )

            print("\nA deadline bounds the whole call:")
            start = time.monotonic()
            try:
                client.get("/stall/forever?seconds=30")
            except rc.DeadlineExceeded as exc:
                print(
                    f"  {'GET, server stalls 30 s, deadline 0.5 s':<46} -> "
                    f"{type(exc).__name__} after {time.monotonic() - start:.2f}s: {exc}"
                )

            print("\nA breaker stops hammering a dead endpoint:")
            failed_fast = 0
            for _ in range(20):
                try:
                    client.get("/status/down/503")
                except rc.CircuitOpenError:
                    failed_fast += 1
            print(
                f"  {'20 calls to an endpoint answering 503':<46} -> upstream saw "
                f"{upstream.app.scenario('down').attempts} attempts, {failed_fast} calls failed "
                "fast (breaker open)"
            )

            print("\nEvery error envelope becomes one Problem:")
            for fmt, status in (("rfc9457", 400), ("google", 503), ("stripe", 402), ("html", 502)):
                response = client.get(f"/problem/p-{fmt}/{fmt}?status={status}")
                problem = rc.parse_problem(response)
                print(
                    f"  {fmt:<9} {status}: category={problem.category.value:<15} "
                    f"retryable={problem.retryable!s:<5} code={problem.code} "
                    f"detail={(problem.detail or '')[:40]!r}"
                )
    print("\nDone.")
    return 0
