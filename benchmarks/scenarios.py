"""The scenario benchmark: how each client behaves when the provider does not.

Scenarios (``scenarios/model.py``): random 20 % and 50 % 503s at 100 calls/s; a full
outage of 10 s, then recovery; an overload spike (0.8C → 1.5C for 20 s → 0.8C, with a
capacity C of 200 calls/s) against a fail-fast provider and against a queueing one (the
metastable-collapse case); a slow tail (2 % of attempts stall past the timeout); a 429
storm with ``Retry-After``. Clients (``scenarios/clients.py``): ours with its defaults
(the ones this benchmark chose), ours without a breaker (the retry budget only),
httpx-retries, stamina, tenacity and plain httpx without retries - every one with 3
attempts, a first retry delay of up to 0.25 s doubling per retry, and a 5 s timeout.

The provider is an ``httpx.AsyncBaseTransport`` under every client, and everything runs
on trio's virtual clock, so the 70 s scenarios cost seconds of CPU and repeat exactly for
a seed. Output, into ``--out`` (default ``docs/scenarios``): ``table.md`` (one table per
scenario; columns in ``scenarios/report.py``), ``results.json`` (one record per run),
and ``<scenario>.png`` (goodput and attempts over time per client, first seed). With
``--readme README.md`` the table also replaces the text between the README's
``<!-- scenarios:begin -->`` and ``<!-- scenarios:end -->`` markers.

Run: ``python benchmarks/scenarios.py [--quick] [--seed N ...] [--only NAME ...]
[--jobs N] [--out DIR] [--no-plots] [--readme README.md]``; ``--sweep budget|breaker``
writes a trade-off table (``sweep-<name>.md``): each default but one varied.
Needs the ``bench`` extra (httpx-retries, stamina, matplotlib); a peer that is not
installed is left out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scenarios.clients import CLIENTS, SWEEPS, Client, available
from scenarios.goals import check
from scenarios.model import QUICK, SCENARIOS, Scenario
from scenarios.report import figures, markdown, plot, sweep_markdown
from scenarios.sim import Run, simulate

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- scenarios:begin -->", "<!-- scenarios:end -->"


JUDGED = ("ours (defaults)",)
"""The clients whose rows are checked against issue 23's goals."""


def _clients(group: str) -> tuple[Client, ...]:
    """``"main"``: the table's clients; else a sweep's variants (built in each worker:
    closures do not cross process boundaries)."""
    return CLIENTS if group == "main" else SWEEPS[group][1]()


def _job(args: tuple[bool, str, str, int, int]) -> Run:
    quick, scenario, group, client, seed = args
    chosen = {s.name: s for s in (QUICK if quick else SCENARIOS)}[scenario]
    return simulate(chosen, _clients(group)[client], seed)


def _run(jobs: list[tuple[bool, str, str, int, int]], workers: int) -> list[Run]:
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            return list(pool.map(_job, jobs))
    return [_job(job) for job in jobs]


def _sweep(name: str, seeds: list[int], workers: int, out: Path) -> str:
    """Run sweep ``name`` (with plain httpx and our defaults as reference) into
    ``sweep-<name>.md``; returns the table."""
    scenarios, _ = SWEEPS[name]
    variants = _clients(name)
    reference = [i for i, c in enumerate(CLIENTS) if c.label in (*JUDGED, "httpx, no retries")]
    jobs = [
        (False, s, name, i, seed) for s in scenarios for seed in seeds for i in range(len(variants))
    ]
    jobs += [(False, s, "main", i, seed) for s in scenarios for seed in seeds for i in reference]
    rows = [figures(run) for run in _run(jobs, workers)]
    table = sweep_markdown(rows, scenarios, [CLIENTS[i].label for i in reference])
    (out / f"sweep-{name}.md").write_text(table + "\n", encoding="utf-8")
    return table


def _matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the reduced set (smoke test)")
    parser.add_argument("--seed", type=int, action="append", help="repeatable; default 1 and 2")
    parser.add_argument("--only", action="append", help="run only this scenario (repeatable)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "scenarios")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--readme", type=Path, help="replace the table between its markers")
    parser.add_argument("--sweep", choices=sorted(SWEEPS), help="a trade-off table instead")
    args = parser.parse_args(argv)

    seeds: list[int] = args.seed or ([1] if args.quick else [1, 2])
    args.out.mkdir(parents=True, exist_ok=True)
    if args.sweep:
        print(_sweep(args.sweep, seeds, args.jobs, args.out))
        return 0
    chosen: list[Scenario] = [
        s for s in (QUICK if args.quick else SCENARIOS) if not args.only or s.name in args.only
    ]
    clients = [i for i, c in enumerate(CLIENTS) if available(c)]
    missing = [c.label for c in CLIENTS if not available(c)]
    if missing:
        print(f"not installed, left out: {', '.join(missing)}", file=sys.stderr)
    jobs = [
        (args.quick, s.name, "main", c, seed) for s in chosen for seed in seeds for c in clients
    ]

    began = time.monotonic()
    runs = _run(jobs, args.jobs)
    rows = [figures(run) for run in runs]

    table = markdown(rows, {s.name: s.title for s in chosen}, seeds)
    verdicts = [(label, check(rows, label)) for label in JUDGED]
    if not args.quick and any(lines for _, lines in verdicts):
        table += "\n#### Issue 23's goals\n\n" + "\n".join(
            f"- {label}: " + "; ".join(lines) for label, lines in verdicts if lines
        )
    (args.out / "table.md").write_text(table + "\n", encoding="utf-8")
    records = [row.as_dict() for row in rows]
    (args.out / "results.json").write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
    if not args.no_plots and _matplotlib():
        for scenario in chosen:
            first = [r for r in runs if r.scenario.name == scenario.name and r.seed == seeds[0]]
            plot(first, args.out / f"{scenario.name}.png")
    if args.readme is not None:
        text = args.readme.read_text(encoding="utf-8")
        block = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
        if not block.search(text):
            print(f"{args.readme}: no {BEGIN} … {END} markers, left as it is", file=sys.stderr)
        else:
            new = f"{BEGIN}\n{table}\n{END}"
            args.readme.write_text(block.sub(lambda _: new, text), encoding="utf-8")
    print(table)
    print(f"{len(runs)} runs in {time.monotonic() - began:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
