"""Where incidents are kept: the store protocol, in memory, and one SQLite file.

A store keeps, per provider, its latest incident, and applies the lifecycle
(:func:`~._incident.advance`) to it as one atomic read-modify-write
(:meth:`IncidentStore.update`): under a lock in memory, in one ``BEGIN IMMEDIATE``
transaction in SQLite (so several processes on one host share a file safely), in an
optimistic ``WATCH``/``MULTI`` transaction in Redis (``_redis.py``).

SQLite comes from the standard library: durable, locked between processes, readable by
the command line after the process is gone. A file that is not SQLite, is damaged, or is
another application's database raises :class:`IncidentStoreError` naming it, and is left
as it was.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

from .._exceptions import ResilienceError, sqlite_trouble
from ._incident import Alert, Incident, Record

__all__ = [
    "Change",
    "IncidentStore",
    "IncidentStoreError",
    "MemoryIncidentStore",
    "SqliteIncidentStore",
]

Change = Callable[[Record | None], tuple[Record | None, list[Alert]]]
"""The lifecycle step a store applies: the record before → the record after and alerts.
Returning the record unchanged (the same object) writes nothing."""

_MAX_KEPT = 1000  # resolved incidents kept in memory, oldest dropped first


class IncidentStoreError(ResilienceError):
    """An incident store cannot be opened, read or written: damaged, locked, unreachable
    or not an incident store. ``store`` names it (a path, or a URL without password)."""

    def __init__(self, store: str, message: str) -> None:
        super().__init__(message)
        self.store = store


@runtime_checkable
class IncidentStore(Protocol):
    """Keeps incidents; ``update`` is atomic per provider across everything sharing it."""

    def update(self, provider: str, change: Change) -> list[Alert]:
        """Apply ``change`` to ``provider``'s latest record atomically; the alerts of the
        change that was stored (a change may run more than once under contention)."""

    def incidents(self, open_only: bool = False) -> list[Incident]:
        """Every incident kept (only open ones with ``open_only``), newest first."""

    def get(self, incident_id: str) -> Incident | None:
        """The incident with this id, or ``None``."""

    def close(self) -> None: ...


class MemoryIncidentStore:
    """Incidents in this process only (the default). Keeps the latest 1000 resolved."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, str] = {}  # provider → incident id
        self._records: dict[str, Record] = {}  # by id, in order of creation

    def __repr__(self) -> str:
        return "MemoryIncidentStore()"

    def update(self, provider: str, change: Change) -> list[Alert]:
        with self._lock:
            latest = self._latest.get(provider)
            before = None if latest is None else self._records.get(latest)
            after, alerts = change(before)
            if after is not None and after is not before:
                self.put(provider, after)
            return alerts

    def put(self, provider: str, record: Record) -> None:
        """Store ``record`` as ``provider``'s latest (the caller holds the lock, or is
        filling a fallback)."""
        self._records[record.incident.id] = record
        self._latest[provider] = record.incident.id
        if len(self._records) > _MAX_KEPT:
            for key in list(self._records)[: len(self._records) - _MAX_KEPT]:
                if self._records[key].incident.state == "resolved":
                    del self._records[key]

    def latest(self, provider: str) -> Record | None:
        with self._lock:
            key = self._latest.get(provider)
            return None if key is None else self._records.get(key)

    def incidents(self, open_only: bool = False) -> list[Incident]:
        with self._lock:
            found = [r.incident for r in self._records.values()]
        found = [i for i in found if i.state == "open" or not open_only]
        return sorted(found, key=lambda i: i.started_at, reverse=True)

    def get(self, incident_id: str) -> Incident | None:
        with self._lock:
            record = self._records.get(incident_id)
        return None if record is None else record.incident

    def close(self) -> None:
        pass


_SCHEMA = "resilient-client/incidents/1"
_TABLES = (
    "CREATE TABLE incidents_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE incidents ("
    " id TEXT PRIMARY KEY, provider TEXT NOT NULL, state TEXT NOT NULL,"
    " started_at REAL NOT NULL, record TEXT NOT NULL)",
    "CREATE TABLE incidents_latest (provider TEXT PRIMARY KEY, id TEXT NOT NULL)",
    "CREATE INDEX incidents_started ON incidents (started_at)",
)


class SqliteIncidentStore:
    """Incidents in the SQLite file at ``path`` (created when missing; WAL mode).

    ``timeout``: seconds to wait for another process's write lock (default 5.0).
    Raises :class:`IncidentStoreError` naming the file when it cannot be opened, is not
    SQLite or is damaged, or is a database of something else; nothing is written to it.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0) -> None:
        self.path = str(Path(path))
        self._timeout = timeout
        self._lock = threading.Lock()
        self._db = self._open()

    def __repr__(self) -> str:
        return f"SqliteIncidentStore({self.path!r})"

    def _error(self, exc: BaseException) -> IncidentStoreError:
        why = sqlite_trouble(exc, timeout=self._timeout, kind="incident store")
        return IncidentStoreError(self.path, f"incident store {self.path} {why}")

    def _open(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(
                self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        try:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if not tables:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("BEGIN IMMEDIATE")
                if not {r[0] for r in db.execute("SELECT name FROM sqlite_master")}:
                    for statement in _TABLES:
                        db.execute(statement)
                    db.execute("INSERT INTO incidents_meta VALUES ('schema', ?)", (_SCHEMA,))
                db.execute("COMMIT")
            elif "incidents_meta" not in tables:
                raise IncidentStoreError(
                    self.path,
                    f"incident store {self.path} is a SQLite database of something else "
                    "(no incidents_meta table)",
                )
            row = db.execute("SELECT value FROM incidents_meta WHERE key='schema'").fetchone()
            if row is None or row[0] != _SCHEMA:
                raise IncidentStoreError(
                    self.path, f"incident store {self.path} has an unknown schema {row!r}"
                )
        except sqlite3.Error as exc:
            db.close()
            raise self._error(exc) from exc
        except IncidentStoreError:
            db.close()
            raise
        return db

    def update(self, provider: str, change: Change) -> list[Alert]:
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    row = db.execute(
                        "SELECT i.record FROM incidents_latest l JOIN incidents i ON i.id = l.id"
                        " WHERE l.provider = ?",
                        (provider,),
                    ).fetchone()
                    before = None if row is None else Record.model_validate_json(row[0])
                    after, alerts = change(before)
                    if after is not None and after is not before:
                        incident = after.incident
                        db.execute(
                            "INSERT OR REPLACE INTO incidents VALUES (?, ?, ?, ?, ?)",
                            (
                                incident.id,
                                provider,
                                incident.state,
                                incident.started_at.timestamp(),
                                after.model_dump_json(),
                            ),
                        )
                        db.execute(
                            "INSERT OR REPLACE INTO incidents_latest VALUES (?, ?)",
                            (provider, incident.id),
                        )
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
            return alerts

    def incidents(self, open_only: bool = False) -> list[Incident]:
        query = "SELECT record FROM incidents"
        if open_only:
            query += " WHERE state = 'open'"
        with self._lock:
            try:
                rows = self._db.execute(query + " ORDER BY started_at DESC").fetchall()
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
        return [Record.model_validate_json(row[0]).incident for row in rows]

    def get(self, incident_id: str) -> Incident | None:
        with self._lock:
            try:
                row = self._db.execute(
                    "SELECT record FROM incidents WHERE id = ?", (incident_id,)
                ).fetchone()
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
        return None if row is None else Record.model_validate_json(row[0]).incident

    def close(self) -> None:
        with self._lock:
            self._db.close()
