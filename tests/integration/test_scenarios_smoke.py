"""The scenario benchmark's reduced set, run as users run it, and what must hold in it.

Not timed: the figures are virtual-time outcomes, the same on any machine for a seed.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "scenarios.py"
QUICK = ("random20", "outage")
NO_RETRIES = "httpx, no retries"
PEERS = ("httpx-retries", "stamina", "tenacity")


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("scenarios")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--jobs", "1", "--out", str(folder)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return folder


@pytest.fixture(scope="module")
def rows(out: Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads((out / "results.json").read_text())
    return records


def _row(rows: list[dict[str, Any]], scenario: str, client: str) -> dict[str, Any]:
    (found,) = [r for r in rows if r["scenario"] == scenario and r["client"] == client]
    return found


def test_the_table_has_a_section_per_scenario_and_a_row_per_client(
    out: Path, rows: list[dict[str, Any]]
) -> None:
    table = (out / "table.md").read_text()
    clients = sorted({r["client"] for r in rows})
    assert {"ours (defaults)", "ours, breaker=None", NO_RETRIES} <= set(clients)
    sections = table.split("#### ")[1:]
    assert len(sections) == len(QUICK)
    for section in sections:
        lines = [line for line in section.splitlines() if line.startswith("| ")]
        assert lines[0].startswith("| client | success % |")
        assert sorted(line.split(" | ")[0][2:] for line in lines[1:]) == clients
        assert all(line.count("|") == 10 for line in lines)
    assert {r["scenario"] for r in rows} == set(QUICK)
    assert len(rows) == len(QUICK) * len(clients)


def test_without_retries_every_call_is_exactly_one_attempt(rows: list[dict[str, Any]]) -> None:
    for scenario in QUICK:
        assert _row(rows, scenario, NO_RETRIES)["amplification"] == 1.0


def test_the_provider_fails_the_share_of_attempts_it_is_told_to(
    rows: list[dict[str, Any]],
) -> None:
    # 1,000 calls at 20 % failures: no retries succeeds 80 % ± 4 points (3 sigma);
    # two retries make a failure 0.2³ = 0.8 % likely for a client without limits.
    assert 0.76 <= _row(rows, "random20", NO_RETRIES)["success"] <= 0.84
    for row in rows:
        if row["scenario"] == "random20" and row["client"].startswith(PEERS):
            assert row["success"] >= 0.97, row


def test_in_a_full_outage_ours_amplifies_less_than_every_peer(
    rows: list[dict[str, Any]],
) -> None:
    peers = [r for r in rows if r["scenario"] == "outage" and r["client"].startswith(PEERS)]
    if not peers:
        pytest.skip("no peer installed (the bench extra)")
    ours = _row(rows, "outage", "ours (defaults)")["amplification"]
    budget_only = _row(rows, "outage", "ours, breaker=None")["amplification"]
    assert all(ours < r["amplification"] and budget_only < r["amplification"] for r in peers)
    # At most what the budget grants: its 10 s window also holds the 5 s before the
    # outage, so 1 + 0.25 x 2 + a reserve of 10 for ~500 calls = 1.52, give or take the
    # arrivals' noise.
    assert max(ours, budget_only) <= 1.6
    assert min(r["amplification"] for r in peers) > 2.0  # every peer retries every call


def test_within_two_seconds_of_the_outage_the_calls_succeed_again(
    rows: list[dict[str, Any]],
) -> None:
    outage = [row for row in rows if row["scenario"] == "outage"]
    assert "ours (defaults)" in {row["client"] for row in outage}
    for row in outage:
        assert row["recovery99"] is not None and row["recovery99"] <= 2.0, row


def test_the_plots_are_written(out: Path) -> None:
    pytest.importorskip("matplotlib")
    for scenario in QUICK:
        assert (out / f"{scenario}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_seed_repeats_a_run_exactly() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        model = importlib.import_module("scenarios.model")
        clients = importlib.import_module("scenarios.clients")
        sim = importlib.import_module("scenarios.sim")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    outage = next(s for s in model.QUICK if s.name == "outage")
    ours = next(c for c in clients.CLIENTS if c.label == "ours (defaults)")
    first, second = sim.simulate(outage, ours, 7), sim.simulate(outage, ours, 7)
    assert first.ok == second.ok and first.attempts == second.attempts
    assert first.ends == second.ends
