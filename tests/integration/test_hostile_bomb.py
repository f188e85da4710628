"""Issue 17, point 2: a tiny compressed error body (``Content-Encoding: gzip, gzip``) does
not inflate in memory - neither in the pipeline's read of a streamed call's error body nor
in ``parse_problem`` on an unread stream. Peak RSS is measured in a fresh subprocess."""

from __future__ import annotations

import subprocess
import sys

import pytest
from test_hostile_kit import BOMB_SIZE, Hostile, serving

MEASURE = """
import asyncio, resource, sys
import httpx
import resilient_client as rc
from resilient_client.problems import aparse_problem

url, case = sys.argv[1], sys.argv[2]
policy = rc.Policy(retry=rc.Retry(max_attempts=2, backoff=rc.Backoff(initial=0.0)),
                   breaker=None, budget=None)

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

async def astream():
    async with rc.AsyncResilientClient(policy=policy) as client:
        async with client.stream("GET", url) as response:
            assert response.status_code == 500
            problem = await aparse_problem(response)
    return problem

def run():
    if case == "sync-stream":
        with rc.ResilientClient(policy=policy) as client:
            with client.stream("GET", url) as response:
                assert response.status_code == 500
                return rc.parse_problem(response)
    if case == "async-stream":
        return asyncio.run(astream())
    with httpx.Client() as client:  # parse_problem on a plain unread stream
        with client.stream("GET", url) as response:
            return rc.parse_problem(response)

before = peak()
problem = run()
print(peak() - before, problem.status)
"""

hostile = pytest.fixture(scope="module", name="hostile")(serving)


@pytest.mark.parametrize("case", ["sync-stream", "async-stream", "parse-unread"])
def test_a_compressed_error_body_does_not_inflate(hostile: Hostile, case: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, hostile.url("/bomb"), case],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    growth, status = result.stdout.split()

    assert status == "500"
    assert int(growth) <= 16 * 1024 * 1024 < BOMB_SIZE
