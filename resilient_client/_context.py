"""Correlation ids: one id per logical call, the same on every attempt.

``correlation_id()`` sets the id for the calls made inside it (in this thread or task,
and in tasks started from it: a ``contextvars.ContextVar`` carries it); outside one,
each call gets a fresh id.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["correlation_id", "current_correlation_id", "new_correlation_id"]

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


# Fresh ids: 128 bits from the OS's random source as 32 hex digits, as os.urandom(16)
# would give, but read 256 ids at a time. The read is a system call, dear on every call;
# the chain below hands out each id in C, so concurrent threads never share one, and
# runs Python (_fresh_ids) once per 256 ids.
_ID_BYTES = 16
_SLICES = tuple(slice(start, start + _ID_BYTES) for start in range(0, 256 * _ID_BYTES, _ID_BYTES))


def _fresh_ids(_: object) -> Iterator[str]:
    pool = os.urandom(_ID_BYTES * len(_SLICES))
    return map(bytes.hex, map(pool.__getitem__, _SLICES))


def _id_source() -> Callable[[], str]:
    return itertools.chain.from_iterable(map(_fresh_ids, itertools.repeat(None))).__next__


new_correlation_id: Callable[[], str] = _id_source()
"""A fresh random correlation id (read as ``_context.new_correlation_id``: a forked
child gets a source of its own, so it never repeats its parent's next ids)."""


def _reseed_after_fork() -> None:
    global new_correlation_id
    new_correlation_id = _id_source()


if hasattr(os, "register_at_fork"):  # where processes fork (not on Windows)
    os.register_at_fork(after_in_child=_reseed_after_fork)
