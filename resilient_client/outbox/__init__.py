"""The outbox room: park keyed writes that an outage refused, replay them exactly once.

- ``_model``: :class:`OutboxEntry`, :class:`ReplayResult`, what is stored of a request;
- ``_store``: the :class:`OutboxStore` protocol, :class:`OutboxStoreError`, store URLs;
- ``_sqlite`` / ``_redis``: the embedded store and the fleet's;
- ``_replay``: the pure decisions of a replay; ``_outbox``: :class:`Outbox` and its
  sync and async drivers; ``_background``: ``Outbox.start()``'s thread and task;
- ``_cli``: what ``resilient-client outbox list|show|replay|drop`` runs.
"""

from ._background import AsyncReplayWorker, ReplayWorker
from ._model import OutboxEntry, ReplayResult
from ._open import open_store
from ._outbox import Outbox
from ._redis import RedisOutboxStore
from ._replay import REPLAY_BACKOFF
from ._sqlite import SqliteOutboxStore
from ._store import OutboxStore, OutboxStoreError

__all__ = [
    "REPLAY_BACKOFF",
    "AsyncReplayWorker",
    "Outbox",
    "OutboxEntry",
    "OutboxStore",
    "OutboxStoreError",
    "RedisOutboxStore",
    "ReplayResult",
    "ReplayWorker",
    "SqliteOutboxStore",
    "open_store",
]

for _name in __all__:
    _value = globals()[_name]
    if hasattr(_value, "__module__") and isinstance(_value, type):
        _value.__module__ = __name__
del _name, _value
