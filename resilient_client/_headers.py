"""Header access on the hot path, over httpx's (and httpx2's) own header storage.

``httpx.Headers`` keeps ``(name, lower-cased name, value)`` byte triples in ``_list``
(both libraries, unchanged since httpx 0.18). Its public lookups decode every header on
each access and its ``raw`` property copies the list; the pipeline reads a few headers
of every request and response and sets a few (correlation id, trace context), so it
works on the triples directly and falls back to the public API for any other
``Headers`` implementation.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any, TypeVar

__all__ = [
    "LOWER_NAME",
    "add_header",
    "first_value",
    "is_header_name",
    "put_triple",
    "request_copy",
    "set_header",
    "triples",
]

Triple = tuple[bytes, bytes, bytes]
_Request = TypeVar("_Request")  # httpx's or httpx2's Request
# Whether a request class is the library's own Request (its fields known), by class.
_LIBRARY_CLASS: dict[type, bool] = {}
_LIBRARY_MODULES = frozenset({"httpx", "httpx2", "httpx._models", "httpx2._models"})

# A triple's lower-cased name, taken in C (map(LOWER_NAME, triples) runs no bytecode).
LOWER_NAME = itemgetter(1)

# A header name is an RFC 9110 token (§5.6.2).
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def is_header_name(name: str) -> bool:
    """Whether ``name`` is a valid HTTP header name (a non-empty RFC 9110 token)."""
    return bool(name) and set(name) <= _TOKEN_CHARS


def triples(headers: Any) -> Sequence[Triple]:
    """The headers as ``(name, lower-cased name, value)`` byte triples, in order."""
    stored: list[Triple] | None = getattr(headers, "_list", None)
    if stored is not None:
        return stored
    return [(name, name.lower(), value) for name, value in headers.raw]


def first_value(headers: Any, lower_name: bytes) -> str | None:
    """The first value of the header ``lower_name`` (lower-cased bytes), or ``None``."""
    stored: Sequence[Triple] | None = getattr(headers, "_list", None)  # triples(), inlined
    if stored is None:
        stored = triples(headers)
    # Asked mostly of headers that are absent: rule that out first, in C.
    if lower_name not in map(LOWER_NAME, stored):
        return None
    for _, name, value in stored:
        if name == lower_name:
            return value.decode("latin-1")
    return None  # pragma: no cover - found above


def add_header(headers: Any, raw_name: bytes, lower_name: bytes, value: str) -> None:
    """Append a header known to be absent, its name (``raw_name``) and value ASCII."""
    stored: list[Triple] | None = getattr(headers, "_list", None)
    if stored is None:
        headers[raw_name.decode("ascii")] = value
    else:
        stored.append((raw_name, lower_name, value.encode("ascii")))


def set_header(headers: Any, name: str, value: str) -> None:
    """``headers[name] = value``, without the decoding and re-encoding for ASCII text."""
    stored: list[Triple] | None = getattr(headers, "_list", None)
    if type(stored) is not list or not (name.isascii() and value.isascii()):
        headers[name] = value
        return
    raw_name = name.encode("ascii")
    put_triple(stored, (raw_name, raw_name.lower(), value.encode("ascii")))


def put_triple(stored: list[Triple], triple: Triple) -> None:
    """Set a header in httpx's triples as ``Headers.__setitem__`` does: the first copy
    replaced, any later one dropped."""
    lower = triple[1]
    for index, item in enumerate(stored):
        if item[1] == lower:
            stored[index] = triple
            for later in range(len(stored) - 1, index, -1):  # rare: a header sent twice
                if stored[later][1] == lower:
                    del stored[later]
            return
    stored.append(triple)


def request_copy(request: _Request) -> _Request:
    """A copy of ``request`` (httpx's or httpx2's) with headers of its own, to add headers
    to: its URL, body, stream and extensions are the original's, which stays as it was
    (hooks, a redirect's next hop and a request sent again see the caller's request).

    The copy holds the library's own fields (and a subclass's too); an attribute set by
    hand on a library ``Request`` stays on the caller's request only.
    """
    original: Any = request
    cls: Any = type(original)
    copy = cls.__new__(cls)
    library = _LIBRARY_CLASS.get(cls)
    if library is None:
        library = _LIBRARY_CLASS[cls] = cls.__module__ in _LIBRARY_MODULES
    # The library's fields one by one, in its own order, not request.__dict__ copied:
    # reading an object's __dict__ turns it into a dict-backed one for good, and httpx
    # reads the caller's request again after the call. 3,100 instructions, 110 branch
    # mispredictions and 190 cache misses a call less (cachegrind), most after the copy.
    copy.method = original.method
    copy.url = original.url
    headers = original.headers
    stored = getattr(headers, "_list", None)
    if stored is None:  # not httpx's own storage
        copy.headers = type(headers)(headers)
    else:
        # The header list copied without Headers.__init__, which checks and normalizes
        # every header again: ~3,600 instructions a call less (cachegrind).
        fresh = object.__new__(type(headers))
        fresh._list = stored.copy()
        fresh._encoding = headers._encoding
        copy.headers = fresh
    copy.extensions = original.extensions
    copy.stream = original.stream
    content = getattr(original, "_content", None)  # once read (or given as bytes)
    if content is not None:
        copy._content = content
    if not library:  # a subclass's fields too, whatever they are
        for name, value in vars(original).items():
            if name != "headers":
                setattr(copy, name, value)
    return copy  # type: ignore[no-any-return]
