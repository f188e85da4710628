"""How long the server asked us to wait, from the response headers.

Order (the Stainless SDKs' rule, standards §3.5): ``retry-after-ms`` (float milliseconds)
first; then ``Retry-After`` as delay-seconds, then as an HTTP-date (RFC 9110 §10.2.3, all
three date forms: IMF-fixdate, RFC 850, asctime; a zone-less asctime date is UTC).

- A date becomes ``date - now``, where "now" is the response's own ``Date`` header when
  it parses (the server's clock: no skew between the two clocks), else the ``now`` given.
- Negative delays and past dates become 0.0.
- Fractional seconds are accepted although the grammar allows only digits.
- Garbage yields None (no hint), not an error; a garbled ``retry-after-ms`` falls through
  to ``Retry-After``.
- Huge values are returned as they are (an absurdly long digit string may be ``inf``): the
  caller compares them with its cap and fails fast rather than sleeping.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime

import httpx

from .._clock import SYSTEM_CLOCK
from ._headers import fields_naming

__all__ = ["http_date_timestamp", "retry_after_seconds"]

# Digits with an optional fraction; deliberately not float(): that would also take
# "nan", "inf", "1_000" and "1e3".
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")

_NAMES = frozenset({b"retry-after-ms", b"retry-after"})


def retry_after_seconds(
    headers: httpx.Headers | Mapping[str, str], *, now: float | None = None
) -> float | None:
    """Seconds to wait before retrying, or None when the headers give no usable hint.

    ``headers``: the response's ``httpx.Headers`` (of a repeated field, the first copy
    counts), or a mapping of lower-case names to values.

    ``now`` is the wall-clock time (seconds since the epoch) an HTTP-date is measured from
    when the response carries no parseable ``Date`` header; None reads the system clock,
    and only then. Never raises.
    """
    # One pass over the headers, then dict lookups: a frame per header read saved.
    fields = fields_naming(headers, _NAMES)
    if fields is None:
        return None  # no hint, found in C
    millis = fields.get("retry-after-ms")
    if millis is not None and _NUMBER.fullmatch(millis.strip()):
        return max(0.0, float(millis) / 1000.0)
    value = fields.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if _NUMBER.fullmatch(value):
        return max(0.0, float(value))
    when = http_date_timestamp(value)
    if when is None:
        return None
    date = fields.get("date")
    server_now = http_date_timestamp(date) if date is not None else None
    if server_now is None:
        server_now = SYSTEM_CLOCK.wall() if now is None else now
    return max(0.0, when - server_now)


def http_date_timestamp(value: str) -> float | None:
    """An HTTP-date as seconds since the epoch, or None if it does not parse."""
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        stamp = moment.timestamp()
    except (OverflowError, ValueError, OSError):
        return None
    return stamp if math.isfinite(stamp) else None
