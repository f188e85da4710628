"""The payments store behind ``/payments/{name}``: idempotency keys, fingerprints, effects.

Follows draft-ietf-httpapi-idempotency-key-header: the first request with a key is
processed; a repeat while it runs is a conflict (409); a repeat after it completed replays
the stored response; a repeat with a different payload is refused (422). A request without
a key is processed anew every time. Thread-safe: tests read ``effects`` from another thread.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "Fresh",
    "Ledger",
    "Mismatch",
    "Outstanding",
    "Replay",
    "Stored",
    "fingerprint",
    "parse_key",
]

# Payment ids are derived, not random, so two runs of a scenario answer the same bodies.
_ID_NAMESPACE = uuid.UUID("6f1c7f43-2b0e-4a8e-9d47-1d6a3c1b8e20")


def fingerprint(body: bytes) -> str:
    """The payload fingerprint: SHA-256 of the raw body, hex."""
    return hashlib.sha256(body).hexdigest()


def parse_key(raw: str) -> str:
    """The key from an ``Idempotency-Key`` value, bare token or sf-string.

    The draft makes the field a Structured Field string (``"abc"`` with ``\\"`` and
    ``\\\\`` escapes); deployed APIs mostly take a bare token. Both name the same key.
    """
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        inner = value[1:-1]
        out: list[str] = []
        escaped = False
        for char in inner:
            if escaped or char != "\\":
                out.append(char)
                escaped = False
            else:
                escaped = True
        return "".join(out)
    return value


@dataclass(frozen=True, slots=True)
class Stored:
    """A response kept for replay."""

    status: int
    body: bytes
    headers: Mapping[str, str]


@dataclass(slots=True)
class _Entry:
    fingerprint: str
    stored: Stored | None = None  # None while the original request is still processing


@dataclass(slots=True)
class _Account:
    effects: int = 0
    operations: int = 0
    entries: dict[str, _Entry] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Fresh:
    """Process this request: ``operation`` numbers the name's new operations from 1."""

    operation: int
    key: str | None
    _account: _Account


@dataclass(frozen=True, slots=True)
class Outstanding:
    """The key's original request is still processing (answer 409)."""


@dataclass(frozen=True, slots=True)
class Replay:
    """The key completed with this payload: answer the stored response again."""

    stored: Stored


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The key was used before with a different payload (answer 422)."""


Decision = Fresh | Outstanding | Replay | Mismatch


class Ledger:
    """Idempotency records and committed effects, per scenario name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accounts: defaultdict[str, _Account] = defaultdict(_Account)

    def begin(self, name: str, key: str | None, print_: str) -> Decision:
        """Decide what a request with ``key`` (None = no key) and fingerprint does.

        A fresh keyed request is marked in progress before this returns, so a concurrent
        repeat sees :class:`Outstanding`.
        """
        with self._lock:
            account = self._accounts[name]
            entry = account.entries.get(key) if key is not None else None
            if entry is not None:
                # A different payload is refused whether or not the original finished.
                if entry.fingerprint != print_:
                    return Mismatch()
                return Outstanding() if entry.stored is None else Replay(entry.stored)
            if key is not None:
                account.entries[key] = _Entry(print_)
            account.operations += 1
            return Fresh(account.operations, key, account)

    def commit(self, name: str, fresh: Fresh, amount: object) -> Stored:
        """Commit ONE effect for ``fresh`` and keep its response for replays."""
        with self._lock:
            account = fresh._account
            account.effects += 1
            payment_id = uuid.uuid5(_ID_NAMESPACE, f"{name}/{account.effects}")
            body = {"id": str(payment_id), "amount": amount, "key": fresh.key}
            stored = Stored(
                status=201,
                body=json.dumps(body, separators=(",", ":")).encode(),
                headers={
                    "content-type": "application/json",
                    "location": f"/payments/{name}/{payment_id}",
                },
            )
            if fresh.key is not None:
                account.entries[fresh.key] = _Entry(account.entries[fresh.key].fingerprint, stored)
            return stored

    def abandon(self, fresh: Fresh) -> None:
        """Processing stopped before committing: forget the key so a retry starts over."""
        with self._lock:
            if fresh.key is not None:
                entry = fresh._account.entries.get(fresh.key)
                if entry is not None and entry.stored is None:
                    del fresh._account.entries[fresh.key]

    def effects(self, name: str | None = None) -> int:
        """Committed effects for ``name``, or across every name when None."""
        with self._lock:
            if name is None:
                return sum(account.effects for account in self._accounts.values())
            account = self._accounts.get(name)
            return 0 if account is None else account.effects

    def reset(self) -> None:
        """Forget every key and effect."""
        with self._lock:
            self._accounts.clear()
