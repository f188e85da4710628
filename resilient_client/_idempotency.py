"""Idempotency keys (draft-ietf-httpapi-idempotency-key-header).

One key per logical call, made before the first attempt and sent unchanged on every
attempt, so the server can tell a retry from a new operation. Keys are random UUID v4:
the draft warns that guessable keys let another client read a cached response, and a
time-ordered UUID would leak when the call was made and add nothing the server needs.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from ._headers import is_header_name

__all__ = ["Idempotency", "IdempotencyRule", "idempotency_key_for", "new_idempotency_key"]


class Idempotency(BaseModel):
    """Which methods get an idempotency key, in which header, in which form.

    ``format="token"`` sends the bare key (``Idempotency-Key: 5f0c...``), as Stripe and
    most payment APIs expect; ``"sf-string"`` sends the draft's structured-field string
    (``Idempotency-Key: "5f0c..."``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    methods: frozenset[str] = frozenset({"POST", "PATCH"})
    header: str = "Idempotency-Key"
    format: Literal["token", "sf-string"] = "token"

    @field_validator("methods")
    @classmethod
    def _upper_methods(cls, value: frozenset[str]) -> frozenset[str]:
        return frozenset(method.upper() for method in value)

    @field_validator("header")
    @classmethod
    def _check_header(cls, value: str) -> str:
        if not is_header_name(value):
            raise ValueError(f"not a valid HTTP header name: {value!r}")
        return value

    def encode(self, key: str) -> str:
        """The header value for ``key`` in this policy's format."""
        if self.format == "sf-string":
            escaped = key.replace("\\", "\\\\").replace('"', '\\"')
            return f'"{escaped}"'
        return key


class IdempotencyRule:
    """An :class:`Idempotency` policy as every call reads it, made once per endpoint.

    pydantic models answer attribute reads at four times a slot's cost, and every call
    asks which header to look for, its lower-cased name and the keyed methods. With the
    policy off (``None``) a key the caller sends in the default header still counts.
    """

    __slots__ = ("header", "lower_name", "methods", "policy")

    def __init__(self, policy: Idempotency | None) -> None:
        self.policy = policy
        self.header = "Idempotency-Key" if policy is None else policy.header
        self.lower_name = self.header.lower().encode("latin-1")
        self.methods: frozenset[str] = frozenset() if policy is None else policy.methods

    def encode(self, key: str) -> str:
        """The header value for ``key``: the policy's format, the bare key with none."""
        return key if self.policy is None else self.policy.encode(key)


def new_idempotency_key() -> str:
    """A fresh random key (UUID v4, 122 random bits)."""
    return str(uuid.uuid4())


_DERIVED_NAMESPACE = b"resilient-client/idempotency/v1"


def idempotency_key_for(*parts: str | int) -> str:
    """A stable key derived from the caller's own operation id.

    ``idempotency_key_for("order", order_id)`` gives the same key in every process and
    after every restart, so a job re-run after a crash repeats, rather than duplicates,
    the operation. Include something only you know (an account or tenant id) among the
    parts: a key derived from public ids alone can be guessed. Raises ``ValueError``
    with no parts, ``TypeError`` for a part that is not a ``str`` or ``int``.
    """
    if not parts:
        raise ValueError("idempotency_key_for() needs at least one part")
    digest = hashlib.sha256(_DERIVED_NAMESPACE)
    for part in parts:
        if isinstance(part, bool) or not isinstance(part, str | int):
            raise TypeError(f"idempotency key parts must be str or int, not {type(part).__name__}")
        encoded = str(part).encode()
        # Length-prefixed, so ("ab", "c") and ("a", "bc") stay different keys.
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return str(uuid.UUID(bytes=digest.digest()[:16], version=4))
