"""httpx's own test suite, run against plain httpx and against our classes, compared per test.

::

    .venv/bin/python tests/conformance/rc_conformance.py   # prints counts; exit 1: a regression

The sdist of the installed httpx (it ships ``tests/``) is fetched once with pip into a
cache folder (``RC_CONFORMANCE_CACHE``, default ``<tempdir>/resilient-client-conformance``),
its ``tests/`` and ``pyproject.toml`` (the suite's pytest configuration) are extracted
beside it, and pytest runs them in a subprocess three times, with the plugin
``rc_conformance_plugin.py`` injected (see there for the modes and the socket guard):
``plain`` (the baseline), ``client`` and ``transport``. Tests marked ``network`` are
deselected; the guard refuses anything else that tries to leave loopback.

A *regression* is a test that passes on plain httpx but not in a resilient mode. Each
must be listed in ``allowlist.toml`` - an intended difference, with its reason and the
README line documenting it - or the run fails. An allowlist entry whose tests no longer
regress is stale and fails the run too, so the list holds only differences that exist.

The suite's own test dependencies (``CONFORMANCE_REQUIREMENTS``, the sdist's extras and
the imports of its tests; the project's ``conformance`` extra) are installed with pip if
missing. httpx's test server listens on 127.0.0.1:8000, so the modes run one after another.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement  # pytest's own dependency

HERE = Path(__file__).resolve().parent
ALLOWLIST = HERE / "allowlist.toml"
PLUGIN = "rc_conformance_plugin"
MODES = ("plain", "client", "transport")
RESILIENT_MODES = ("client", "transport")

# httpx 0.28's test requirements: its optional extras (brotli, zstd, http2, socks, cli,
# as its pyproject pins them) and what its tests import (chardet, trustme - which brings
# cryptography -, uvicorn, trio). Distribution name -> requirement.
CONFORMANCE_REQUIREMENTS = {
    "brotli": "brotli",
    "zstandard": "zstandard>=0.18.0",
    "h2": "h2>=3,<5",
    "socksio": "socksio==1.*",
    "rich": "rich>=10,<14",
    "click": "click==8.*",
    "pygments": "pygments==2.*",
    "chardet": "chardet==5.*",  # httpx's own pin: its autodetect tests expect 5's guesses
    "trustme": "trustme",
    "uvicorn": "uvicorn",
    "trio": "trio",
    "pytest": "pytest",
}

# Where httpx's test server (its conftest's uvicorn ``Config`` default) listens.
SERVER_ADDRESS = ("127.0.0.1", 8000)


class ConformanceSetupError(RuntimeError):
    """The suite could not be fetched, extracted or run (not a conformance failure)."""


@dataclass(frozen=True)
class Difference:
    """One allowlisted, documented difference: the tests it explains, in which modes."""

    tests: tuple[str, ...]
    modes: tuple[str, ...]
    reason: str
    readme: str


@dataclass
class ModeResult:
    mode: str
    outcomes: dict[str, str]
    refused: dict[str, list[str]]
    seconds: float

    def count(self, outcome: str) -> int:
        return sum(1 for value in self.outcomes.values() if value == outcome)

    def counts(self) -> dict[str, int]:
        return {name: self.count(name) for name in ("passed", "failed", "error", "skipped")}


@dataclass
class Comparison:
    """What a run found: each mode's outcomes, and how the resilient modes differ."""

    library: str
    version: str
    results: dict[str, ModeResult]
    allowlist: list[Difference]
    regressions: dict[str, list[str]] = field(default_factory=dict)  # mode -> unexpected
    allowed: dict[str, list[str]] = field(default_factory=dict)  # mode -> allowlisted
    stale: list[tuple[str, str]] = field(default_factory=list)  # (mode, test) no longer differ
    improvements: dict[str, list[str]] = field(default_factory=dict)  # fail plain, pass ours
    flaky: dict[str, list[str]] = field(default_factory=dict)  # regressed once, not again
    unstable: list[str] = field(default_factory=list)  # flaky on plain httpx: not compared

    @property
    def refused(self) -> dict[str, dict[str, list[str]]]:
        return {mode: result.refused for mode, result in self.results.items() if result.refused}

    @property
    def ok(self) -> bool:
        return not (any(self.regressions.values()) or self.stale or self.refused)


def load_unstable(path: Path = ALLOWLIST) -> set[str]:
    """Tests the allowlist file names as unstable on plain httpx itself: not compared."""
    with path.open("rb") as file:
        data = tomllib.load(file)
    unstable: set[str] = set()
    for index, entry in enumerate(data.get("unstable", [])):
        if not entry.get("reason", "").strip() or not entry.get("tests"):
            raise ValueError(f"{path.name}: unstable #{index + 1} needs tests and a reason")
        unstable.update(entry["tests"])
    return unstable


def load_allowlist(path: Path = ALLOWLIST) -> list[Difference]:
    """The allowlist's entries; ``ValueError`` naming the entry if one is malformed."""
    with path.open("rb") as file:
        data = tomllib.load(file)
    differences = []
    for index, entry in enumerate(data.get("difference", [])):
        where = f"{path.name}: difference #{index + 1}"
        missing = {"tests", "modes", "reason", "readme"} - entry.keys()
        if missing:
            raise ValueError(f"{where}: missing {sorted(missing)}")
        modes = tuple(entry["modes"])
        if not set(modes) <= set(RESILIENT_MODES):
            raise ValueError(f"{where}: modes must be among {RESILIENT_MODES}")
        differences.append(
            Difference(tuple(entry["tests"]), modes, entry["reason"].strip(), entry["readme"])
        )
    return differences


# -- fetching the suite --------------------------------------------------------------


def cache_dir() -> Path:
    path = Path(
        os.environ.get("RC_CONFORMANCE_CACHE")
        or Path(tempfile.gettempdir()) / "resilient-client-conformance"
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


def sdist(library: str, version: str, cache: Path) -> Path:
    """The library's sdist, downloaded with pip into ``cache`` unless already there."""
    # PyPI's sdist names normalise the project name (PEP 625): httpx-0.28.1.tar.gz.
    stem = f"{library.replace('-', '_')}-{version}"
    found = sorted(cache.glob(f"{stem}.tar.gz"))
    if found:
        return found[0]
    command = [
        *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"),
        *("--no-binary", ":all:", f"{library}=={version}", "-d", str(cache)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = sorted(cache.glob(f"{stem}.tar.gz"))
    if done.returncode != 0 or not found:
        raise ConformanceSetupError(
            f"pip could not download the {library} {version} sdist: {done.stderr.strip()[-500:]}"
        )
    return found[0]


def sdist_test_files(archive: Path) -> list[str]:
    """The paths under the sdist's top-level ``tests/`` folder (empty if it ships none)."""
    with tarfile.open(archive) as tar:
        return [
            name
            for name in tar.getnames()
            if len(parts := name.split("/")) > 2 and parts[1] == "tests"
        ]


def extract_suite(archive: Path, cache: Path) -> Path:
    """``tests/`` and ``pyproject.toml`` of the sdist, extracted (once) beside it.

    The library's own package is not extracted: the suite must import the installed one,
    the one our classes subclass.
    """
    target = cache / archive.name.removesuffix(".tar.gz")
    if (target / "tests").is_dir() and (target / "pyproject.toml").is_file():
        return target
    staging = Path(tempfile.mkdtemp(dir=cache))
    with tarfile.open(archive) as tar:
        members = [
            member
            for member in tar.getmembers()
            if (parts := member.name.split("/"))[1:2] == ["tests"]
            or parts[1:] == ["pyproject.toml"]
        ]
        if not any(member.name.split("/")[1] == "tests" for member in members):
            raise ConformanceSetupError(f"{archive.name} ships no tests/")
        for member in members:
            member.name = member.name.split("/", 1)[1]
        tar.extractall(staging, members=members, filter="data")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def install_missing_requirements() -> list[str]:
    """Install with pip the suite's requirements that are missing or at a version outside
    their pin; returns what it installed."""
    missing = []
    for distribution, requirement in CONFORMANCE_REQUIREMENTS.items():
        try:
            installed = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            missing.append(requirement)
            continue
        if not Requirement(requirement).specifier.contains(installed, prereleases=True):
            missing.append(requirement)
    if missing:
        command = [sys.executable, "-m", "pip", "install", "--quiet", *missing]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ConformanceSetupError(f"pip install {missing} failed: {done.stderr[-500:]}")
    return missing


# -- running it ------------------------------------------------------------------------


def _server_address_free() -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(SERVER_ADDRESS)
        except OSError:
            return False
    return True


def run_mode(suite: Path, mode: str, *, select: tuple[str, ...] = ()) -> ModeResult:
    """Run the suite once in ``mode``; its outcome per test id. ``select``: test ids or other
    pytest arguments (default: all of ``tests/``)."""
    if not _server_address_free():
        raise ConformanceSetupError(
            f"{SERVER_ADDRESS[0]}:{SERVER_ADDRESS[1]} is taken: httpx's test server needs it"
        )
    handle, name = tempfile.mkstemp(prefix=f"report-{mode}-", suffix=".json", dir=suite)
    os.close(handle)
    report = Path(name)
    report.unlink()  # the plugin writes it when the session ends
    env = {
        **os.environ,
        "RC_CONFORMANCE_MODE": mode,
        "RC_CONFORMANCE_REPORT": str(report),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
    }
    command = [
        *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"),
        # httpx's suite runs its async tests on anyio's plugin, under asyncio and trio.
        *("-p", "no:asyncio", "-p", PLUGIN),
        *("-c", str(suite / "pyproject.toml"), "--rootdir", str(suite)),
        *("-m", "not network", "-o", "console_output_style=classic"),
        *(select or ("tests",)),
    ]
    started = time.monotonic()
    done = subprocess.run(command, cwd=suite, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if done.returncode not in (0, 1) or not report.is_file():
        tail = (done.stdout + done.stderr).strip()[-2000:]
        raise ConformanceSetupError(f"pytest ({mode}) exited {done.returncode}:\n{tail}")
    data: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    report.unlink()
    return ModeResult(mode, data["outcomes"], data["refused"], seconds)


def compare(
    library: str,
    version: str,
    results: dict[str, ModeResult],
    allowlist: list[Difference],
    unstable: frozenset[str] | set[str] = frozenset(),
) -> Comparison:
    """Regressions per resilient mode, split into allowlisted and unexpected."""
    comparison = Comparison(library, version, results, allowlist)
    comparison.unstable = sorted(unstable)
    plain = {t: o for t, o in results["plain"].outcomes.items() if t not in unstable}
    for mode in RESILIENT_MODES:
        if mode not in results:
            continue
        ours = results[mode].outcomes
        allowed_here = {test for d in allowlist if mode in d.modes for test in d.tests}
        regressed = sorted(t for t, o in plain.items() if o == "passed" and ours.get(t) != "passed")
        comparison.allowed[mode] = [t for t in regressed if t in allowed_here]
        comparison.regressions[mode] = [t for t in regressed if t not in allowed_here]
        comparison.stale.extend((mode, t) for t in sorted(allowed_here - set(regressed)))
        comparison.improvements[mode] = sorted(
            t for t, o in ours.items() if o == "passed" and plain.get(t) != "passed"
        )
    return comparison


def run(
    modes: tuple[str, ...] = MODES, *, library: str = "httpx", select: tuple[str, ...] = ()
) -> Comparison:
    """Fetch, extract and run the installed ``library``'s suite in each of ``modes``."""
    version = importlib.metadata.version(library)
    cache = cache_dir()
    suite = extract_suite(sdist(library, version, cache), cache)
    install_missing_requirements()
    results = {mode: run_mode(suite, mode, select=select) for mode in modes}
    comparison = compare(library, version, results, load_allowlist(), load_unstable())
    confirm(comparison, suite)
    return comparison


def confirm(comparison: Comparison, suite: Path) -> None:
    """Run each unexpected regression once more, on plain httpx and in its mode; keep only
    those that pass on plain httpx and fail on ours again (a timing test may flake once on
    two busy cores; a real difference does not go away)."""
    for mode, tests in comparison.regressions.items():
        if not tests:
            continue
        again = {m: run_mode(suite, m, select=tuple(tests)).outcomes for m in ("plain", mode)}
        kept = [
            t for t in tests if again["plain"].get(t) == "passed" and again[mode].get(t) != "passed"
        ]
        comparison.flaky[mode] = [t for t in tests if t not in kept]
        comparison.regressions[mode] = kept


def summary(comparison: Comparison) -> str:
    """The counts per mode, then every unexpected regression, stale entry and refusal."""
    lines = [f"{comparison.library} {comparison.version} test suite, per mode:"]
    for mode, result in comparison.results.items():
        counts = ", ".join(f"{n} {name}" for name, n in result.counts().items())
        lines.append(f"  {mode:<9} {counts} ({result.seconds:.0f} s)")
    if comparison.unstable:
        lines.append(f"  not compared, unstable on plain httpx: {', '.join(comparison.unstable)}")
    for mode in comparison.regressions:
        lines.append(
            f"  {mode}: {len(comparison.allowed[mode])} documented differences, "
            f"{len(comparison.regressions[mode])} regressions, "
            f"{len(comparison.improvements[mode])} failing on plain httpx but passing"
        )
    for mode, tests in comparison.regressions.items():
        outcomes = comparison.results[mode].outcomes
        lines += [f"REGRESSION ({mode}) {t} [{outcomes.get(t, 'missing')}]" for t in tests]
    for mode, tests in comparison.flaky.items():
        lines += [f"FLAKY ({mode}) {t}: regressed once, not when run again" for t in tests]
    lines += [
        f"STALE allowlist entry ({mode}) {t}: it no longer differs" for mode, t in comparison.stale
    ]
    for mode, refused in comparison.refused.items():
        lines += [f"REFUSED ({mode}) {t}: {', '.join(what)}" for t, what in refused.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--mode", action="append", choices=MODES, help="default: all three")
    parser.add_argument("--json", type=Path, help="also write every outcome here")
    parser.add_argument("pytest_args", nargs="*", help="passed on to pytest (after --)")
    args = parser.parse_args(argv)
    modes = tuple(args.mode or MODES)
    if "plain" not in modes:
        modes = ("plain", *modes)
    try:
        comparison = run(modes, select=tuple(args.pytest_args))
    except ConformanceSetupError as exc:
        print(f"conformance run could not run: {exc}", file=sys.stderr)
        return 2
    print(summary(comparison))
    if args.json:
        args.json.write_text(
            json.dumps({m: r.outcomes for m, r in comparison.results.items()}, indent=1)
        )
    return 0 if comparison.ok else 1


if __name__ == "__main__":
    sys.exit(main())
