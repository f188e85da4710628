"""JSON:API v1.1 ``{"errors": [...]}`` (``application/vnd.api+json``).

The first error object is the problem: its ``code``, ``title``, ``detail``; ``type`` is
``links.type`` and ``instance`` is ``links.about`` (the occurrence), else the error's
``id``. A link may be a string or a link object with ``href``. Every error with a
``source`` becomes a field error, its field being ``source.pointer``, else
``source.parameter``, else ``source.header``. The first error's ``meta`` and its
``status`` string go to ``extensions``, as does the whole ``errors`` list when it holds
more than one; other top-level members (``meta``, ``jsonapi``, ``links``) are kept too.
"""

from __future__ import annotations

from ._model import Draft, FieldError
from ._values import JsonObject, as_code, as_dict, as_str, field_error, with_members

__all__ = ["parse"]


def parse(body: JsonObject, errors: list[JsonObject]) -> Draft:
    first = errors[0]
    extensions = with_members(
        {name: value for name, value in body.items() if name != "errors"},
        first,
        ("status", "meta"),
        errors,
    )
    links = as_dict(first.get("links")) or {}
    code = as_code(first.get("code"))
    return Draft(
        format="jsonapi",
        type=_href(links.get("type")),
        title=as_str(first.get("title")),
        detail=as_str(first.get("detail")),
        instance=_href(links.get("about")) or as_str(first.get("id")),
        code=code,
        field_errors=[e for e in map(_field_error, errors) if e is not None],
        extensions=extensions,
        signals=(code,),
    )


def _href(link: object) -> str | None:
    as_object = as_dict(link)
    return as_str(as_object.get("href")) if as_object is not None else as_str(link)


def _field_error(error: JsonObject) -> FieldError | None:
    source = as_dict(error.get("source"))
    if source is None:
        return None
    field = (
        as_str(source.get("pointer"))
        or as_str(source.get("parameter"))
        or as_str(source.get("header"))
    )
    return field_error(
        field,
        as_str(error.get("detail")) or as_str(error.get("title")),
        as_code(error.get("code")),
    )
