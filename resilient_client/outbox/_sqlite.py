"""The embedded outbox store: one SQLite file, safe for several processes on one host.

SQLite (the standard library's ``sqlite3``) rather than a file format of our own: it gives
atomic, durable transactions and locking between processes for free. The file is in WAL
mode (readers never wait for a writer), ``synchronous=FULL`` (a parked write survives a
power cut once ``park`` returns), and every claim is one ``BEGIN IMMEDIATE`` transaction:
it takes the write lock before reading, so two processes can never claim the same entry.

A file is checked before anything is written to it: one that is not SQLite, is damaged,
or is another application's database raises :class:`OutboxStoreError` naming it and is
left exactly as it was.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from .._exceptions import sqlite_trouble
from ._model import SCHEMA, OutboxEntry, encode_entry
from ._store import OutboxStoreError, read_entry

__all__ = ["SqliteOutboxStore"]

_T = TypeVar("_T")

_SCHEMA_SQL = (
    "CREATE TABLE outbox_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE outbox_entries ("
    " id TEXT PRIMARY KEY,"
    " state TEXT NOT NULL,"
    " endpoint TEXT NOT NULL,"
    " parked_at REAL NOT NULL,"
    " due REAL NOT NULL,"
    " owner TEXT,"
    " lease_until REAL,"
    " data TEXT NOT NULL)",
    "CREATE INDEX outbox_due ON outbox_entries (state, due)",
)

_DUE = "CASE WHEN lease_until IS NOT NULL AND lease_until > due THEN lease_until ELSE due END"


class SqliteOutboxStore:
    """Outbox entries in the SQLite file at ``path`` (created when missing).

    ``timeout``: seconds to wait for another process's write lock before giving up with
    :class:`OutboxStoreError` (default 5.0). Raises :class:`OutboxStoreError` naming the
    file when it cannot be opened, is not SQLite or is damaged, or is a SQLite database
    that is not an outbox; nothing is written to such a file.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0) -> None:
        if not timeout >= 0.0:
            raise ValueError("timeout must be >= 0 seconds")
        self.path = str(Path(path))
        self._timeout = timeout
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._pid = 0
        with self._lock:
            self._connect()

    def __repr__(self) -> str:
        return f"SqliteOutboxStore({self.path!r})"

    # -- opening, checked before any write -------------------------------------------

    def _fail(self, exc: BaseException, doing: str) -> OutboxStoreError:
        why = sqlite_trouble(exc, timeout=self._timeout, kind="outbox store")
        return OutboxStoreError(self.path, f"outbox store {self.path} {why} while {doing}")

    def _connect(self) -> sqlite3.Connection:
        if self._connection is not None and self._pid == os.getpid():
            return self._connection
        # A connection must not cross a fork: the child opens its own.
        if Path(self.path).is_dir():
            raise OutboxStoreError(self.path, f"outbox store {self.path} is a directory")
        try:
            connection = sqlite3.connect(
                self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._fail(exc, "opening it") from exc
        try:
            self._check(connection)
        except BaseException:
            connection.close()
            raise
        self._connection, self._pid = connection, os.getpid()
        return connection

    def _check(self, connection: sqlite3.Connection) -> None:
        try:
            tables = {
                row[0]
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if tables and "outbox_meta" not in tables:
                raise OutboxStoreError(
                    self.path,
                    f"outbox store {self.path} is a SQLite database but not an outbox "
                    "(left untouched)",
                )
            if tables:
                row = connection.execute(
                    "SELECT value FROM outbox_meta WHERE key = 'schema'"
                ).fetchone()
                if row is None or row[0] != SCHEMA:
                    found = "none" if row is None else row[0]
                    raise OutboxStoreError(
                        self.path,
                        f"outbox store {self.path} has schema {found!r}, expected {SCHEMA!r}",
                    )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            if not tables:
                self._create(connection)
        except sqlite3.Error as exc:
            raise self._fail(exc, "opening it") from exc

    def _create(self, connection: sqlite3.Connection) -> None:
        connection.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have created it between our look and our lock.
            exists = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='outbox_meta'"
            ).fetchone()
            if exists is None:
                for statement in _SCHEMA_SQL:
                    connection.execute(statement)
                connection.execute(
                    "INSERT INTO outbox_meta (key, value) VALUES ('schema', ?)", (SCHEMA,)
                )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    @contextmanager
    def _using(self, doing: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            connection = self._connect()
            try:
                yield connection
            except sqlite3.Error as exc:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise self._fail(exc, doing) from exc

    def _write(self, doing: str, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """``work`` in one ``BEGIN IMMEDIATE`` transaction, committed or rolled back."""
        with self._using(doing) as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                result = work(connection)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            return result

    # -- the protocol --------------------------------------------------------------------

    def add(self, entry: OutboxEntry) -> None:
        def insert(connection: sqlite3.Connection) -> None:
            connection.execute(
                "INSERT INTO outbox_entries (id, state, endpoint, parked_at, due, data)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    entry.id,
                    entry.state,
                    entry.endpoint,
                    entry.parked_at.timestamp(),
                    entry.due,
                    encode_entry(entry),
                ),
            )

        self._write("parking a write", insert)

    def claim(
        self, *, now: float, until: float, owner: str, limit: int, skip: Iterable[str] = ()
    ) -> list[OutboxEntry]:
        skipped = sorted(set(skip))
        marks = ",".join("?" * len(skipped))
        query = (
            "SELECT id, data FROM outbox_entries WHERE state = 'pending' AND due <= ?"
            " AND (lease_until IS NULL OR lease_until <= ?)"
            + (f" AND endpoint NOT IN ({marks})" if skipped else "")
            + " ORDER BY due, parked_at LIMIT ?"
        )

        def take(connection: sqlite3.Connection) -> list[OutboxEntry]:
            rows = connection.execute(query, (now, now, *skipped, limit)).fetchall()
            connection.executemany(
                "UPDATE outbox_entries SET owner = ?, lease_until = ? WHERE id = ?",
                [(owner, until, row[0]) for row in rows],
            )
            return [read_entry(self.path, row[1]) for row in rows]

        return self._write("claiming entries", take)

    def settle(self, entry: OutboxEntry, *, owner: str) -> bool:
        def write(connection: sqlite3.Connection) -> bool:
            if entry.state == "delivered":
                cursor = connection.execute(
                    "DELETE FROM outbox_entries WHERE id = ? AND owner = ?", (entry.id, owner)
                )
            else:
                cursor = connection.execute(
                    "UPDATE outbox_entries SET state = ?, due = ?, data = ?, owner = NULL,"
                    " lease_until = NULL WHERE id = ? AND owner = ?",
                    (entry.state, entry.due, encode_entry(entry), entry.id, owner),
                )
            return cursor.rowcount == 1

        return self._write("settling an entry", write)

    def get(self, entry_id: str) -> OutboxEntry | None:
        with self._using("reading an entry") as connection:
            row = connection.execute(
                "SELECT data FROM outbox_entries WHERE id = ?", (entry_id,)
            ).fetchone()
        return None if row is None else read_entry(self.path, row[0])

    def entries(self) -> list[OutboxEntry]:
        with self._using("listing entries") as connection:
            rows = connection.execute(
                "SELECT data FROM outbox_entries ORDER BY parked_at, id"
            ).fetchall()
        return [read_entry(self.path, row[0]) for row in rows]

    def drop(self, entry_id: str) -> bool:
        def delete(connection: sqlite3.Connection) -> bool:
            cursor = connection.execute("DELETE FROM outbox_entries WHERE id = ?", (entry_id,))
            return cursor.rowcount == 1

        return self._write("dropping an entry", delete)

    def next_due(self) -> float | None:
        with self._using("reading due times") as connection:
            row = connection.execute(
                f"SELECT MIN({_DUE}) FROM outbox_entries WHERE state = 'pending'"
            ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def close(self) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
            if connection is not None and self._pid == os.getpid():
                connection.close()
