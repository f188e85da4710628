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
# would give, but read 256 ids at a time: the read is a system call, dear on every call.
# A draw is one C step - the next draw number from a count, looked up in a dict - and
# only a draw that finds no id runs Python (__missing__) and reads the next 256. Draw
# numbers are never handed out twice, and each batch's ids go to numbers after the one
# that read it, so no two draws share an id, whichever thread's batch they find.
# (Not itertools.chain over batches: while one thread's read has let go of the GIL,
# another finds no batch either and reads its own, and chain keeps only the last one,
# leaking the other; and a read that raises ends a chain for good - every later draw
# would raise StopIteration. Here a failed read fails one draw, and overlapping reads
# only waste the ids of the batch that is replaced.)
_ID_BYTES = 16
_PER_READ = 256


class _FreshIds(dict[int, str]):
    __slots__ = ()

    def __missing__(self, draw: int) -> str:
        ids = iter(os.urandom(_ID_BYTES * _PER_READ).hex(" ", _ID_BYTES).split())
        first = next(ids)
        # What the dict holds is for draws already made (or is lost to an overlapping
        # read): dropping it keeps one batch in memory.
        self.clear()
        self.update(zip(itertools.count(draw + 1), ids))
        return first


_FRESH = _FreshIds()

new_correlation_id: Callable[[], str] = map(_FRESH.__getitem__, itertools.count()).__next__
"""A fresh random correlation id."""

if hasattr(os, "register_at_fork"):  # where processes fork (not on Windows)
    # A forked child must not hand out the ids its parent will: it reads its own.
    os.register_at_fork(after_in_child=_FRESH.clear)
