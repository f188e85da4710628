"""The type check and the lint the house style requires, run with the suite so that CI
(which runs the README's test command) enforces them as it does the tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINTED = ["resilient_client", "tests", "benchmarks", "examples"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_mypy_strict_finds_nothing(tmp_path: Path) -> None:
    result = _run("mypy", "--strict", "--cache-dir", str(tmp_path), "resilient_client")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_check_finds_nothing() -> None:
    result = _run("ruff", "check", "--no-cache", *LINTED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_leaves_every_file_as_it_is() -> None:
    result = _run("ruff", "format", "--check", "--no-cache", *LINTED)
    assert result.returncode == 0, result.stdout + result.stderr
