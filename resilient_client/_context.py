"""Correlation ids: one id per logical call, the same on every attempt.

``correlation_id()`` sets the id for the calls made inside it (in this thread or task,
and in tasks started from it: a ``contextvars.ContextVar`` carries it); outside one,
each call gets a fresh id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["correlation_id", "current_correlation_id"]

_CURRENT: ContextVar[str | None] = ContextVar("resilient_client.correlation_id", default=None)


@contextmanager
def correlation_id(value: str | None = None) -> Iterator[str]:
    """Use ``value`` (or a fresh id when ``None``) as the correlation id inside the block.

    Yields the id. Raises ``ValueError`` for an empty id or one with characters a
    header value cannot carry.
    """
    if value is None:
        value = uuid.uuid4().hex
    elif not value or not value.isprintable() or not value.isascii():
        raise ValueError(f"correlation id must be non-empty printable ASCII, got {value!r}")
    token = _CURRENT.set(value)
    try:
        yield value
    finally:
        _CURRENT.reset(token)


# The id set by an enclosing correlation_id() block, if any: the context variable's own
# get, a C call, since every call asks.
current_correlation_id: Callable[[], str | None] = _CURRENT.get
