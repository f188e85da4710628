"""The Redis incident store: one incident per provider, and one alert, for a whole fleet.

Every process naming the same Redis and ``namespace`` applies its evaluations to the same
incident record in one optimistic transaction (``WATCH`` the provider's key, read, apply
the pure lifecycle step, ``MULTI``/``EXEC``; retried when another process wrote first).
The lifecycle step decides the alerts, and only the process whose transaction commits
sends them: so exactly one process sends the trigger, and the counts of all processes are
summed into the record.

Keys, under ``<namespace>:incidents:``: ``latest:<provider>`` (the provider's latest
incident id), ``record:<id>`` (the record as JSON), ``index`` (a sorted set of ids by
start time). Every write refreshes the keys' time to live (``key_ttl``, default 30
days). When Redis cannot be reached, each call raises :class:`IncidentStoreError` at
once (no retries), and the monitor keeps incidents in its own process meanwhile.
"""

from __future__ import annotations

from typing import Any

from ._incident import Alert, Incident, Record
from ._stores import Change, IncidentStoreError

__all__ = ["RedisIncidentStore"]

_CONTENTION_TRIES = 50


class RedisIncidentStore:
    """Incidents shared by every process naming the same Redis ``url`` and ``namespace``.

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` (redis-py syntax); nothing
            connects until first used.
        namespace: prefix of every key (default ``"resilient-client"``).
        timeout: seconds for connecting and for each command (default 0.5).
        key_ttl: seconds an incident is kept after its last change (default 30 days).

    Raises ``ImportError`` without redis-py (``pip install 'resilient-client[redis]'``).
    """

    def __init__(self, url: str, namespace: str = "resilient-client", *, timeout: float = 0.5,
                 key_ttl: float = 30 * 86400.0) -> None:  # fmt: skip
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError as exc:  # an optional dependency
            raise ImportError(
                "RedisIncidentStore needs redis-py: pip install 'resilient-client[redis]'"
            ) from exc
        if not namespace:
            raise ValueError("namespace must be non-empty")
        self.namespace = namespace
        self._prefix = f"{namespace}:incidents:"
        self._ttl = int(key_ttl)
        self._redis = redis
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
        kwargs = self._client.connection_pool.connection_kwargs
        where = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
        self._name = f"redis {where} ({namespace})"  # never the password

    def __repr__(self) -> str:
        return f"RedisIncidentStore(namespace={self.namespace!r})"

    def _failed(self, exc: BaseException) -> IncidentStoreError:
        return IncidentStoreError(
            self._name, f"incident store {self._name} failed: {type(exc).__name__}"
        )

    def update(self, provider: str, change: Change) -> list[Alert]:
        latest = f"{self._prefix}latest:{provider}"
        try:
            with self._client.pipeline() as pipe:
                for _ in range(_CONTENTION_TRIES):
                    try:
                        pipe.watch(latest)  # type: ignore[no-untyped-call]
                        current = pipe.get(latest)
                        raw = None if current is None else pipe.get(self._record_key(current))
                        before = None if raw is None else Record.model_validate_json(raw)
                        after, alerts = change(before)
                        if after is None or after is before:
                            pipe.unwatch()
                            return alerts
                        incident = after.incident
                        record = self._record_key(incident.id)
                        pipe.multi()
                        pipe.set(record, after.model_dump_json(), ex=self._ttl)
                        pipe.set(latest, incident.id, ex=self._ttl)
                        index = f"{self._prefix}index"
                        pipe.zadd(index, {incident.id: incident.started_at.timestamp()})
                        pipe.expire(index, self._ttl)
                        pipe.execute()
                        return alerts
                    except self._redis.WatchError:
                        continue
        except (self._redis.RedisError, OSError) as exc:
            raise self._failed(exc) from exc
        raise IncidentStoreError(self._name, f"incident store {self._name}: too much contention")

    def _record_key(self, incident_id: str | bytes) -> str:
        if isinstance(incident_id, bytes):
            incident_id = incident_id.decode()
        return f"{self._prefix}record:{incident_id}"

    def _records(self, ids: list[Any]) -> list[Record]:
        if not ids:
            return []
        raws = self._client.mget([self._record_key(i) for i in ids])
        return [Record.model_validate_json(raw) for raw in raws if raw is not None]

    def incidents(self, open_only: bool = False) -> list[Incident]:
        try:
            ids = self._client.zrevrange(f"{self._prefix}index", 0, -1)
            found = [record.incident for record in self._records(list(ids))]
        except (self._redis.RedisError, OSError) as exc:
            raise self._failed(exc) from exc
        return [i for i in found if i.state == "open" or not open_only]

    def get(self, incident_id: str) -> Incident | None:
        try:
            found = self._records([incident_id])
        except (self._redis.RedisError, OSError) as exc:
            raise self._failed(exc) from exc
        return found[0].incident if found else None

    def close(self) -> None:
        self._client.close()
