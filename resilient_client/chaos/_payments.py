"""``POST /payments/{name}``: an idempotent payments resource over :class:`Ledger`."""

from __future__ import annotations

import json

from ._asgi import BadParam
from ._call import Call
from ._ledger import Fresh, Mismatch, Outstanding, Replay, Stored, fingerprint, parse_key

__all__ = ["payments"]


def _amount(body: bytes) -> object:
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        return None
    return parsed.get("amount") if isinstance(parsed, dict) else None


async def _lose(call: Call, stored: Stored, mode: str) -> None:
    if mode == "mid":
        # Promise the whole body, send half of it, then cut: a truncated response.
        await call.answer(
            stored.status,
            stored.body[: len(stored.body) // 2],
            stored.headers,
            content_length=len(stored.body),
            more_body=True,
        )
    await call.cut()


async def payments(call: Call) -> None:
    """Create a payment, idempotently (draft-ietf-httpapi-idempotency-key-header).

    The key comes from ``Idempotency-Key`` (``header=X-Idempotency-Key`` names another),
    as a bare token or an sf-string; the payload fingerprint is a hash of the body.

    - no key: a new payment every time (201);
    - new key: processes ``work=S`` seconds (default 0), commits ONE effect, answers 201
      ``{"id", "amount", "key"}`` and keeps that response;
    - same key while processing: 409 problem ("request outstanding");
    - same key and payload after completion: the stored response, ``idempotent-replayed:
      true``, no new effect;
    - same key, other payload: 422 problem.

    ``lose=N``: the name's first N new operations (new keys, and every keyless request)
    commit their effect but lose the response, ``lose_mode=before`` (default: no response
    byte) or ``mid`` (a truncated body). Processing survives the client leaving; a server
    stop abandons it uncommitted.
    """
    req = call.request
    if req.method != "POST":
        await call.answer(405, b"", {"allow": "POST"})
        return
    work = req.number("work", 0.0) or 0.0
    lose = req.integer("lose", 0) or 0
    lose_mode = req.text("lose_mode") or "before"
    if lose_mode not in ("before", "mid"):
        raise BadParam("lose_mode", f"expected 'before' or 'mid', got {lose_mode!r}")
    header = (req.text("header") or "Idempotency-Key").lower()
    raw_key = req.headers.get(header)
    key = parse_key(raw_key) if raw_key is not None else None
    if key == "":
        return await call.problem(
            400, "idempotency-key-invalid", "Invalid idempotency key", f"{header} is empty."
        )

    decision = call.ledger.begin(call.name, key, fingerprint(req.body))
    if isinstance(decision, Outstanding):
        return await call.problem(
            409,
            "idempotency-in-progress",
            "Request outstanding",
            "A request with this idempotency key is still being processed; retry later.",
        )
    if isinstance(decision, Mismatch):
        return await call.problem(
            422,
            "idempotency-key-reused",
            "Idempotency key reused with a different payload",
            "This idempotency key was already used for a request with a different payload.",
        )
    if isinstance(decision, Replay):
        stored = decision.stored
        return await call.answer(
            stored.status, stored.body, {**stored.headers, "idempotent-replayed": "true"}
        )
    await _process(call, decision, work=work, lose=decision.operation <= lose, mode=lose_mode)


async def _process(call: Call, fresh: Fresh, *, work: float, lose: bool, mode: str) -> None:
    committed = False
    try:
        if work > 0:
            # A real server finishes the work though the client gave up: that is the case
            # idempotency keys exist for. Only a server stop abandons it.
            outcome = await call.wait(work, watch_client=False)
            if outcome != "elapsed":
                return await call.abandon(outcome)
        stored = call.ledger.commit(call.name, fresh, _amount(call.request.body))
        committed = True
    finally:
        if not committed:
            call.ledger.abandon(fresh)
    if lose:
        await _lose(call, stored, mode)
    else:
        await call.answer(stored.status, stored.body, stored.headers)
