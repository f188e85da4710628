"""``load_config``: client keyword arguments from TOML, YAML or a mapping.

The file mirrors the client's keywords: a ``policy`` table, an ``endpoints`` table of
policies by endpoint key, and other client keywords beside them. Every error is a
``ValueError`` naming the file, the key and the field.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ._call._routing import parse_endpoint_key
from ._policy import Policy

__all__ = ["load_config"]

_CLIENT_KEYWORDS = frozenset(
    {
        "base_url",
        "headers",
        "params",
        "cookies",
        "timeout",
        "follow_redirects",
        "max_redirects",
        "http1",
        "http2",
        "verify",
        "trust_env",
        "default_encoding",
        "raise_for_error",
        "correlation_header",
    }
)


ConfigSource = str | os.PathLike[str] | Mapping[str, Any]


def load_config(
    path_or_mapping: ConfigSource | None = None, *, source: ConfigSource | None = None
) -> dict[str, Any]:
    """Read a client configuration; returns keyword arguments for the clients.

    ``path_or_mapping`` is a path to a ``.toml``, ``.yaml`` or ``.yml`` file (YAML needs the
    ``yaml`` extra), or a mapping of the same structure; ``source=`` is its older name,
    still accepted. Usage: ``rc.ResilientClient(**rc.load_config("api.toml"))``. Raises
    ``ValueError`` (naming file, key and field) for anything malformed,
    ``FileNotFoundError`` for a missing file, ``TypeError`` unless exactly one of the two
    is given.
    """
    if path_or_mapping is None:
        path_or_mapping, source = source, None
    if path_or_mapping is None or source is not None:
        raise TypeError("load_config() takes one configuration: path_or_mapping (or source=)")
    if isinstance(path_or_mapping, Mapping):
        return _build(path_or_mapping, "<mapping>")
    path = Path(path_or_mapping)
    return _build(_read(path), str(path))


def _read(path: Path) -> Mapping[str, Any]:
    suffix = path.suffix.lower()
    text = path.read_bytes()
    if suffix == ".toml":
        try:
            return tomllib.loads(text.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: not valid TOML: {exc}") from exc
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ValueError(
                f"{path}: reading YAML needs PyYAML: pip install 'resilient-client[yaml]'"
            ) from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML: {exc}") from exc
        if data is None:
            return {}
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: the top level must be a mapping, not {type(data).__name__}")
        return data
    raise ValueError(f"{path}: unknown configuration format {suffix!r} (use .toml, .yaml or .yml)")


def _build(data: Mapping[str, Any], origin: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in data.items():
        if key == "policy":
            result["policy"] = _policy(value, origin, "policy")
        elif key == "endpoints":
            if not isinstance(value, Mapping):
                raise ValueError(f"{origin}: endpoints must be a table of endpoint keys")
            endpoints: dict[str, Policy] = {}
            for endpoint_key, table in value.items():
                where = f"endpoints.{endpoint_key!r}"
                try:
                    parse_endpoint_key(endpoint_key)
                except (ValueError, TypeError) as exc:
                    raise ValueError(f"{origin}: {where}: {exc}") from exc
                endpoints[endpoint_key] = _policy(table, origin, where)
            result["endpoints"] = endpoints
        elif key in _CLIENT_KEYWORDS:
            result[key] = value
        else:
            known = ", ".join(sorted(_CLIENT_KEYWORDS | {"policy", "endpoints"}))
            raise ValueError(f"{origin}: unknown key {key!r} (known: {known})")
    return result


def _policy(table: object, origin: str, where: str) -> Policy:
    if not isinstance(table, Mapping):
        raise ValueError(f"{origin}: {where} must be a table, not {type(table).__name__}")
    try:
        return Policy.model_validate(dict(table))
    except ValidationError as exc:
        problems = "; ".join(
            f"{where}.{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        raise ValueError(f"{origin}: {problems}") from exc
