"""The README's pictures are drawn from the code and kept in step with it.

``docs/diagrams.py --check`` runs here in-process, so a change to ``PIPELINE`` or to the
breaker's ``TRANSITIONS`` that is not redrawn (``python docs/diagrams.py``) fails the suite.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import pytest

from resilient_client._breaker import _circuit
from resilient_client._call import PIPELINE

ROOT = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"


def _load() -> ModuleType:
    # A name no installed package has; dataclasses look the module up in sys.modules.
    name = "resilient_client_docs_diagrams"
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "diagrams.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


diagrams = _load()


def _texts(svg: str) -> str:
    """Every ``<text>`` of the picture, in document order, as one line of words."""
    root = ET.fromstring(svg.encode("utf-8"))
    return " ".join(" ".join((t.text or "").split()) for t in root.iter(f"{SVG}text"))


def _committed(name: str) -> str:
    return (ROOT / "docs" / name).read_text(encoding="utf-8")


def test_the_committed_pictures_are_what_the_code_draws_now() -> None:
    assert diagrams.stale() == [], "run: python docs/diagrams.py"
    assert diagrams.main(["--check"]) == 0


def test_the_check_fails_on_a_picture_that_was_not_redrawn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    diagrams.write(tmp_path)
    assert diagrams.main(["--check", "--dir", str(tmp_path)]) == 0
    picture = tmp_path / diagrams.BREAKER_SVG
    picture.write_text(picture.read_text(encoding="utf-8").replace("half_open", "half-open"))
    (tmp_path / diagrams.PIPELINE_SVG).unlink()
    assert diagrams.main(["--check", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert diagrams.BREAKER_SVG in err and diagrams.PIPELINE_SVG in err


def test_a_changed_pipeline_makes_the_committed_picture_stale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    swapped = (PIPELINE[1], PIPELINE[0], *PIPELINE[2:])
    monkeypatch.setattr(diagrams, "load_pipeline", lambda: swapped)
    assert diagrams.stale() == [diagrams.PIPELINE_SVG]


def test_a_changed_transition_makes_the_committed_picture_stale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [tuple(row) for row in _circuit.TRANSITIONS]
    rows[0] = (rows[0][0], rows[0][1], "a new rule")
    monkeypatch.setattr(_circuit, "TRANSITIONS", tuple(rows))
    assert diagrams.stale() == [diagrams.BREAKER_SVG]


def test_the_pipeline_picture_names_every_strategy_in_order() -> None:
    words = _texts(_committed(diagrams.PIPELINE_SVG))
    positions = [words.index(f"{name} {room}") for name, room, _ in PIPELINE]
    assert positions == sorted(positions)
    for _, _, does in PIPELINE:
        assert " ".join(does.split()) in words
    assert "call span" in words and "attempt span" in words


def test_the_breaker_picture_names_every_state_and_condition() -> None:
    words = _texts(_committed(diagrams.BREAKER_SVG))
    for from_state, to_state, condition in _circuit.TRANSITIONS:
        assert re.search(rf"\b{from_state}\b", words) and re.search(rf"\b{to_state}\b", words)
        assert " ".join(condition.split()) in words
    assert {"closed", "open", "half_open"} <= set(words.split())


@pytest.mark.parametrize("name", ["pipeline.svg", "breaker-states.svg"])
def test_a_picture_is_self_contained(name: str) -> None:
    svg = _committed(name)
    ET.fromstring(svg.encode("utf-8"))
    assert "<script" not in svg and "@import" not in svg and "@font-face" not in svg
    assert "href" not in svg
    assert re.findall(r"url\(([^)]*)\)", svg) and all(
        ref.startswith("#") for ref in re.findall(r"url\(([^)]*)\)", svg)
    )
    assert set(re.findall(r"font-family:\s*([^;]+);", svg)) == {"sans-serif", "monospace"}


def test_drawing_twice_gives_the_same_bytes() -> None:
    assert diagrams.drawings() == diagrams.drawings()


def test_a_state_the_drawing_cannot_place_is_refused() -> None:
    with pytest.raises(ValueError, match="forced_open"):
        diagrams.draw_breaker([("closed", "forced_open", "an operator forces it")])
