"""Redaction: what telemetry, log records and exception messages may say about a request.

Three rules, after the OpenTelemetry semantic conventions (``url.full``) and the
"handling sensitive data" guidance:

- URL credentials never leave: ``https://user:pw@host/`` becomes
  ``https://REDACTED:REDACTED@host/``.
- Values of sensitive query parameters become ``REDACTED``, keeping the key
  (``?color=blue&sig=REDACTED``). The names are matched case-insensitively - a superset
  of semconv's case-sensitive list - and the list is configurable.
- Headers are recorded only from an explicit allow-list, and never the sensitive ones
  (``Authorization``, ``Cookie``, ``Set-Cookie``, ``Proxy-Authorization``, ``X-Api-Key``
  and the rest of :data:`ALWAYS_SENSITIVE_HEADERS`, whatever the configuration says),
  nor any name matching :attr:`Redaction.sensitive_header_pattern`. Header names are
  compared stripped and lower-cased, on both sides.

- A server's error text is masked before it reaches an exception message, a log record
  or a span (:func:`mask_text`): e-mail addresses, card numbers (13 to 19 digits, spaces or
  dashes between them, Luhn-checked so that order numbers stay), bearer tokens, well-known
  API key shapes (``sk-...``, ``ghp_...``, ``AKIA...``) and ``api_key=...``-style
  assignments become ``[email]``, ``[card]`` and ``[token]``; URLs are redacted as above;
  control and bidirectional-override characters (CR, LF, ESC, U+202E, ...), which could
  forge log lines or reorder what a reader sees, are dropped. Identifiers that servers or
  callers choose (correlation ids, request ids, codes) keep their text but have those
  characters escaped (:func:`neutralize`).

Everything here is pure string work, without OpenTelemetry: ``telemetry`` records URLs
through it, and ``problems`` masks the text of the exception messages it builds. Every
pattern is anchored at the start of a run of the characters it matches and cannot
backtrack over more than a bounded stretch, so a hostile 64 KiB error text costs linear
time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, PrivateAttr, field_validator

from ._mask import (
    REDACTED,
    mask_emails,
    mask_personal_data,
    neutralize,
    without_unsafe_characters,
)

__all__ = [
    "ALWAYS_SENSITIVE_HEADERS",
    "DEFAULT_REDACTION",
    "DEFAULT_SENSITIVE_HEADERS",
    "DEFAULT_SENSITIVE_HEADER_PATTERN",
    "DEFAULT_SENSITIVE_QUERY_PARAMETERS",
    "REDACTED",
    "SEMCONV_SENSITIVE_QUERY_PARAMETERS",
    "Redaction",
    "mask_text",
    "neutralize",
    "redact_text",
    "redact_url",
]

SEMCONV_SENSITIVE_QUERY_PARAMETERS: frozenset[str] = frozenset(
    {
        "AWSAccessKeyId",
        "Signature",
        "sig",
        "X-Goog-Signature",
        "X-Amz-Signature",
        "X-Amz-Credential",
        "X-Amz-Security-Token",
    }
)
"""The semantic conventions' list (v1.44; Development status, "subject to change")."""

DEFAULT_SENSITIVE_QUERY_PARAMETERS: frozenset[str] = SEMCONV_SENSITIVE_QUERY_PARAMETERS | {
    "access_token",  # RFC 6750 §2.3
    "refresh_token",
    "id_token",
    "token",
    "code",
    "client_secret",
    "api_key",
    "apikey",
    "key",  # Google API keys
    "api-key",
    "x-api-key",
    "password",
    "secret",
    "signature",
    "X-Goog-Credential",
}
"""Semconv's list plus the common credential-bearing names (standards.md §7.3).

``code`` is OAuth's authorization code (RFC 6749 §4.1.2) in a redirect URL; this list is
applied to URL query strings only, so a problem's ``code`` (an error code) is untouched."""

ALWAYS_SENSITIVE_HEADERS: frozenset[str] = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
)
"""Headers never recorded, whatever a :class:`Redaction` says."""

DEFAULT_SENSITIVE_HEADERS: frozenset[str] = ALWAYS_SENSITIVE_HEADERS | {
    "api-key",
    "x-auth-token",
    "x-amz-security-token",
    "x-goog-api-key",
    "ocp-apim-subscription-key",
}

DEFAULT_SENSITIVE_HEADER_PATTERN = (
    r"token|secret|passw|api[-_]?key|session|signature|credential|auth|cookie"
)

# A URL inside free text: scheme, "://", then everything up to whitespace or a quote. The
# scheme is matched from the start of its run of scheme characters only (the look-behind):
# tried from every letter of a long run, a failing match would take quadratic time, and
# the text may be a server's 64 KiB error detail.
_URL_IN_TEXT = re.compile(r"(?<![A-Za-z0-9+.\-])[A-Za-z0-9+.\-]+://[^\s'\"<>`]+")


class Redaction(BaseModel):
    """What telemetry may record of a request (frozen; validated at construction).

    - ``query_parameters``: names whose values are replaced with ``REDACTED`` in URLs,
      matched case-insensitively; a full replacement of
      :data:`DEFAULT_SENSITIVE_QUERY_PARAMETERS` (extend it with ``|``).
    - ``sensitive_headers``: header names never recorded, even when allow-listed
      (case-insensitive); :data:`ALWAYS_SENSITIVE_HEADERS` are added whatever is given.
    - ``sensitive_header_pattern``: a regular expression; a header name it finds
      (searched case-insensitively) is never recorded either. ``""`` disables the pattern.

    Raises ``pydantic.ValidationError`` naming the field for an empty name or a pattern
    that does not compile.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    query_parameters: frozenset[str] = DEFAULT_SENSITIVE_QUERY_PARAMETERS
    sensitive_headers: frozenset[str] = DEFAULT_SENSITIVE_HEADERS
    sensitive_header_pattern: str = DEFAULT_SENSITIVE_HEADER_PATTERN

    _query_lower: frozenset[str] = PrivateAttr()
    _headers_lower: frozenset[str] = PrivateAttr()
    _pattern: re.Pattern[str] | None = PrivateAttr()

    @field_validator("query_parameters", "sensitive_headers")
    @classmethod
    def _check_names(cls, value: frozenset[str]) -> frozenset[str]:
        for name in value:
            if not name or not name.strip():
                raise ValueError("names must be non-empty")
        return value

    @field_validator("sensitive_header_pattern")
    @classmethod
    def _check_pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value

    def model_post_init(self, context: object, /) -> None:
        self._query_lower = frozenset(name.lower() for name in self.query_parameters)
        self._headers_lower = ALWAYS_SENSITIVE_HEADERS | {
            _header_key(name) for name in self.sensitive_headers
        }
        pattern = self.sensitive_header_pattern
        self._pattern = re.compile(pattern, re.IGNORECASE) if pattern else None

    # -- headers -----------------------------------------------------------------------

    def is_sensitive_header(self, name: str) -> bool:
        """Whether header ``name`` must never be recorded (case-insensitive, surrounding
        whitespace ignored)."""
        lower = _header_key(name)
        if lower in self._headers_lower:
            return True
        return self._pattern is not None and self._pattern.search(lower) is not None

    def is_sensitive_query_parameter(self, name: str) -> bool:
        """Whether query parameter ``name``'s value is redacted (case-insensitive)."""
        return _decoded_lower(name) in self._query_lower

    def check_recorded_headers(self, names: Iterable[str]) -> tuple[str, ...]:
        """``names`` stripped and lower-cased, for an allow-list of recorded headers.

        Raises ``ValueError`` naming the first sensitive one: asking to record
        ``Authorization`` is a configuration mistake, not something to drop silently.
        """
        checked: list[str] = []
        for name in names:
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"recorded header names must be non-empty strings, got {name!r}")
            lower = _header_key(name)
            if self.is_sensitive_header(lower):
                raise ValueError(
                    f"header {name!r} is sensitive and is never recorded "
                    "(see Redaction.sensitive_headers and sensitive_header_pattern)"
                )
            if lower not in checked:
                checked.append(lower)
        return tuple(checked)

    # -- URLs and text -------------------------------------------------------------------

    def url(self, url: object) -> str:
        """``url`` (an ``httpx.URL``, ``httpx2.URL`` or ``str``: anything whose ``str()`` is
        the URL) as text with credentials and sensitive query values replaced.

        ``https://u:p@host/a?sig=x&q=1#f`` →
        ``https://REDACTED:REDACTED@host/a?sig=REDACTED&q=1#f``. A fragment shaped like a
        query (``#access_token=...``) is redacted the same way, and an e-mail address in
        the path becomes ``[email]`` (``/users/[email]/orders``).
        """
        text = str(url)
        if "?" not in text and "#" not in text and "@" not in text and "%40" not in text:
            return text  # the common case: nothing that could hold a secret
        before_fragment, hash_mark, fragment = text.partition("#")
        head, question, query = before_fragment.partition("?")
        scheme, separator, rest = head.partition("://")
        start, path = "", head  # a URL without a scheme and host: all path
        if separator:
            authority, slash, path = rest.partition("/")
            if "@" in authority:
                authority = f"{REDACTED}:{REDACTED}@" + authority.rpartition("@")[2]
            start = f"{scheme}://{authority}{slash}"
        if "@" in path or "%40" in path:
            # An e-mail address as a path segment (/users/jane@example.com, its @ often
            # sent as %40) is personal data: spans, logs and reports get [email].
            unquoted = path.replace("%40", "@")
            masked = mask_emails(unquoted)
            if masked != unquoted:
                path = masked
        head = start + path
        if query:
            query = self.query(query)
        if "=" in fragment:  # OAuth's implicit flow puts tokens there
            fragment = self.query(fragment)
        return f"{head}{question}{query}{hash_mark}{fragment}"

    def query(self, query: str) -> str:
        """A raw (percent-encoded) query string with sensitive values replaced."""
        sensitive = self._query_lower
        parts = query.split("&")
        changed = False
        for index, part in enumerate(parts):
            name, equals, value = part.partition("=")
            if equals and value and _decoded_lower(name) in sensitive:
                parts[index] = f"{name}={REDACTED}"
                changed = True
        return "&".join(parts) if changed else query

    def text(self, text: str) -> str:
        """``text`` with every URL in it redacted as :meth:`url` does (for log lines and
        exception messages)."""
        if "://" not in text:
            return text
        return _URL_IN_TEXT.sub(lambda match: self.url(match.group(0)), text)

    def mask(self, text: str) -> str:
        """A server's free text, safe for a message, a log record or a span: URLs
        redacted (:meth:`text`), e-mail addresses, Luhn-valid card numbers and tokens
        masked, control and bidirectional-formatting characters dropped. Linear time."""
        return mask_personal_data(self.text(without_unsafe_characters(text)))


def _header_key(name: str) -> str:
    """How header names are compared: a name configured or asked for as
    ``" Authorization "`` is still ``authorization``."""
    return name.strip().lower()


@lru_cache(maxsize=1024)
def _decoded_lower(name: str) -> str:
    return unquote_plus(name).lower() if "%" in name or "+" in name else name.lower()


DEFAULT_REDACTION = Redaction()


def redact_url(url: object, redaction: Redaction | None = None) -> str:
    """``url`` as text, safe for telemetry and logs (see :meth:`Redaction.url`).

    ``redaction`` ``None`` means the default :class:`Redaction`.
    """
    return (redaction or DEFAULT_REDACTION).url(url)


def mask_text(text: str, redaction: Redaction | None = None) -> str:
    """A server's free text (an error ``detail``, a ``title``) made safe for an exception
    message, a log record or a span (see :meth:`Redaction.mask`): e-mail addresses become
    ``[email]``, Luhn-valid card numbers ``[card]``, bearer tokens and API keys
    ``[token]``, URLs are redacted, control and bidi characters dropped.

    ``redaction`` ``None`` means the default :class:`Redaction`. Linear time in
    ``len(text)``; callers bound the text they pass (a message needs its first few hundred
    characters only).
    """
    return (redaction or DEFAULT_REDACTION).mask(text)


def redact_text(text: str, redaction: Redaction | None = None) -> str:
    """``text`` with every URL in it redacted (see :meth:`Redaction.text`).

    ``redaction`` ``None`` means the default :class:`Redaction`.
    """
    return (redaction or DEFAULT_REDACTION).text(text)
