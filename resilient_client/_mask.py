"""Masking of free text a server or a caller wrote, before it reaches an exception message, a
log record or a span.

- :func:`mask_personal_data`: e-mail addresses become ``[email]``; card numbers (13 to 19
  digits, single spaces or dashes between them, Luhn-checked so that order numbers stay)
  ``[card]``; bearer tokens, well-known API key shapes (``sk-...``, ``ghp_...``,
  ``AKIA...``) and ``api_key=...``-style assignments ``[token]``.
- :func:`without_unsafe_characters`: control characters (CR, LF, ESC, ...) and the Unicode
  bidirectional formatting characters (U+202E, ...), which could forge a log line or
  reorder what a reader sees, removed (whitespace among them becomes a space).
- :func:`neutralize`: an identifier (a correlation id, a request id, a code) keeps its text,
  with those characters escaped instead, so it can still be searched for.

Hand-written patterns rather than a PII library (Presidio, scrubadub): those pull in NLP
models and are built for documents, not for one short line on the error path. Every
pattern has bounded quantifiers or is anchored where its run starts, and e-mail addresses
are found from their "@" with bounded work each, so a hostile 64 KiB text costs linear
time.
"""

from __future__ import annotations

import re

__all__ = [
    "REDACTED",
    "mask_emails",
    "mask_personal_data",
    "neutralize",
    "without_unsafe_characters",
]

REDACTED = "REDACTED"

# C0 and C1 controls, DEL, and the Unicode bidirectional formatting characters ("Trojan
# Source", CVE-2021-42574), and the line and paragraph separators.
_UNSAFE = "\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE_CHARACTERS = re.compile(f"[{_UNSAFE}]")

# Whitespace among them becomes a space (so words stay apart); the rest is dropped.
_SPACES = dict.fromkeys(map(ord, "\t\n\v\f\r\x1c\x1d\x1e\x1f\x85\u2028\u2029"), " ")

# E-mail addresses are found from their "@": up to 64 local-part characters before it
# (RFC 5321's limit), then a domain of two labels or more, read from at most 255
# characters after it. Each "@" costs a bounded amount of work, whatever surrounds it.
_LOCAL_PART = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,63}(?![A-Za-z0-9-])")
# Numbers with single spaces or dashes between their digit groups, found where such a run
# starts; nothing follows the greedy part, so there is no backtracking. Which groups form a
# card is decided in Python (:func:`_mask_cards`). ASCII digits only: Luhn is defined on
# them.
_NUMBER_RUN = re.compile(r"(?<![0-9])(?<![0-9][ -])[0-9]+(?:[ -][0-9]+)*")
_GROUP = re.compile(r"[0-9]+")
_WORD_CHARACTER = re.compile(r"\w")
_BEARER = re.compile(r"(?<![\w-])(Bearer|Basic)[ \t]+([A-Za-z0-9._~+/=-]{8,})", re.IGNORECASE)
# Shapes of well-known secret keys: OpenAI/Anthropic/Stripe ``sk-``/``sk_live_``, Stripe's
# ``pk_``/``rk_``, GitHub's ``ghp_``..., Slack's ``xoxb-``..., AWS access key ids, Google
# API keys.
_KEY_SHAPE = re.compile(
    r"(?<![\w-])(?:(?:sk|pk|rk)[-_][A-Za-z0-9_-]{12,}|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|github_pat_[A-Za-z0-9_]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}|(?:AKIA|ASIA)[A-Z0-9]{16}"
    r"|AIza[A-Za-z0-9_-]{30,})"
)
# Credential-bearing names (not ``code``: that is an error code as often as an OAuth code)
# followed by a value: ``name=value`` and JSON's ``"name": "value"`` for all of them,
# ``name: value`` only for the compound names, as "token: expired" is prose.
_COMPOUND = (
    r"(?:x-)?api[-_]?key|access[-_]token|refresh[-_]token|id[-_]token|client[-_]secret"
    r"|auth[-_]token|private[-_]key"
)
_NAMES = rf"{_COMPOUND}|secret|passw(?:or)?d|token|signature|sig|key"
_ASSIGNED_SECRET = re.compile(
    rf"(?<![\w-])(?:(?:{_NAMES})=(?!{REDACTED}\b)(?P<plain>[^\s\"'&,;)}}\]]{{1,4096}})"
    rf"|\"(?:{_NAMES})\"[ \t]*:[ \t]*\"(?P<json>[^\"\\]{{1,4096}})\""
    rf"|(?:{_COMPOUND})[ \t]*:[ \t]*(?P<colon>[^\s\"'&,;)}}\]]{{1,4096}}))",
    re.IGNORECASE,
)


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def without_unsafe_characters(text: str) -> str:
    """``text`` without control and bidirectional formatting characters; whitespace among
    them (CR, LF, tab, U+2028...) becomes a space."""
    if _UNSAFE_CHARACTERS.search(text) is None:
        return text
    return _UNSAFE_CHARACTERS.sub("", text.translate(_SPACES))


def mask_personal_data(text: str) -> str:
    """``text`` with e-mail addresses, Luhn-valid card numbers, bearer tokens and API keys
    masked (see the module docstring). Linear time."""
    text = mask_emails(text)
    text = _NUMBER_RUN.sub(_mask_cards, text)
    text = _BEARER.sub(_mask_bearer, text)
    text = _KEY_SHAPE.sub("[token]", text)
    return _ASSIGNED_SECRET.sub(_mask_assigned, text)


def mask_emails(text: str) -> str:
    """``text`` with each e-mail address replaced by ``[email]``. Linear time."""
    at = text.find("@")
    if at < 0:
        return text
    pieces: list[str] = []
    done = 0  # text[:done] is in pieces
    while at >= 0:
        start = at
        floor = max(done, at - 64)
        while start > floor and text[start - 1] in _LOCAL_PART:
            start -= 1
        # "REDACTED@host" is a URL's credentials, replaced already: the host stays.
        local = text[start:at]
        domain = _DOMAIN.match(text, at + 1, at + 256) if local and local != REDACTED else None
        if domain is None:
            at = text.find("@", at + 1)
            continue
        pieces.append(text[done:start])
        pieces.append("[email]")
        done = domain.end()
        at = text.find("@", done)
    pieces.append(text[done:])
    return "".join(pieces)


def _mask_assigned(match: re.Match[str]) -> str:
    group = next(name for name in ("plain", "json", "colon") if match.group(name) is not None)
    offset = match.start()
    whole = match.group(0)
    return whole[: match.start(group) - offset] + "[token]" + whole[match.end(group) - offset :]


def _mask_cards(match: re.Match[str]) -> str:
    """A run of digit groups with each card number in it (13 to 19 digits over whole
    groups, Luhn-valid) replaced by ``[card]``; a card may sit beside other numbers
    ("order 1234567890123 4111111111111111"), and a run of more than 19 digits with no
    separator (an order number) holds none."""
    run = match.group(0)
    if len(run) < 13:
        return run
    groups = [(group.start(), group.end()) for group in _GROUP.finditer(run)]
    # A group glued to a word ("ord_4111...", "4111...abc") is part of an identifier.
    text, start, end = match.string, match.start(), match.end()
    if end < len(text) and _WORD_CHARACTER.match(text, end):
        groups.pop()
    if groups and start > 0 and _WORD_CHARACTER.match(text, start - 1):
        groups.pop(0)
    pieces: list[str] = []
    done = 0  # run[:done] is in pieces
    first = 0
    while first < len(groups):
        last = _card_ending(run, groups, first)
        if last is None:
            first += 1
            continue
        pieces.append(run[done : groups[first][0]])
        pieces.append("[card]")
        done = groups[last][1]
        first = last + 1
    if not pieces:
        return run
    pieces.append(run[done:])
    return "".join(pieces)


def _card_ending(run: str, groups: list[tuple[int, int]], first: int) -> int | None:
    """The last group of the longest card number starting at group ``first``, if any.

    Card numbers are printed whole or in groups of 3 to 6 digits (4-4-4-4, 4-6-5,
    4-4-4-4-3), so a group under 3 digits ends the search: a run of single digits costs
    one step per group."""
    digits = ""
    found = None
    for index in range(first, len(groups)):
        start, end = groups[index]
        if end - start < 3:
            break
        digits += run[start:end]
        if len(digits) > 19:
            break
        if len(digits) >= 13 and _luhn(digits):
            found = index
    return found


def _mask_bearer(match: re.Match[str]) -> str:
    # "Bearer token required" names no token: a token has a digit or is long.
    token = match.group(2)
    if len(token) >= 20 or any(char.isdigit() for char in token):
        return f"{match.group(1)} [token]"
    return match.group(0)


_ESCAPES = {ord("\r"): "\\r", ord("\n"): "\\n", ord("\t"): "\\t"}


def neutralize(value: str, limit: int | None = 256) -> str:
    """An identifier a server or caller chose (a correlation id, a request id, a code),
    safe for a log record: control and bidirectional formatting characters escaped
    (CR LF → ``\\r\\n``, U+202E → ``\\u202e``), at most ``limit`` characters (an
    ellipsis marks a cut; None: no limit). Text without such characters, within the
    limit, comes back unchanged."""
    if limit is not None and len(value) > limit:
        value = value[: limit - 1] + "…"
    if _UNSAFE_CHARACTERS.search(value) is None:
        return value
    return _UNSAFE_CHARACTERS.sub(lambda match: _escape(match.group(0)), value)


def _escape(char: str) -> str:
    code = ord(char)
    return _ESCAPES.get(code) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
