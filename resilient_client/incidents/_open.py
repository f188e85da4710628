"""Opening a store from its URL: the one place that knows every store (so that the
stores in ``_stores.py`` need not know the Redis one)."""

from __future__ import annotations

from ._stores import IncidentStore, MemoryIncidentStore, SqliteIncidentStore

__all__ = ["open_store"]


def open_store(store: IncidentStore | str | None) -> IncidentStore:
    """``None`` → in memory; ``"sqlite:///path"`` (relative) or ``"sqlite:////abs"`` →
    :class:`SqliteIncidentStore`; ``"redis://..."`` → ``RedisIncidentStore(url)``; any
    :class:`IncidentStore` as it is. ``ValueError`` for another URL scheme."""
    if store is None:
        return MemoryIncidentStore()
    if isinstance(store, str):
        if store.startswith("sqlite:///"):
            return SqliteIncidentStore(store[len("sqlite:///") :])
        if store.startswith(("redis://", "rediss://", "unix://")):
            from ._redis import RedisIncidentStore

            return RedisIncidentStore(store)
        raise ValueError(
            "store must be None, an IncidentStore, 'sqlite:///<path>' or a redis:// URL"
        )
    if not isinstance(store, IncidentStore):
        raise TypeError(f"store must be an IncidentStore, not {type(store).__name__}")
    return store
