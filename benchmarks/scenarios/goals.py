"""Issue 23's goals for our defaults, checked against the figures of a run set.

Each check takes the rows of every client and seed and names a client to judge; it
holds only if it holds for every seed (the worst seed decides).
"""

from __future__ import annotations

from collections.abc import Callable

from .report import Figures

__all__ = ["GOALS", "check"]

NO_RETRIES = "httpx, no retries"
PEERS = ("httpx-retries", "stamina", "tenacity", NO_RETRIES)


def _mine(rows: list[Figures], scenario: str, client: str) -> list[Figures]:
    return [r for r in rows if r.scenario == scenario and r.client == client]


def _random20(rows: list[Figures], client: str) -> str | None:
    mine = _mine(rows, "random20", client)
    if not mine:
        return None
    worst = min(r.success for r in mine)
    return f"{'ok' if worst >= 0.99 else 'MISSED'}: success {worst:.1%} (≥ 99 %)"


def _random50(rows: list[Figures], client: str) -> str | None:
    mine = _mine(rows, "random50", client)
    if not mine:
        return None
    worst = min(r.success for r in mine)
    amp = max(r.amplification for r in mine)
    good = worst >= 0.60 and amp <= 1.3
    return f"{'ok' if good else 'MISSED'}: success {worst:.1%} (≥ 60 %), {amp:.2f}× (≤ 1.3×)"


def _failfast(rows: list[Figures], client: str) -> str | None:
    mine = {r.seed: r.success for r in _mine(rows, "failfast", client)}
    base = {r.seed: r.success for r in _mine(rows, "failfast", NO_RETRIES)}
    if not mine or not base:
        return None
    good = all(mine[s] >= base[s] for s in mine if s in base)
    return (
        f"{'ok' if good else 'MISSED'}: success during the spike "
        f"{min(mine.values()):.1%} vs no retries {min(base.values()):.1%}"
    )


def _recovery(r: Figures) -> float:
    return float("inf") if r.recovery95 is None else r.recovery95


def _queueing(rows: list[Figures], client: str) -> str | None:
    mine = _mine(rows, "queueing", client)
    if not mine:
        return None
    others = [
        r for r in rows if r.scenario == "queueing" and any(r.client.startswith(p) for p in PEERS)
    ]
    if not others:
        return None
    worst = max(_recovery(r) for r in mine)
    best_other = min(_recovery(r) for r in others)
    good = all(_recovery(r) < _recovery(o) for r in mine for o in others if o.seed == r.seed)
    return (
        f"{'ok' if good else 'MISSED'}: recovery to 95 % in {worst:g} s, "
        f"the best peer's {best_other:g} s"
    )


def _outage(rows: list[Figures], client: str) -> str | None:
    mine = _mine(rows, "outage", client)
    if not mine:
        return None
    amp = max(r.amplification for r in mine)
    rec = max(float("inf") if r.recovery99 is None else r.recovery99 for r in mine)
    good = amp <= 1.1 and rec <= 2.0
    return f"{'ok' if good else 'MISSED'}: {amp:.2f}× (≤ 1.1×), back to 99 % in {rec:g} s (≤ 2 s)"


GOALS: dict[str, Callable[[list[Figures], str], str | None]] = {
    "random 20 %": _random20,
    "random 50 %": _random50,
    "fail-fast spike": _failfast,
    "queueing spike": _queueing,
    "full outage": _outage,
}


def check(rows: list[Figures], client: str) -> list[str]:
    """One line per goal the rows can judge, starting ``ok`` or ``MISSED``."""
    lines = []
    for name, goal in GOALS.items():
        verdict = goal(rows, client)
        if verdict is not None:
            lines.append(f"{name}: {verdict}")
    return lines
