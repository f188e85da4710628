"""Endpoint keys: parse, validate and compile them once; match requests in O(path length).

A key is ``"METHOD /path"``: METHOD is an HTTP method or ``*``; a ``{name}`` segment
matches one path segment; a trailing ``/**`` matches the rest of the path (zero or more
segments). The most specific key wins: path specificity first, compared segment by
segment (literal beats ``{name}``, which beats ``**``), then an exact method beats
``*``. A request that matches no key belongs to the host's default endpoint
``"* <host>"``, so the number of endpoints never grows with the number of URLs.

Keys compile into one segment trie per method; matching walks it depth first, literal
children before ``{name}`` before ``**``, so the first complete match found is the
most specific one and no regular expression runs on the hot path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["EndpointKey", "Router", "parse_endpoint_key"]

METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
_PARAM = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")

# Segment ranks for specificity; higher is more specific. A key that ends without
# "**" gets a final _END, so "/a" beats "/a/**" for the path "/a".
_GLOB, _PARAM_RANK, _LITERAL, _END = 0, 1, 2, 3

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class EndpointKey:
    """A parsed endpoint key. ``key`` is the normalized text, e.g. ``"GET /v1/users/{id}"``."""

    key: str
    method: str  # an HTTP method, or "*"
    segments: tuple[str, ...]  # literal text, "{name}", or "**" (last only)
    specificity: tuple[int, ...]


def parse_endpoint_key(text: str) -> EndpointKey:
    """Parse and validate ``"METHOD /path"``; raises ``ValueError`` naming what is wrong."""
    if not isinstance(text, str):
        raise TypeError(f"endpoint key must be a string, not {type(text).__name__}")
    parts = text.split()
    if len(parts) != 2:
        raise ValueError(
            f"endpoint key {text!r} must look like 'METHOD /path', e.g. 'GET /v1/users/{{id}}'"
        )
    method, path = parts[0].upper(), parts[1]
    if method != "*" and method not in METHODS:
        raise ValueError(
            f"endpoint key {text!r}: unknown method {parts[0]!r} "
            f"(use one of {sorted(METHODS)} or '*')"
        )
    if not path.startswith("/"):
        raise ValueError(f"endpoint key {text!r}: the path must start with '/'")
    segments = tuple(segment for segment in path.strip("/").split("/") if segment)
    if "//" in path.rstrip("/"):
        raise ValueError(f"endpoint key {text!r}: empty path segment")
    ranks = []
    for index, segment in enumerate(segments):
        if segment == "**":
            if index != len(segments) - 1:
                raise ValueError(f"endpoint key {text!r}: '**' may only be the last segment")
            ranks.append(_GLOB)
        elif "{" in segment or "}" in segment:
            if not _PARAM.fullmatch(segment):
                raise ValueError(
                    f"endpoint key {text!r}: {segment!r} is not a parameter segment like '{{id}}'"
                )
            ranks.append(_PARAM_RANK)
        elif "*" in segment:
            raise ValueError(
                f"endpoint key {text!r}: {segment!r}: "
                "use '{name}' for one segment, '**' for the rest"
            )
        else:
            ranks.append(_LITERAL)
    if not ranks or ranks[-1] != _GLOB:
        ranks.append(_END)
    normalized = f"{method} /{'/'.join(segments)}"
    return EndpointKey(normalized, method, segments, tuple(ranks))


@dataclass(slots=True)
class _Node(Generic[T]):
    literal: dict[str, _Node[T]] = field(default_factory=dict)
    param: _Node[T] | None = None
    terminal: tuple[EndpointKey, T] | None = None
    glob: tuple[EndpointKey, T] | None = None


class Router(Generic[T]):
    """Endpoint keys compiled into tries, mapping a request to ``(key, value)``."""

    __slots__ = ("_any", "_tries", "entries", "keys")

    def __init__(self, entries: Iterable[tuple[str, T]]) -> None:
        self._tries: dict[str, _Node[T]] = {}
        self.keys: dict[str, EndpointKey] = {}
        self.entries: list[tuple[EndpointKey, T]] = []
        shapes: dict[tuple[str, tuple[str, ...]], str] = {}
        for text, value in entries:
            parsed = parse_endpoint_key(text)
            shape = (
                parsed.method,
                tuple("{}" if _PARAM.fullmatch(s) else s for s in parsed.segments),
            )
            if shape in shapes:
                raise ValueError(
                    f"endpoint keys {shapes[shape]!r} and {text!r} match the same requests"
                )
            shapes[shape] = text
            self.keys[parsed.key] = parsed
            self.entries.append((parsed, value))
            self._insert(parsed, value)
        self._any = self._tries.get("*")

    def _insert(self, key: EndpointKey, value: T) -> None:
        node = self._tries.setdefault(key.method, _Node())
        for segment, rank in zip(key.segments, key.specificity, strict=False):
            if rank == _GLOB:
                node.glob = (key, value)
                return
            if rank == _PARAM_RANK:
                if node.param is None:
                    node.param = _Node()
                node = node.param
            else:
                node = node.literal.setdefault(segment, _Node())
        node.terminal = (key, value)

    def match(self, method: str, path: str) -> tuple[EndpointKey, T] | None:
        """The most specific ``(key, value)`` for a request, or ``None``."""
        if not self._tries:
            return None
        segments = [segment for segment in path.split("/") if segment]
        exact = self._tries.get(method)
        best = _walk(exact, segments, 0) if exact is not None else None
        if self._any is not None:
            wildcard = _walk(self._any, segments, 0)
            if wildcard is not None and (
                best is None or wildcard[0].specificity > best[0].specificity
            ):
                best = wildcard
        return best


def _walk(node: _Node[T], segments: list[str], index: int) -> tuple[EndpointKey, T] | None:
    if index == len(segments):
        return node.terminal or node.glob
    child = node.literal.get(segments[index])
    if child is not None:
        found = _walk(child, segments, index + 1)
        if found is not None:
            return found
    if node.param is not None:
        found = _walk(node.param, segments, index + 1)
        if found is not None:
            return found
    return node.glob
