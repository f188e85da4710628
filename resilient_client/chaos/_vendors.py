"""Vendor look-alikes: OpenAI's chat completions and Anthropic's messages, failing on a script.

The official SDKs can be pointed at the chaos upstream unchanged (their ``base_url``)::

    POST /vendor/{name}/openai/v1/chat/completions     base_url=f"{url}/vendor/{name}/openai/v1"
    POST /vendor/{name}/anthropic/v1/messages          base_url=f"{url}/vendor/{name}/anthropic"

The SDKs build their own URLs and send no query string of ours, so the script is chosen by
the ``x-chaos-script`` request header (the SDKs' ``default_headers=``), else by a suffix of
the name (``storm-always-500``), else it is ``flaky``. Attempts count per name, from 1:

==============  ==========================================================================
script          answers
==============  ==========================================================================
``flaky``       attempt 1: 429, attempt 2: 500, from attempt 3 on: 200
``always-500``  500 on every attempt
``always-429``  429 on every attempt
``ok``          200 on every attempt
==============  ==========================================================================

A failure carries the vendor's error envelope (:func:`~._envelopes.envelope`: OpenAI's
``{"error": {...}}`` with ``x-request-id``, Anthropic's ``{"type": "error", ...}`` with
``request-id``; the id is ``req_{name}_{attempt}``). Every failure also asks for a short
wait, which both our pipeline and the SDKs honour before their own backoff: a 429 sends
``retry-after-ms: 10`` and ``retry-after: 1``, a 500 ``retry-after-ms: 1`` - real APIs
send longer ones, but a test suite should not sleep through the SDKs' own retries.

A 200 is a body the SDK parses into its own type: an OpenAI ``chat.completion`` or an
Anthropic ``message``, echoing the request's ``model``. ``"stream": true`` is answered
400 (no server-sent events here); another method 405; another path 404.
"""

from __future__ import annotations

import json

from ._call import Call
from ._envelopes import envelope

__all__ = ["SCRIPTS", "SCRIPT_HEADER", "script_of", "vendor"]

SCRIPT_HEADER = "x-chaos-script"
"""The request header naming the script (lower-case)."""

# Status per attempt (1-based); past the end, the last entry repeats.
SCRIPTS: dict[str, tuple[int, ...]] = {
    "always-429": (429,),
    "always-500": (500,),
    "flaky": (429, 500, 200),
    "ok": (200,),
}
"""Every script: the statuses answered to attempts 1, 2, …; the last one repeats."""

_RETRY_AFTER: dict[int, dict[str, str]] = {
    429: {"retry-after-ms": "10", "retry-after": "1"},
    500: {"retry-after-ms": "1"},
}

# vendor → (path segments after it, the request-id header it answers with)
_VENDORS: dict[str, tuple[tuple[str, ...], str]] = {
    "anthropic": (("v1", "messages"), "request-id"),
    "openai": (("v1", "chat", "completions"), "x-request-id"),
}


def script_of(name: str, header: str | None) -> str | None:
    """The script the request asked for: the header's, else the name's suffix, else
    ``flaky``; None when the header names no script."""
    if header is not None:
        return header if header in SCRIPTS else None
    for script in SCRIPTS:
        if name.endswith("-" + script):
            return script
    return "flaky"


def _payload(body: bytes) -> dict[str, object]:
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _openai_completion(call: Call, model: str, request_id: str) -> dict[str, object]:
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": int(call.clock.wall()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": f"chaos {call.name} answered attempt {call.attempt}",
                    "refusal": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15},
    }


def _anthropic_message(call: Call, model: str, request_id: str) -> dict[str, object]:
    return {
        "id": f"msg_{request_id}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": f"chaos {call.name} answered attempt {call.attempt}"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 9, "output_tokens": 6},
    }


async def _fail(call: Call, vendor: str, status: int, request_id: str) -> None:
    headers, body = envelope(vendor, status, request_id=request_id)
    await call.answer(status, body, {**headers, **_RETRY_AFTER.get(status, {})})


async def vendor(call: Call) -> None:
    """``POST /vendor/{name}/{openai|anthropic}/v1/...``: see the module docstring."""
    vendor_name, rest = call.segments[0] if call.segments else "", call.segments[1:]
    known = _VENDORS.get(vendor_name)
    if known is None or rest != known[0]:
        detail = "Served: /vendor/{name}/openai/v1/chat/completions, .../anthropic/v1/messages."
        return await call.problem(404, "no-such-endpoint", "No such vendor endpoint", detail)
    if call.request.method != "POST":
        return await call.answer(405, b"", {"allow": "POST"})
    script = script_of(call.name, call.request.headers.get(SCRIPT_HEADER))
    if script is None:
        detail = f"{SCRIPT_HEADER} must be one of {sorted(SCRIPTS)}."
        return await call.problem(400, "bad-parameter", "Unknown chaos script", detail)
    payload = _payload(call.request.body)
    request_id = f"req_{call.name}_{call.attempt}"
    if payload.get("stream") is True:
        return await _fail(call, vendor_name, 400, request_id)
    statuses = SCRIPTS[script]
    status = statuses[min(call.attempt, len(statuses)) - 1]
    if status != 200:
        return await _fail(call, vendor_name, status, request_id)
    model = str(payload.get("model") or f"{vendor_name}-chaos")
    build = _openai_completion if vendor_name == "openai" else _anthropic_message
    await call.json(200, build(call, model, request_id), {known[1]: request_id})
