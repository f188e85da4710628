"""Per-call CPU work of the default pipeline against raw httpx, counted, not timed.

``overhead.py`` times calls; on a shared 2-core machine its ratios move by a few
hundredths from run to run, more than most single changes are worth. This script runs
each case under valgrind's cachegrind at two call counts and reports the difference per
call: instructions, simulated L1 instruction and data cache misses, and simulated branch
mispredictions. Runs of one tree repeat closely whatever else the machine is doing, but
the same code run from another path (or another environment) moves by up to ~5,000
instructions per call, as the interpreter hashes and copies path strings: compare trees
checked out at paths of the same length, in one session.

They are a model, not the CPU: a raw httpx call over MockTransport is ~570,000
instructions but also ~15,000 mispredicted branches and ~13,000 instruction-cache
misses, and those, not the instruction count, dominate its time. Cutting instructions
alone moves the timed ratio less than their share suggests; read both scripts.

    python benchmarks/instructions.py            # needs valgrind (apt-get install valgrind)
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys

import httpx
from overhead import MOCK_URL, async_round, mock_transport, sync_round

import resilient_client as rc

FEW, MANY = 300, 1300  # calls per run: the difference is MANY - FEW calls' work
COUNTERS = {
    "instructions": r"I\s+refs:\s+([\d,]+)",
    "I1 misses": r"I1\s+misses:\s+([\d,]+)",
    "D1 misses": r"D1\s+misses:\s+([\d,]+)",
    "mispredicts": r"Mispredicts:\s+([\d,]+)",
}
CLIENTS = {
    ("raw", "sync"): httpx.Client,
    ("raw", "async"): httpx.AsyncClient,
    ("pipeline", "sync"): rc.ResilientClient,
    ("pipeline", "async"): rc.AsyncResilientClient,
}


def calls(who: str, mode: str, count: int) -> None:
    """The measured work: ``count`` GETs through one client (run under valgrind), with
    ``overhead.py``'s transport and call loop, so both scripts measure the same calls."""
    client = CLIENTS[who, mode](transport=mock_transport(httpx))
    if mode == "sync":
        sync_round(client, MOCK_URL, count)
    else:
        async_round(asyncio.new_event_loop(), client, MOCK_URL, count, 1)


def counted(who: str, mode: str, count: int) -> dict[str, int]:
    command = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=yes",
        "--branch-sim=yes",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--calls",
        who,
        mode,
        str(count),
    ]
    # A fixed hash seed: dict layouts, and so the counts, are the same every run.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    report = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stderr
    values = {}
    for name, pattern in COUNTERS.items():
        found = re.search(pattern, report)
        if found is None:
            raise RuntimeError(f"valgrind printed no {name!r} count:\n{report[-2000:]}")
        values[name] = int(found.group(1).replace(",", ""))
    return values


def per_call(who: str, mode: str) -> dict[str, float]:
    few, many = counted(who, mode, FEW), counted(who, mode, MANY)
    return {name: (many[name] - few[name]) / (MANY - FEW) for name in COUNTERS}


def main() -> None:
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    print(f"per call over httpx.MockTransport ({MANY - FEW} calls' difference)")
    print(f"{'':>6} {'counter':<13} {'raw':>10} {'pipeline':>10} {'added':>9} {'ratio':>6}")
    for mode in ("sync", "async"):
        raw, ours = per_call("raw", mode), per_call("pipeline", mode)
        for name in COUNTERS:
            added = ours[name] - raw[name]
            print(
                f"{mode:>6} {name:<13} {raw[name]:>10,.0f} {ours[name]:>10,.0f} "
                f"{added:>+9,.0f} {ours[name] / raw[name]:>6.3f}"
            )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--calls"]:
        calls(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
