"""The fleet's outbox store: entries in Redis, claimed by a Lua script.

Layout, under ``{namespace}:outbox:{tag}`` (``tag`` is the namespace as a Redis Cluster
hash tag, so every key of one outbox lives in one slot and the scripts may touch them
together):

- ``…:e:<id>``: a hash per entry - ``data`` (the entry as JSON), ``endpoint``, ``owner``
  and ``lease`` (the claim);
- ``…:due``: a sorted set of pending ids, scored by the instant each is due or its lease
  runs out, whichever is later - so "claimable now" is one range query;
- ``…:all``: a sorted set of every stored id by parking time, for listing.

A claim and a settle are each one Lua script: Redis runs a script alone, so two
replayers can never claim the same entry (Redis's ``WATCH``/``MULTI`` would need a retry
loop under contention; a script needs none). Durability is the server's: run Redis with
``appendonly yes`` for an outbox.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from .._redact import redact_url
from ._model import OutboxEntry, encode_entry
from ._store import OutboxStoreError, read_entry

if TYPE_CHECKING:
    import redis

__all__ = ["RedisOutboxStore"]

_T = TypeVar("_T")

# KEYS: due. ARGV: now, until, owner, limit, entry key prefix, skipped endpoints...
# The due ids are read a page at a time until ``limit`` are claimed or none is left: a
# skipped endpoint's backlog (an outage parks thousands) must not hide the entries behind
# it. A claimed or vanished id leaves the range (its score becomes ``until``, after
# ``now``), so the next page starts past the ids kept in it: the skipped ones.
_CLAIM = """
local skip = {}
for i = 6, #ARGV do skip[ARGV[i]] = true end
local limit = tonumber(ARGV[4])
local stays = tonumber(ARGV[2]) <= tonumber(ARGV[1])
local page = limit + 1000
local offset = 0
local out = {}
while #out < limit do
  local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', offset, page)
  for _, id in ipairs(ids) do
    local key = ARGV[5] .. id
    local endpoint = redis.call('HGET', key, 'endpoint')
    if not endpoint then
      redis.call('ZREM', KEYS[1], id)
    elseif skip[endpoint] then
      offset = offset + 1
    else
      redis.call('HSET', key, 'owner', ARGV[3], 'lease', ARGV[2])
      redis.call('ZADD', KEYS[1], ARGV[2], id)
      out[#out + 1] = redis.call('HGET', key, 'data')
      if stays then offset = offset + 1 end
      if #out >= limit then break end
    end
  end
  if #ids < page then break end
end
return out
"""

# KEYS: due, all, entry. ARGV: owner, id, state, due, data.
_SETTLE = """
if redis.call('HGET', KEYS[3], 'owner') ~= ARGV[1] then return 0 end
if ARGV[3] == 'delivered' then
  redis.call('DEL', KEYS[3])
  redis.call('ZREM', KEYS[1], ARGV[2])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return 1
end
redis.call('HSET', KEYS[3], 'data', ARGV[5], 'owner', '', 'lease', '0')
if ARGV[3] == 'pending' then
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[2])
else
  redis.call('ZREM', KEYS[1], ARGV[2])
end
return 1
"""


class RedisOutboxStore:
    """Outbox entries shared by every process naming the same Redis and ``namespace``.

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` URL (redis-py syntax); nothing
            connects until the first use. A password in it is never shown.
        namespace: prefix of every key (default ``"resilient-client"``).
        timeout: seconds allowed for connecting and for each command (default 2.0).

    Every method raises :class:`OutboxStoreError` (naming the URL without its password)
    when Redis cannot be reached or answers with an error. Raises ``ValueError`` for an
    empty namespace or a non-positive timeout.
    """

    def __init__(
        self, url: str, namespace: str = "resilient-client", *, timeout: float = 2.0
    ) -> None:
        if not namespace:
            raise ValueError("namespace must not be empty")
        if not timeout > 0.0:
            raise ValueError("timeout must be a positive number of seconds")
        try:
            import redis
        except ImportError as exc:  # an optional dependency
            raise ImportError(
                "RedisOutboxStore needs redis-py: pip install 'resilient-client[redis]'"
            ) from exc
        self.namespace = namespace
        self.name = redact_url(url)  # the URL may hold a password
        self._errors = (redis.RedisError, OSError)
        self._client: redis.Redis = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        tag = namespace.replace("{", "%7B").replace("}", "%7D")
        self._base = f"{namespace}:outbox:{{{tag}}}"
        self._due = f"{self._base}:due"
        self._all = f"{self._base}:all"
        self._claim = self._client.register_script(_CLAIM)
        self._settle = self._client.register_script(_SETTLE)

    def __repr__(self) -> str:
        return f"RedisOutboxStore({self.name!r}, namespace={self.namespace!r})"

    def _key(self, entry_id: str) -> str:
        return f"{self._base}:e:{entry_id}"

    def _run(self, doing: str, work: Callable[[], _T]) -> _T:
        try:
            return work()
        except self._errors as exc:
            raise OutboxStoreError(
                self.name,
                f"outbox store {self.name} (namespace {self.namespace!r}) failed while "
                f"{doing}: {type(exc).__name__}",
            ) from exc

    # -- the protocol --------------------------------------------------------------------

    def add(self, entry: OutboxEntry) -> None:
        def write() -> None:
            pipe = self._client.pipeline(transaction=True)
            pipe.hset(
                self._key(entry.id),
                mapping={
                    "data": encode_entry(entry),
                    "endpoint": entry.endpoint,
                    "owner": "",
                    "lease": "0",
                },
            )
            pipe.zadd(self._due, {entry.id: entry.due})
            pipe.zadd(self._all, {entry.id: entry.parked_at.timestamp()})
            pipe.execute()

        self._run("parking a write", write)

    def claim(
        self, *, now: float, until: float, owner: str, limit: int, skip: Iterable[str] = ()
    ) -> list[OutboxEntry]:
        args = [repr(now), repr(until), owner, str(limit), f"{self._base}:e:", *sorted(set(skip))]
        rows = self._run("claiming entries", lambda: self._claim(keys=[self._due], args=args))
        return [read_entry(self.name, row) for row in rows]

    def settle(self, entry: OutboxEntry, *, owner: str) -> bool:
        keys = [self._due, self._all, self._key(entry.id)]
        args = [owner, entry.id, entry.state, repr(entry.due), encode_entry(entry)]
        done = self._run("settling an entry", lambda: self._settle(keys=keys, args=args))
        return bool(done)

    def get(self, entry_id: str) -> OutboxEntry | None:
        data = self._run("reading an entry", lambda: self._client.hget(self._key(entry_id), "data"))
        return None if data is None else read_entry(self.name, data)

    def entries(self) -> list[OutboxEntry]:
        def read() -> list[Any]:
            ids: list[bytes] = list(self._client.zrange(self._all, 0, -1))  # type: ignore[arg-type]
            pipe = self._client.pipeline(transaction=False)
            for raw in ids:
                pipe.hget(self._key(raw.decode()), "data")
            return list(pipe.execute())

        return [read_entry(self.name, data) for data in self._run("listing entries", read) if data]

    def drop(self, entry_id: str) -> bool:
        def delete() -> bool:
            pipe = self._client.pipeline(transaction=True)
            pipe.delete(self._key(entry_id))
            pipe.zrem(self._due, entry_id)
            pipe.zrem(self._all, entry_id)
            return bool(pipe.execute()[0])

        return self._run("dropping an entry", delete)

    def next_due(self) -> float | None:
        first = self._run(
            "reading due times", lambda: self._client.zrange(self._due, 0, 0, withscores=True)
        )
        return float(first[0][1]) if first else None

    def close(self) -> None:
        self._client.close()
