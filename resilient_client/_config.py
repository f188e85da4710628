"""``load_config``: client keyword arguments from TOML, YAML or a mapping.

The file mirrors the client's keywords: a ``policy`` table, an ``endpoints`` table of
policies by endpoint key, a ``failover`` table (``rc.Failover``'s fields), and other client
keywords beside them. Every error is a
``ValueError`` naming the file, the table path and the field, with a "did you mean" for a
misspelt key at any depth. TOML has no ``null``: ``false`` or ``"off"`` stands for
Python's ``None`` wherever ``None`` means off (``retry = false``, ``correlation_header =
"off"``, ``timeouts.total = "off"``). An empty table (``retry = {}``) means that
strategy with its defaults, as ``Retry()`` does.

Keys that are valid but can never match a request (one that repeats ``base_url``'s path,
one with a query string) are not errors: each is a :class:`ConfigWarning`, also listed in
:attr:`ClientConfig.warnings` for ``resilient-client check``.
"""

from __future__ import annotations

import datetime
import difflib
import os
import tomllib
import types
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from ._call._routing import Router, parse_endpoint_key
from ._failover import Failover
from ._policy import Policy, merge

__all__ = ["ClientConfig", "ConfigWarning", "endpoint_key_warnings", "load_config"]

_TABLE, _LIST, _NONE = Mapping, list, type(None)
# The client keywords a file may set, with the types of data each takes and how to say
# them. Another type would reach httpx as it is: "false" is true to it, and the rest
# fails later, at construction or on the first call, naming no file. An object that is
# not data (an httpx.Timeout, an SSLContext given in a mapping) is the client's to judge.
_KEYWORD_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "base_url": ((str,), "a string"),
    "headers": ((_TABLE, _LIST, _NONE), "a table"),
    "params": ((_TABLE, _LIST, str, _NONE), "a table or a string"),
    "cookies": ((_TABLE, _LIST, _NONE), "a table"),
    "timeout": ((int, float, _NONE), "a number of seconds"),
    "follow_redirects": ((bool,), "true or false"),
    "max_redirects": ((int,), "a whole number"),
    "http1": ((bool,), "true or false"),
    "http2": ((bool,), "true or false"),
    "verify": ((bool, str), "true, false or a CA bundle's path"),
    "trust_env": ((bool,), "true or false"),
    "default_encoding": ((str,), "an encoding's name"),
    "raise_for_error": ((bool,), "true or false"),
    "correlation_header": ((str, _NONE), 'a string or "off"'),
}
_DATA = (str, int, float, bool, list, Mapping, _NONE, datetime.date, datetime.time)
_CLIENT_KEYWORDS = frozenset(_KEYWORD_TYPES)
# "probes": the synthetic checks of ``resilient-client probe`` ([[probes]] tables), kept
# beside the client's keywords (ClientConfig.probes), never passed to the client.
_TOP_LEVEL = _CLIENT_KEYWORDS | {"policy", "endpoints", "probes", "failover"}
# Client keywords whose None means off, so that TOML can say it.
_SWITCHABLE_KEYWORDS = frozenset({"correlation_header"})
_OFF = "off"

ConfigSource = str | os.PathLike[str] | Mapping[str, Any]


class ConfigWarning(UserWarning):
    """A configuration that is valid but almost certainly not what was meant, such as an
    endpoint key that can never match a request."""


class ClientConfig(dict[str, Any]):
    """What :func:`load_config` returns: the client's keyword arguments (a plain ``dict``
    to pass as ``**kwargs``) that prints as the policy each endpoint actually gets.

    ``policy`` and ``endpoints`` hold the policies as written; the client merges each
    endpoint's policy over the default (:func:`~resilient_client._policy.merge`).
    ``str()`` and ``repr()`` show that merged, effective policy per endpoint, marking with
    ``*`` what the endpoint's own table set. :attr:`origin` names the source,
    :attr:`warnings` lists the :class:`ConfigWarning` texts it raised.
    """

    origin: str
    warnings: tuple[str, ...]
    #: The ``[[probes]]`` tables of ``resilient-client probe``, as written (not a keyword).
    probes: tuple[dict[str, Any], ...] = ()

    def __init__(self, data: Mapping[str, Any], origin: str, found: Iterable[str] = ()) -> None:
        super().__init__(data)
        self.origin = origin
        self.warnings = tuple(found)

    def effective(self) -> dict[str, Policy]:
        """The policy each endpoint gets, by key, after ``"default"``: the default policy
        (``Policy()`` when the configuration sets none)."""
        default = self.get("policy") or Policy()
        result = {"default": default}
        for key, override in (self.get("endpoints") or {}).items():
            result[key] = merge(default, override)
        return result

    def __repr__(self) -> str:
        from ._config_view import describe  # the view is only needed when printed

        return describe(self)

    __str__ = __repr__


def load_config(
    path_or_mapping: ConfigSource | None = None, *, source: ConfigSource | None = None
) -> ClientConfig:
    """Read a client configuration; returns keyword arguments for the clients.

    ``path_or_mapping`` is a path to a ``.toml``, ``.yaml`` or ``.yml`` file (YAML needs the
    ``yaml`` extra), or a mapping of the same structure; ``source=`` is its older name,
    still accepted. Usage: ``rc.ResilientClient(**rc.load_config("api.toml"))``.
    ``false`` or ``"off"`` for a field whose ``None`` means off (a strategy, a timeout,
    ``correlation_header``) is ``None``. The result is a :class:`ClientConfig`, a ``dict``
    whose ``print()`` shows each endpoint's effective policy.

    Raises ``ValueError`` (naming file, table path and field, with a "did you mean" for a
    misspelt key) for anything malformed, ``FileNotFoundError`` for a missing file,
    ``TypeError`` unless exactly one of the two is given. Warns :class:`ConfigWarning` for
    endpoint keys that can never match.
    """
    if path_or_mapping is None:
        path_or_mapping, source = source, None
    if path_or_mapping is None or source is not None:
        raise TypeError("load_config() takes one configuration: path_or_mapping (or source=)")
    if isinstance(path_or_mapping, Mapping):
        config = _build(path_or_mapping, "<mapping>")
    else:
        path = Path(path_or_mapping)
        config = _build(_read(path), str(path))
    for text in config.warnings:
        warnings.warn(text, ConfigWarning, stacklevel=2)
    return config


def endpoint_key_warnings(keys: Iterable[str], base_url: str | None = None) -> list[str]:
    """Why each of ``keys`` (valid endpoint keys) can never match a request, if it cannot:
    a query string or fragment (keys match the path only), or a path that repeats
    ``base_url``'s (keys match relative to it). One line per problem, with the key meant.
    """
    base = urlsplit(base_url).path.rstrip("/") if base_url else ""
    found: list[str] = []
    for key in keys:
        method, _, path = key.strip().partition(" ")
        path = path.strip()
        cut = min((i for i in (path.find("?"), path.find("#")) if i >= 0), default=-1)
        if cut >= 0:
            meant = f"{method} {path[:cut] or '/'}"
            found.append(
                f"endpoint key {key!r} has a query string or fragment, but keys match the "
                f"path only, so it never matches: did you mean {meant!r}?"
            )
            path = path[:cut]
        if base and (path == base or path.startswith(base + "/")):
            meant = f"{method} {path[len(base) :] or '/'}"
            found.append(
                f"endpoint key {key!r} repeats base_url's path {base!r}, but keys match "
                f"relative to it, so it matches only {base}{path}: did you mean {meant!r}?"
            )
    return found


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
            raise ValueError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from exc
        if data is None:
            return {}
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: the top level must be a mapping, not {type(data).__name__}")
        return data
    raise ValueError(f"{path}: unknown configuration format {suffix!r} (use .toml, .yaml or .yml)")


def _yaml_problem(exc: Exception) -> str:
    """PyYAML's reason and place in one line, without the lines of the file it quotes
    (one may hold a secret: a header's API key, a URL's password)."""
    problem = getattr(exc, "problem", None)
    if problem is None:  # not a marked error: no quote of the file, maybe several lines
        return " ".join(str(exc).split())
    context, mark = getattr(exc, "context", None), getattr(exc, "problem_mark", None)
    where = "" if mark is None else f" (line {mark.line + 1}, column {mark.column + 1})"
    return f"{context}: {problem}{where}" if context else f"{problem}{where}"


def _build(data: Mapping[str, Any], origin: str) -> ClientConfig:
    result: dict[str, Any] = {}
    found: list[str] = []
    probes: tuple[dict[str, Any], ...] = ()
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
            try:  # two keys for the same requests: the client would refuse them
                Router((endpoint_key, None) for endpoint_key in endpoints)
            except ValueError as exc:
                raise ValueError(f"{origin}: endpoints: {exc}") from exc
            result["endpoints"] = endpoints
        elif key == "failover":
            result["failover"] = None if _says_off(value) else _failover(value, origin)
        elif key == "probes":
            if not isinstance(value, list) or not all(isinstance(t, Mapping) for t in value):
                raise ValueError(f"{origin}: probes must be an array of tables ([[probes]])")
            probes = tuple(dict(table) for table in value)
        elif key in _SWITCHABLE_KEYWORDS and _says_off(value):
            result[key] = None
        elif key in _CLIENT_KEYWORDS:
            result[key] = _keyword(key, value, origin)
        else:
            # A strategy written at the top level belongs under [policy]: suggest that too.
            strategies = {f"policy.{name}": name for name in Policy.model_fields}
            hint = _hint(key, _TOP_LEVEL, strategies)
            raise ValueError(f"{origin}: {key}: unknown key {key!r}{hint}")
    if "endpoints" in result:
        base_url = result.get("base_url")
        keys = result["endpoints"]
        found.extend(f"{origin}: {text}" for text in endpoint_key_warnings(keys, base_url))
    config = ClientConfig(result, origin, found)
    config.probes = probes
    return config


def _keyword(key: str, value: object, origin: str) -> object:
    """``value`` for the client keyword ``key``, if it is of a type the keyword takes
    (:data:`_KEYWORD_TYPES`); else a ``ValueError`` naming the type, never the value."""
    types_, what = _KEYWORD_TYPES[key]
    if not isinstance(value, _DATA):
        return value
    if isinstance(value, types_) and (bool in types_ or not isinstance(value, bool)):
        return value
    raise ValueError(f"{origin}: {key}: must be {what}, not {type(value).__name__}")


def _policy(table: object, origin: str, where: str) -> Policy:
    if not isinstance(table, Mapping):
        raise ValueError(f"{origin}: {where} must be a table, not {type(table).__name__}")
    data = _prepared(table, Policy, origin, where)
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_problem(where, error) for error in exc.errors())
        raise ValueError(f"{origin}: {problems}") from exc


def _failover(table: object, origin: str) -> Failover:
    if not isinstance(table, Mapping):
        raise ValueError(f"{origin}: failover must be a table, not {type(table).__name__}")
    try:
        return Failover.model_validate(table)
    except ValidationError as exc:
        problems = "; ".join(_problem("failover", error) for error in exc.errors())
        raise ValueError(f"{origin}: {problems}") from exc


def _problem(where: str, error: Any) -> str:
    loc = ".".join(str(part) for part in error["loc"])
    text = f"{where}.{loc}: {error['msg']}"
    if _says_off(error.get("input")):
        text += f" ({error['loc'][-1]} cannot be switched off)"
    return text


def _prepared(
    table: Mapping[Any, Any], model: type[BaseModel], origin: str, where: str
) -> dict[Any, Any]:
    """``table`` for ``model``: ``false``/``"off"`` turned into ``None`` where ``None``
    means off, nested tables likewise; an unknown key is a ``ValueError`` with the
    nearest known one."""
    fields = model.model_fields
    forbids_extra = model.model_config.get("extra") == "forbid"
    data: dict[Any, Any] = {}
    for key, value in table.items():
        info = fields.get(key) if isinstance(key, str) else None
        if info is None:
            if forbids_extra:
                raise ValueError(
                    f"{origin}: {where}.{key}: unknown field {key!r}{_hint(str(key), fields)}"
                )
            data[key] = value
            continue
        if _is_off(value, info.annotation):
            value = None
        elif isinstance(value, Mapping):
            inner = _model_in(info.annotation)
            if inner is not None:
                value = _prepared(value, inner, origin, f"{where}.{key}")
        data[key] = value
    return data


def _members(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def _says_off(value: object) -> bool:
    return value is False or (isinstance(value, str) and value.strip().lower() == _OFF)


def _is_off(value: object, annotation: Any) -> bool:
    """Whether ``value`` says off (``false``, ``"off"``) for a field that takes ``None``
    and for which that value means nothing else (not a ``bool``, not a string)."""
    if not _says_off(value):
        return False
    members = _members(annotation)
    if type(None) not in members:
        return False
    for member in members:
        if member is Any or member is bool or member is str:
            return False
        if get_origin(member) is Literal and any(
            isinstance(choice, (bool, str)) for choice in get_args(member)
        ):
            return False
    return True


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The one pydantic model a field holds (``Retry`` for ``Retry | None``), if any."""
    models = [
        member
        for member in _members(annotation)
        if isinstance(member, type) and issubclass(member, BaseModel)
    ]
    return models[0] if len(models) == 1 else None


def _hint(key: str, known: Iterable[str], elsewhere: Mapping[str, str] | None = None) -> str:
    """The "did you mean ...?" for ``key``: the known name closest to it by difflib's
    similarity ratio (at least 0.6), then the known names. ``elsewhere`` maps keys that
    belong in another table (``policy.retry``) to the name to compare."""
    names = sorted(known)
    candidates = {name: name for name in names} | dict(elsewhere or {})
    by_text: dict[str, str] = {}
    for full, bare in candidates.items():
        by_text.setdefault(bare, full)  # a name known here wins over one from elsewhere
    close = difflib.get_close_matches(key, list(by_text), n=1, cutoff=0.6)
    listed = ", ".join(names)
    if not close:
        return f" (known: {listed})"
    return f"; did you mean {by_text[close[0]]!r}? (known: {listed})"
