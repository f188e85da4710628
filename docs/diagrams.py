"""Draw the README's two pictures from the code: the pipeline and the breaker's states.

::

    python docs/diagrams.py            # write docs/pipeline.svg and docs/breaker-states.svg
    python docs/diagrams.py --check    # exit 1 if a committed picture is not what the code
                                       # draws now (run by tests/unit/test_diagrams.py)

What is drawn comes from data in the package, never from this file:

- ``pipeline.svg``: ``resilient_client._call.PIPELINE``, rows ``(strategy, room, what it
  does to a call)``, outermost first, as a top-down chain of boxes ending at the inner
  transport. The rows after ``retry`` run once per attempt (tinted, with the loop back to
  retry); the telemetry frames show the call span around it all and an attempt span
  around each send.
- ``breaker-states.svg``: ``resilient_client._breaker._circuit.TRANSITIONS``, rows
  ``(from_state, to_state, condition)`` over ``closed``, ``open`` and ``half_open``.

This module does geometry only; the SVG is written by Jinja2 templates in
``docs/templates/`` (Jinja2 is the well-kept templating library behind Flask and Sphinx:
its autoescaping makes every label valid XML, and template inheritance keeps the shared
styles and arrowheads in one place). It is in the ``docs`` extra.

The pictures are self-contained (no external font, script or style; generic
``sans-serif`` and ``monospace`` families) and readable on light and dark pages: every
label sits on an opaque fill of its own, lines are a mid grey that shows on both, and a
``prefers-color-scheme: dark`` rule darkens the fills. Text widths are estimated from a
table a little wider than DejaVu Sans (the widest common sans), never measured, so the
output is the same bytes on every machine.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2

DOCS = Path(__file__).resolve().parent
TEMPLATES = DOCS / "templates"
PIPELINE_SVG = "pipeline.svg"
BREAKER_SVG = "breaker-states.svg"

Row = tuple[str, str, str]

# ----------------------------------------------------------------------------- the data


def load_pipeline() -> tuple[Row, ...]:
    """``resilient_client._call.PIPELINE``, outermost first."""
    from resilient_client._call import PIPELINE

    return tuple(PIPELINE)


def load_transitions() -> tuple[Row, ...]:
    """``resilient_client._breaker._circuit.TRANSITIONS``: ``(from_state, to_state, condition)``."""
    from resilient_client._breaker import _circuit

    return tuple((str(a), str(b), str(c)) for a, b, c in _circuit.TRANSITIONS)


# ---------------------------------------------------------------------------- text sizes

# Advance widths in em, each tier at or a little above DejaVu Sans's widest member.
_TIERS = (
    (set("ijlI.,:;'|!"), 0.32),
    (set("frt ()[]{}-/"), 0.43),
    (set("mwMW@%"), 1.0),
)


def text_width(text: str, size: float, mono: bool = False, bold: bool = False) -> float:
    """An upper estimate of ``text``'s width in px at font ``size`` px."""
    if mono:
        em = 0.62 * len(text)
    else:
        em = sum(
            next((w for chars, w in _TIERS if c in chars), 0.78 if c.isupper() else 0.64)
            for c in text
        )
    return em * size * (1.13 if bold else 1.0)


def wrap(text: str, size: float, width: float) -> list[str]:
    """``text`` in lines of at most ``width`` px (a longer single word gets its own line)."""
    lines: list[str] = []
    for word in text.split():
        if lines and text_width(f"{lines[-1]} {word}", size) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


# ------------------------------------------------------------------------------ geometry


@dataclass(frozen=True)
class Label:
    """Lines of text on an opaque pill centred at (cx, cy)."""

    cx: float
    cy: float
    lines: tuple[str, ...]
    size: float = 13.0
    line_height: float = 17.0
    pad_x: float = 9.0
    pad_y: float = 6.0

    @property
    def width(self) -> float:
        return max(text_width(line, self.size) for line in self.lines) + 2 * self.pad_x

    @property
    def height(self) -> float:
        return len(self.lines) * self.line_height + 2 * self.pad_y

    @property
    def x(self) -> float:
        return self.cx - self.width / 2

    @property
    def y(self) -> float:
        return self.cy - self.height / 2

    def baselines(self) -> list[tuple[float, str]]:
        # A baseline sits about 0.35 em below the middle of its line.
        top = self.y + self.pad_y
        return [
            (top + (i + 0.5) * self.line_height + 0.35 * self.size, line)
            for i, line in enumerate(self.lines)
        ]


def left_label(x: float, cy: float, lines: Sequence[str], **kw: float) -> Label:
    """A label whose left edge is at ``x``."""
    probe = Label(0, cy, tuple(lines), **kw)
    return Label(x + probe.width / 2, cy, tuple(lines), **kw)


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float
    name: str
    room: str
    lines: tuple[str, ...]
    kind: str  # css class: "call", "attempt" or "transport"


@dataclass(frozen=True)
class Canvas:
    width: float
    height: float


def num(value: float) -> str:
    """A coordinate as the SVG gets it: at most one decimal, no trailing zero."""
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["n"] = num
    return env


# ------------------------------------------------------------------------------ pipeline

NAME_SIZE, ROOM_SIZE, DOES_SIZE = 15.0, 12.0, 13.0
BOX_PAD, BOX_GAP, MARGIN = 14.0, 30.0, 16.0
SPAN_LABEL = {"size": 12.0, "line_height": 15.0, "pad_y": 4.0}


def draw_pipeline(rows: Sequence[Row]) -> str:
    """The pipeline as SVG text: one box per row, top to bottom, outermost first."""
    names = [name for name, _, _ in rows]
    loop_from = names.index("retry") if "retry" in names else None
    width = max(
        [440.0]
        + [
            text_width(name, NAME_SIZE, bold=True) + text_width(room, ROOM_SIZE, mono=True) + 48
            for name, room, _ in rows
        ]
    )
    # As wide as the longest description, up to a point; longer ones wrap.
    width = max(width, min(560.0, max(text_width(d, DOES_SIZE) for _, _, d in rows)) + 2 * BOX_PAD)
    does_width = width - 2 * BOX_PAD

    frame_x, frame_y = MARGIN, MARGIN
    x = frame_x + 30
    y = frame_y + 40
    boxes: list[Box] = []
    for i, (name, room, does) in enumerate(rows):
        lines = tuple(wrap(does, DOES_SIZE, does_width))
        h = 30 + 18 * len(lines) + 6
        # The rows after retry run inside its loop, once per attempt.
        per_attempt = loop_from is not None and i > loop_from
        kind = "transport" if i == len(rows) - 1 else "attempt" if per_attempt else "call"
        boxes.append(Box(x, y, width, h, name, room, lines, kind))
        y += h + BOX_GAP
    arrows = [(a.x + a.w / 2, a.y + a.h, b.y) for a, b in itertools.pairwise(boxes)]

    send = boxes[-1]
    attempt_frame = (send.x - 12, send.y - 12, send.w + 24, send.h + 30)
    attempt_label = left_label(
        attempt_frame[0] + 14,
        attempt_frame[1] + attempt_frame[3],
        ["attempt span (CLIENT): one around each send"],
        **SPAN_LABEL,
    )
    call_label = left_label(
        frame_x + 14,
        frame_y,
        ["call span (INTERNAL): one around the whole call, every attempt and wait"],
        **SPAN_LABEL,
    )
    right = x + width
    loop: dict[str, float] | None = None
    loop_label: Label | None = None
    if loop_from is not None:
        back = boxes[loop_from]
        loop_x = right + 40
        loop = {
            "x1": right + 1,
            "y1": send.y + send.h / 2,
            "x": loop_x,
            "y2": back.y + back.h / 2,
            "x2": right + 1,
        }
        loop_label = left_label(
            loop_x + 14,
            (loop["y1"] + loop["y2"]) / 2,
            [
                "every attempt passes",
                f"{names[loop_from + 1]} → {names[-1]};",
                "its outcome goes back to",
                "retry, which waits and sends",
                "again, or ends the call",
            ],
        )
        right = loop_label.x + loop_label.width
    right = max(right, call_label.x + call_label.width)
    frame_w = right + 20 - frame_x
    frame_h = attempt_label.cy + attempt_label.height / 2 + 18 - frame_y
    canvas = Canvas(frame_x + frame_w + MARGIN, frame_y + frame_h + MARGIN)
    return (
        _environment()
        .get_template("pipeline.svg.j2")
        .render(
            canvas=canvas,
            boxes=boxes,
            arrows=arrows,
            frame=(frame_x, frame_y, frame_w, frame_h),
            call_label=call_label,
            attempt_frame=attempt_frame,
            attempt_label=attempt_label,
            loop=loop,
            loop_label=loop_label,
            title="The pipeline: " + " → ".join(names),
        )
    )


# ------------------------------------------------------------------------------- breaker

STATE_SIZE = 15.0
# Where each state sits: a triangle read clockwise from closed, the state a breaker starts in.
STATE_AT = {"closed": (0.0, 0.0), "open": (520.0, 0.0), "half_open": (260.0, 250.0)}
INITIAL = "closed"


@dataclass(frozen=True)
class Node:
    name: str
    cx: float
    cy: float
    w: float
    h: float

    def edge_point(self, toward_x: float, toward_y: float, gap: float = 4.0) -> tuple[float, float]:
        """Where the ray from the centre toward a point leaves this node's rectangle."""
        dx, dy = toward_x - self.cx, toward_y - self.cy
        half_w, half_h = self.w / 2 + gap, self.h / 2 + gap
        scale = min(
            half_w / abs(dx) if dx else math.inf,
            half_h / abs(dy) if dy else math.inf,
        )
        return self.cx + dx * scale, self.cy + dy * scale


@dataclass(frozen=True)
class Edge:
    path: str
    label: Label


def _bezier(p0: tuple[float, float], c: tuple[float, float], p1: tuple[float, float]) -> str:
    return f"M {num(p0[0])} {num(p0[1])} Q {num(c[0])} {num(c[1])} {num(p1[0])} {num(p1[1])}"


def draw_breaker(rows: Sequence[Row]) -> str:
    """The breaker's states as SVG text: one arrow per (from, to) pair, its conditions on it."""
    unknown = {s for a, b, _ in rows for s in (a, b)} - STATE_AT.keys()
    if unknown:
        raise ValueError(f"TRANSITIONS names states this drawing does not place: {unknown}")
    nodes = {
        name: Node(name, x, y, text_width(name, STATE_SIZE, mono=True, bold=True) + 44, 44)
        for name, (x, y) in STATE_AT.items()
    }
    centre_x = sum(n.cx for n in nodes.values()) / len(nodes)
    centre_y = sum(n.cy for n in nodes.values()) / len(nodes)

    conditions: dict[tuple[str, str], list[str]] = {}
    for a, b, condition in rows:
        conditions.setdefault((a, b), []).append(condition)

    edges: list[Edge] = []
    for (a, b), texts in conditions.items():
        lines: list[str] = []
        for text in texts:
            wrapped = wrap(text, 13, 280)
            # Two conditions on one arrow are two bullets, a single one needs none.
            lines += [f"• {wrapped[0]}", *(f"  {w}" for w in wrapped[1:])] if texts[1:] else wrapped
        if a == b:
            edges.append(_self_loop(nodes[a], centre_x, centre_y, lines))
            continue
        n0, n1 = nodes[a], nodes[b]
        mx, my = (n0.cx + n1.cx) / 2, (n0.cy + n1.cy) / 2
        length = math.hypot(n1.cx - n0.cx, n1.cy - n0.cy)
        # The unit normal pointing away from the middle of the picture: single arrows and
        # the first of a pair bend outward, the way back bends inward.
        nx, ny = -(n1.cy - n0.cy) / length, (n1.cx - n0.cx) / length
        if nx * (mx - centre_x) + ny * (my - centre_y) < 0:
            nx, ny = -nx, -ny
        paired = (b, a) in conditions
        outward = not paired or (a, b) < (b, a)
        bend = (70.0 if paired else 40.0) * (1 if outward else -1)
        control = (mx + nx * 2 * bend, my + ny * 2 * bend)
        p0 = n0.edge_point(*control)
        p1 = n1.edge_point(*control, gap=8.0)
        label = Label(mx + nx * bend, my + ny * bend, tuple(lines))
        edges.append(Edge(_bezier(p0, control, p1), label))

    start = nodes[INITIAL]
    initial = (start.cx - start.w / 2 - 46, start.cy, start.cx - start.w / 2 - 8)

    # Shift everything so the leftmost and topmost ink sits at the margin.
    extents_x = [n.cx - n.w / 2 for n in nodes.values()] + [e.label.x for e in edges]
    extents_x.append(initial[0] - 8)
    extents_y = [n.cy - n.h / 2 for n in nodes.values()] + [e.label.y for e in edges]
    dx = MARGIN + 8 - min(extents_x)
    dy = MARGIN + 8 - min(extents_y)
    right = [n.cx + n.w / 2 for n in nodes.values()] + [e.label.x + e.label.width for e in edges]
    bottom = [n.cy + n.h / 2 for n in nodes.values()] + [e.label.y + e.label.height for e in edges]
    canvas = Canvas(max(right) + dx + MARGIN + 8, max(bottom) + dy + MARGIN + 8)
    return (
        _environment()
        .get_template("breaker-states.svg.j2")
        .render(
            canvas=canvas,
            dx=dx,
            dy=dy,
            nodes=list(nodes.values()),
            edges=edges,
            initial=initial,
            title="The breaker's states: " + ", ".join(STATE_AT),
        )
    )


def _self_loop(node: Node, centre_x: float, centre_y: float, lines: list[str]) -> Edge:
    """A loop on the side of ``node`` away from the middle of the picture."""
    away = -1.0 if node.cy <= centre_y else 1.0
    top = node.cy + away * node.h / 2
    x0, x1 = node.cx - node.w / 4, node.cx + node.w / 4
    reach = top + away * 50
    path = (
        f"M {num(x0)} {num(top + away * 4)} C {num(x0 - 20)} {num(reach)} "
        f"{num(x1 + 20)} {num(reach)} {num(x1)} {num(top + away * 8)}"
    )
    label = Label(node.cx, reach + away * (12 + 9 * len(lines)), tuple(lines))
    return Edge(path, label)


# ---------------------------------------------------------------------------------- files


def drawings() -> dict[str, str]:
    """File name → the SVG the code draws now."""
    return {
        PIPELINE_SVG: draw_pipeline(load_pipeline()),
        BREAKER_SVG: draw_breaker(load_transitions()),
    }


def stale(directory: Path = DOCS) -> list[str]:
    """The pictures in ``directory`` that are missing or differ from what the code draws."""
    return [
        name
        for name, svg in drawings().items()
        if not (directory / name).is_file()
        or (directory / name).read_bytes() != svg.encode("utf-8")
    ]


def write(directory: Path = DOCS) -> list[str]:
    """Draw every picture into ``directory``; the names written."""
    written = []
    for name, svg in drawings().items():
        (directory / name).write_bytes(svg.encode("utf-8"))
        written.append(name)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a picture is stale")
    parser.add_argument("--dir", type=Path, default=DOCS, help="where the pictures live")
    args = parser.parse_args(argv)
    if args.check:
        names = stale(args.dir)
        for name in names:
            print(f"{args.dir / name} is stale: run python docs/diagrams.py", file=sys.stderr)
        return 1 if names else 0
    for name in write(args.dir):
        print(args.dir / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
