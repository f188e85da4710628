"""How a :class:`~resilient_client._config.ClientConfig` prints: the effective policy of
every endpoint, one strategy a line, with ``*`` on what the endpoint's own table set.

    ClientConfig from api.toml
      base_url = 'https://api.example.com'
    default policy:
      timeouts     connect=5, read=10, write=10, pool=5, attempt=10, total=30
      retry        max_attempts=4*, backoff=(initial=0.2*, multiplier=2, max=5*, ...), ...
      bulkhead     off
    endpoint 'GET /v1/users/{id}':
      timeouts     connect=5, read=2*, write=10, pool=5, attempt=10, total=30
      ...
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["describe"]

# Set-valued fields past this many members print their count instead of every member.
_MAX_MEMBERS = 12


def describe(config: Any) -> str:
    """The text ``str(config)`` and ``repr(config)`` give (see the module docstring)."""
    lines = [f"ClientConfig from {config.origin}"]
    for key, value in config.items():
        if key not in ("policy", "endpoints"):
            shown = "<given>" if key in ("headers", "cookies", "params") else repr(value)
            lines.append(f"  {key} = {shown}")  # headers may hold credentials: never shown
    written = {"default": config.get("policy"), **(config.get("endpoints") or {})}
    width = max((len(name) for name in _strategy_names()), default=0) + 2
    for key, policy in config.effective().items():
        title = "default policy" if key == "default" else f"endpoint {key!r}"
        lines.append(f"{title}:")
        table = written.get(key)
        for name in type(policy).model_fields:
            value = getattr(policy, name)
            own = table is not None and name in table.model_fields_set
            inner = getattr(table, name, None) if own else None
            text = "off" if value is None else _value(value, inner if own else None)
            if own and not isinstance(value, BaseModel):
                text += "*"
            lines.append(f"  {name.ljust(width)} {text}")
    for text in config.warnings:
        lines.append(f"warning: {text}")
    lines.append("(* = set in that table; everything else is inherited or a default)")
    return "\n".join(lines)


def _strategy_names() -> list[str]:
    from ._policy import Policy

    return list(Policy.model_fields)


def _value(value: object, written: object) -> str:
    """``value`` readably; ``written`` is the model as the table gave it (its set fields get
    a ``*``), or None when the table did not touch this value."""
    if isinstance(value, BaseModel):
        given = written.model_fields_set if isinstance(written, BaseModel) else set()
        parts = []
        for name in type(value).model_fields:
            inner = getattr(value, name)
            own = name in given
            text = _value(inner, getattr(written, name, None) if own else None)
            if own and not isinstance(inner, BaseModel):
                text += "*"
            parts.append(f"{name}=({text})" if isinstance(inner, BaseModel) else f"{name}={text}")
        return ", ".join(parts)
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, frozenset | set):
        members = sorted(value, key=repr)
        if len(members) > _MAX_MEMBERS:
            return f"<{len(members)} values>"
        return "{" + ", ".join(_value(member, None) for member in members) + "}"
    if callable(value):
        return getattr(value, "__qualname__", type(value).__name__)
    return repr(value)
