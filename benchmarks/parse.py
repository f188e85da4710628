"""What ``parse_problem`` costs per error response, by envelope.

Run: ``python benchmarks/parse.py [--rounds 7] [--number 2000]``. Prints the median over
``rounds`` of the mean cost of one call (µs), measured with ``time.perf_counter`` over
``number`` calls. Responses are built once and already read (what the pipeline hands over),
except the streaming rows, which build a fresh unread response per call and report the
cost of building it alone beside it.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from resilient_client.problems import parse_problem

FIFTY_MB = 50 * 1024 * 1024
CHUNK = 64 * 1024

PAYLOADS: dict[str, tuple[int, str, Any, dict[str, str]]] = {
    "rfc9457": (
        422,
        "application/problem+json",
        {
            "type": "https://api.example.test/problems/validation",
            "title": "Request body failed validation",
            "status": 422,
            "detail": "2 fields are invalid",
            "instance": "urn:uuid:4d1c7c1e-9a55-4a7e-bb0e-2f3f5d1f0c11",
            "errors": [
                {"pointer": "#/items/0/qty", "detail": "must be >= 1"},
                {"pointer": "#/currency", "detail": "unsupported currency code"},
            ],
        },
        {},
    ),
    # What a retried call parses: a bare problem, no field errors, no hints.
    "rfc9457 (bare 503)": (
        503,
        "application/problem+json",
        {
            "type": "https://example.com/probs/unavailable",
            "title": "Unavailable",
            "status": 503,
            "detail": "try later",
        },
        {},
    ),
    "google": (
        429,
        "application/json",
        {
            "error": {
                "code": 429,
                "message": "Quota exceeded for 'reads per minute'.",
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "RATE_LIMIT_EXCEEDED",
                        "domain": "storage.example.googleapis.com",
                        "metadata": {"quotaMetric": "reads", "consumer": "projects/demo"},
                    },
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12.5s"},
                ],
            }
        },
        {},
    ),
    "microsoft": (
        409,
        "application/json",
        {
            "error": {
                "code": "QuotaExceeded",
                "message": "The subscription has reached its limit of 20 vaults.",
                "target": "vaults",
                "details": [{"code": "LimitReached", "message": "20/20", "target": "count"}],
                "innererror": {"code": "VaultCountLimit"},
            }
        },
        {"x-ms-request-id": "0f6c2a34-5c1d-4a8e-9d3b-1c2d3e4f5a6b"},
    ),
    "jsonapi": (
        422,
        "application/vnd.api+json",
        {
            "errors": [
                {
                    "id": "e-81f2",
                    "status": "422",
                    "code": "too_short",
                    "title": "Invalid attribute",
                    "detail": "Name must be at least 3 characters.",
                    "source": {"pointer": "/data/attributes/name"},
                }
            ]
        },
        {},
    ),
    "openai": (
        429,
        "application/json",
        {
            "error": {
                "message": "Rate limit reached",
                "type": "requests",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        },
        {"x-request-id": "req_123", "retry-after-ms": "1200"},
    ),
    "anthropic": (
        529,
        "application/json",
        {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"},
            "request_id": "req_011CXexample",
        },
        {"x-should-retry": "true"},
    ),
    "stripe": (
        402,
        "application/json",
        {
            "error": {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": "insufficient_funds",
                "message": "Your card has insufficient funds.",
                "param": "payment_method",
                "doc_url": "https://stripe.example.test/docs/error-codes/card-declined",
            }
        },
        {"request-id": "req_stripe"},
    ),
    "graphql": (
        200,
        "application/json",
        {
            "data": None,
            "errors": [
                {
                    "message": "Forbidden",
                    "path": ["order", 0, "total"],
                    "locations": [{"line": 2, "column": 3}],
                    "extensions": {"code": "FORBIDDEN"},
                }
            ],
        },
        {},
    ),
    "unstructured (html)": (
        502,
        "text/html",
        b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
        {},
    ),
    "unstructured (empty)": (503, "", b"", {"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}),
}


def build(status: int, content_type: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    all_headers = {"date": "Wed, 21 Oct 2026 07:27:00 GMT", **headers}
    if content_type:
        all_headers["content-type"] = content_type
    return httpx.Response(status, headers=all_headers, content=raw)


def per_call(fn: Callable[[], object], rounds: int, number: int) -> float:
    """Median over ``rounds`` of the mean seconds one ``fn()`` takes."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples)


def fifty_mb() -> Iterator[bytes]:
    filler = b" " * CHUNK
    for _ in range(FIFTY_MB // CHUNK):
        yield filler


def streaming_response() -> httpx.Response:
    """A fresh, unread 50 MB response whose chunks are made only when pulled."""
    return httpx.Response(503, content=fifty_mb())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=2000)
    args = parser.parse_args()

    print(f"{'payload':<34}{'bytes':>10}{'µs/parse':>12}")
    for name, (status, content_type, body, headers) in PAYLOADS.items():
        response = build(status, content_type, body, headers)
        cost = per_call(functools.partial(parse_problem, response), args.rounds, args.number)
        print(f"{name:<34}{len(response.content):>10}{cost * 1e6:>12.1f}")

    buffered = httpx.Response(503, content=b" " * FIFTY_MB)
    cost = per_call(functools.partial(parse_problem, buffered), args.rounds, args.number)
    print(f"{'50 MB, already read':<34}{FIFTY_MB:>10}{cost * 1e6:>12.1f}")

    number = max(1, args.number // 10)
    base = per_call(streaming_response, args.rounds, number)
    cost = per_call(lambda: parse_problem(streaming_response()), args.rounds, number)
    label = "50 MB, streaming (64 KiB bound)"
    print(
        f"{label:<34}{FIFTY_MB:>10}{cost * 1e6:>12.1f}   (building it alone: {base * 1e6:.1f} µs)"
    )


if __name__ == "__main__":
    main()
