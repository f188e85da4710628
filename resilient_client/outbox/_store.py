"""Where parked writes are kept: the :class:`OutboxStore` protocol, its error, reading an
entry back from a store (:func:`read_entry`, for every store), and the store a URL names.

A store is synchronous; the async outbox runs its calls in a worker thread, so a slow
disk or Redis never blocks an event loop, and each backend is written once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from .._exceptions import ResilienceError
from ._model import OutboxEntry, decode_entry

__all__ = [
    "OutboxStore",
    "OutboxStoreError",
    "read_entry",
    "sqlite_path",
]


class OutboxStoreError(ResilienceError):
    """The outbox store cannot be opened, read or written: corrupt, locked, unreachable,
    or not an outbox. ``store`` names it (a file path, or a Redis URL without its
    password); the store is left as it was."""

    def __init__(self, store: str, message: str) -> None:
        super().__init__(message)
        self.store = store


def read_entry(store: str, data: str | bytes) -> OutboxEntry:
    """The entry a store keeps as ``data`` (:func:`~._model.encode_entry`'s document).
    Raises :class:`OutboxStoreError` naming ``store`` when it is not one."""
    try:
        return decode_entry(data)
    except ValueError as exc:
        message = f"outbox store {store} holds an unreadable entry ({exc})"
        raise OutboxStoreError(store, message) from exc


@runtime_checkable
class OutboxStore(Protocol):
    """Keeps outbox entries for one or many processes (every method may raise
    :class:`OutboxStoreError`). Times are epoch seconds.

    Exactly once rests on :meth:`claim` and :meth:`settle`: a claim is atomic across every
    process sharing the store, and gives each entry to one ``owner`` until ``until``.
    """

    def add(self, entry: OutboxEntry) -> None:
        """Store a new entry."""

    def claim(
        self, *, now: float, until: float, owner: str, limit: int, skip: Iterable[str] = ()
    ) -> list[OutboxEntry]:
        """Atomically take up to ``limit`` pending entries due at ``now`` and not leased
        to anyone (or whose lease ran out), leasing them to ``owner`` until ``until``;
        entries of the endpoints in ``skip`` are left alone. Oldest due first."""

    def settle(self, entry: OutboxEntry, *, owner: str) -> bool:
        """Write what a replay made of a claimed entry and end the lease: a delivered
        entry is removed, a dead one kept, a pending one is due at its
        ``next_replay_at``. Only while ``owner`` still holds it: ``False`` (nothing
        written) if the lease passed to another replayer or the entry was dropped."""

    def get(self, entry_id: str) -> OutboxEntry | None:
        """The entry with this id, ``None`` if there is none."""

    def entries(self) -> list[OutboxEntry]:
        """Every stored entry (pending and dead), oldest parked first."""

    def drop(self, entry_id: str) -> bool:
        """Remove an entry whatever its state; ``False`` if there was none."""

    def next_due(self) -> float | None:
        """The earliest instant at which a pending entry is due or its lease runs out
        (``None``: nothing pending)."""

    def close(self) -> None:
        """Release connections; the store reopens them if used again."""


def sqlite_path(url: str) -> str:
    """The file path of a ``sqlite:///`` URL (SQLAlchemy's convention: three slashes and
    a relative path, four and an absolute one). ``ValueError`` for an empty path."""
    prefix = "sqlite:///"
    if not url.lower().startswith(prefix):
        raise ValueError(f"a SQLite store URL starts with {prefix!r}: sqlite:///outbox.db")
    path = url[len(prefix) :]
    if not path:
        raise ValueError("the SQLite store URL names no file: sqlite:///outbox.db")
    return path
