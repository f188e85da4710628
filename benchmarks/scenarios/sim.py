"""Runs one (scenario, client, seed) on trio's virtual clock and records what happened.

The load is open: each call starts at its arrival time in a task of its own, whatever
the calls before it are doing (users do not wait for each other). A run of 70 virtual
seconds at 200 calls/s takes 5-30 CPU seconds (the peers' retry loops cost the most).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import trio
import trio.testing

from .clients import Client
from .model import Provider, Scenario, arrivals

__all__ = ["Run", "simulate"]


@dataclass(frozen=True)
class Run:
    """What one run recorded, times in seconds from the run's start."""

    scenario: Scenario
    label: str
    seed: int
    starts: list[float]
    ends: list[float]
    ok: list[bool]
    attempts: list[float]
    """Start of every attempt the provider received."""


def _seed_everything(seed: int) -> None:
    # The peers draw their jitter from the global random module, and trio shuffles the
    # order of tasks woken together from a private Random: seed both so a run repeats.
    random.seed(seed)
    trio._core._run._r.seed(seed)


def simulate(scenario: Scenario, client: Client, seed: int) -> Run:
    """Run ``client`` through ``scenario`` with ``seed`` (same seed: same arrivals)."""
    _seed_everything(seed)
    load_rng = random.Random(seed)
    times = arrivals(scenario, load_rng)
    n = len(times)
    ends = [0.0] * n
    ok = [False] * n
    provider_box: list[Provider] = []

    async def main() -> None:
        t0 = trio.current_time()
        provider = Provider(scenario, random.Random(seed + 1), t0)
        provider_box.append(provider)
        client_rng = random.Random(seed + 2)
        async with client.make(provider, client_rng) as call:

            async def one(i: int) -> None:
                try:
                    ok[i] = await call()
                except Exception:
                    ok[i] = False
                ends[i] = trio.current_time() - t0

            async with trio.open_nursery() as nursery:
                for i, t in enumerate(times):
                    await trio.sleep_until(t0 + t)
                    nursery.start_soon(one, i)

    # The peers log every retry (stamina warns on each): thousands of lines per run.
    logging.disable(logging.WARNING)
    try:
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    finally:
        logging.disable(logging.NOTSET)
    return Run(scenario, client.label, seed, times, ends, ok, provider_box[0].attempts)
