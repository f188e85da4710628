"""Opening a store from its URL: the one place that knows every store (so that the
store contract in ``_store.py`` needs none of them)."""

from __future__ import annotations

from ._store import OutboxStore, sqlite_path

__all__ = ["open_store"]


def open_store(store: str | OutboxStore) -> OutboxStore:
    """The store ``store`` names: ``"sqlite:///relative.db"``, ``"sqlite:////abs/path.db"``,
    ``"redis://..."`` / ``"rediss://..."`` (namespace ``"resilient-client"``), or a store
    object, returned as it is.

    Raises ``ValueError`` for another scheme, :class:`OutboxStoreError` for a store that
    cannot be opened.
    """
    if not isinstance(store, str):
        if not isinstance(store, OutboxStore):
            raise TypeError(f"store must be a URL or an OutboxStore, not {type(store).__name__}")
        return store
    scheme = store.partition("://")[0].lower()
    if scheme == "sqlite":
        from ._sqlite import SqliteOutboxStore

        return SqliteOutboxStore(sqlite_path(store))
    if scheme in ("redis", "rediss", "unix"):
        from ._redis import RedisOutboxStore

        return RedisOutboxStore(store)
    raise ValueError(
        "store must be a 'sqlite:///path.db' or 'redis://host:port/db' URL, "
        f"or an OutboxStore; got a {scheme or 'schemeless'!r} URL"
    )
