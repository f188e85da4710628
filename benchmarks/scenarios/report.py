"""From runs to figures: the table's columns, the Markdown table, the plots.

Columns, over the scenario's focus window (the disturbance; the whole run if none),
counting each call in the window its start falls in:

- success: share of calls that ended in a 2xx;
- after: success of the calls started after the disturbance ended;
- amplification: attempts the provider received ÷ calls (1.0 = no extra load);
- goodput: successful calls per second;
- p50 / p99: latency of the successful calls, in ms;
- recovery 95 % / 99 %: seconds from the end of the disturbance until every later
  second (calls by start) succeeds at least that often ("> N s": not by the run's end).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

from .sim import Run

__all__ = ["Figures", "figures", "markdown", "plot", "sweep_markdown"]

BIN = 1.0


@dataclass(frozen=True)
class Figures:
    scenario: str
    client: str
    seed: int
    calls: int
    success: float
    after: float | None
    amplification: float
    goodput: float
    p50_ms: float | None
    p99_ms: float | None
    recovery95: float | None
    recovery99: float | None
    tail: float
    """Seconds from the disturbance's end to the run's end (the recovery horizon)."""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _quantile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


def _recovery(run: Run, end: float, threshold: float) -> float | None:
    """Seconds after ``end`` from which every 1 s bin succeeds ≥ ``threshold``; None: never."""
    horizon = run.scenario.duration
    bins = max(1, math.ceil((horizon - end) / BIN))
    calls = [0] * bins
    good = [0] * bins
    for start, ok in zip(run.starts, run.ok, strict=True):
        if start >= end:
            b = min(bins - 1, int((start - end) / BIN))
            calls[b] += 1
            good[b] += ok
    recovered: int | None = None
    for b in range(bins - 1, -1, -1):
        if calls[b] and good[b] < threshold * calls[b]:
            break
        recovered = b
    return None if recovered is None else recovered * BIN


def figures(run: Run) -> Figures:
    s = run.scenario
    lo, hi = s.focus if s.focus is not None else (0.0, s.duration)
    inside = [i for i, t in enumerate(run.starts) if lo <= t < hi]
    calls = len(inside)
    wins = [i for i in inside if run.ok[i]]
    latencies = sorted((run.ends[i] - run.starts[i]) * 1000.0 for i in wins)
    attempts = sum(1 for t in run.attempts if lo <= t < hi)
    after: float | None = None
    r95 = r99 = None
    if s.focus is not None:
        later = [ok for t, ok in zip(run.starts, run.ok, strict=True) if t >= hi]
        after = sum(later) / len(later) if later else None
        r95 = _recovery(run, hi, 0.95)
        r99 = _recovery(run, hi, 0.99)
    return Figures(
        scenario=s.name,
        client=run.label,
        seed=run.seed,
        calls=calls,
        success=len(wins) / calls if calls else 0.0,
        after=after,
        amplification=attempts / calls if calls else 0.0,
        goodput=len(wins) / (hi - lo),
        p50_ms=_quantile(latencies, 0.50),
        p99_ms=_quantile(latencies, 0.99),
        recovery95=r95,
        recovery99=r99,
        tail=s.duration - hi,
    )


def _spread(values: list[float | None], fmt: str, scale: float = 1.0) -> str:
    known = [v * scale for v in values if v is not None]
    if not known:
        return "—"
    low, high = format(min(known), fmt), format(max(known), fmt)
    return low if low == high else f"{low}–{high}"


def _recovery_cell(rows: list[Figures], key: str) -> str:
    values = [getattr(r, key) for r in rows]
    if all(v is None for v in values) and rows[0].after is None:
        return "—"
    if any(v is None for v in values):
        return f"> {rows[0].tail:g} s"
    return _spread(values, ".0f") + " s"


HEADER = (
    "| client | success % | after % | amplification | goodput /s | p50 ms | p99 ms "
    "| recovery 95 % | recovery 99 % |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def markdown(rows: list[Figures], titles: dict[str, str], seeds: list[int]) -> str:
    """One table per scenario, a row per client; a cell spanning seeds shows min–max."""
    out: list[str] = [
        f"Seeds {', '.join(map(str, seeds))}; a range is the lowest–highest over the seeds.",
        "",
    ]
    for scenario, title in titles.items():
        out += [f"#### {title}", "", HEADER]
        clients = dict.fromkeys(r.client for r in rows if r.scenario == scenario)
        for client in clients:
            mine = [r for r in rows if r.scenario == scenario and r.client == client]
            out.append(
                f"| {client} | {_spread([r.success for r in mine], '.1f', 100)} "
                f"| {_spread([r.after for r in mine], '.1f', 100)} "
                f"| {_spread([r.amplification for r in mine], '.2f')}× "
                f"| {_spread([r.goodput for r in mine], '.0f')} "
                f"| {_spread([r.p50_ms for r in mine], '.0f')} "
                f"| {_spread([r.p99_ms for r in mine], '.0f')} "
                f"| {_recovery_cell(mine, 'recovery95')} "
                f"| {_recovery_cell(mine, 'recovery99')} |"
            )
        out.append("")
    return "\n".join(out)


# What a sweep's table shows of each scenario: (column title, Figures field, format).
_SWEEP_COLUMNS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "random20": (("20 %: success %", "success", "%"),),
    "random50": (("50 %: success %", "success", "%"), ("50 %: ampl.", "amplification", "x")),
    "outage": (
        ("outage: ampl.", "amplification", "x"),
        ("outage: back to 99 %", "recovery99", "s"),
    ),
    "failfast": (("fail-fast spike: success %", "success", "%"),),
    "queueing": (("queueing: back to 95 %", "recovery95", "s"),),
}


def _cell(rows: list[Figures], field: str, kind: str) -> str:
    if kind == "%":
        return _spread([getattr(r, field) for r in rows], ".1f", 100)
    if kind == "x":
        return _spread([getattr(r, field) for r in rows], ".2f") + "×"
    return _recovery_cell(rows, field)


def sweep_markdown(rows: list[Figures], scenarios: tuple[str, ...], reference: list[str]) -> str:
    """A row per variant (and per ``reference`` client), a few columns per scenario."""
    columns = [c for s in scenarios for c in _SWEEP_COLUMNS.get(s, ())]
    scenario_of = {c: s for s in scenarios for c in _SWEEP_COLUMNS.get(s, ())}
    out = [
        "| variant | " + " | ".join(title for title, _, _ in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    variants = [c for c in dict.fromkeys(r.client for r in rows) if c not in reference]
    for client in variants + [c for c in reference if any(r.client == c for r in rows)]:
        cells = []
        for column in columns:
            mine = [r for r in rows if r.client == client and r.scenario == scenario_of[column]]
            cells.append(_cell(mine, column[1], column[2]) if mine else "—")
        out.append(f"| {client} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def _series(times: list[float], duration: float) -> list[float]:
    counts = [0.0] * math.ceil(duration / BIN)
    for t in times:
        b = int(t / BIN)
        if b < len(counts):
            counts[b] += 1.0 / BIN
    return counts


def plot(runs: list[Run], path: Path) -> None:
    """Goodput (successful calls/s, by end) and attempts/s over time, a line per client."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenario = runs[0].scenario
    horizon = scenario.duration
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 6), dpi=100)
    for run in runs:
        good = [end for end, ok in zip(run.ends, run.ok, strict=True) if ok]
        xs = [i * BIN for i in range(math.ceil(horizon / BIN))]
        style = {"label": run.label, "linewidth": 1.2, "drawstyle": "steps-post"}
        top.plot(xs, _series(good, horizon), **style)
        bottom.plot(xs, _series(run.attempts, horizon), **style)
    offered = _series(runs[0].starts, horizon)
    xs = [i * BIN for i in range(len(offered))]
    top.plot(
        xs,
        offered,
        color="grey",
        linestyle=":",
        linewidth=1,
        drawstyle="steps-post",
        label="calls offered",
    )
    for axis in (top, bottom):
        if scenario.focus is not None:
            axis.axvspan(*scenario.focus, color="red", alpha=0.08)
        axis.grid(alpha=0.3)
    top.set_ylabel("goodput (ok calls/s)")
    bottom.set_ylabel("attempts/s at the provider")
    bottom.set_xlabel(f"virtual seconds (seed {runs[0].seed})")
    top.set_title(scenario.title, fontsize=10)
    top.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
