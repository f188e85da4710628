"""``resilient-client outbox list|show ID|replay|drop ID [--store URL]``.

``cli.py`` adds the parser with :func:`add_parser` and runs the parsed arguments with
:func:`run`; the formatting functions are plain, for tests and other front ends. Nothing
printed includes a body or a header value: ``show`` gives the stored header *names* and
the body's size.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from ._model import OutboxEntry, ReplayResult
from ._outbox import Outbox
from ._store import OutboxStoreError, sqlite_path

__all__ = [
    "DEFAULT_STORE",
    "STORE_VARIABLE",
    "add_parser",
    "drop_entry",
    "format_entries",
    "format_entry",
    "format_result",
    "run",
]

STORE_VARIABLE = "RESILIENT_CLIENT_OUTBOX"
DEFAULT_STORE = "sqlite:///outbox.db"


def _when(entry_time: Any) -> str:
    return "-" if entry_time is None else entry_time.strftime("%Y-%m-%d %H:%M:%S UTC")


def format_entries(entries: Iterable[OutboxEntry]) -> str:
    """One line per entry - id, state, endpoint, parked, attempts+replays, next replay,
    last error - under a header; ``"no entries"`` for none."""
    rows = [
        (
            e.id,
            e.state,
            e.endpoint,
            _when(e.parked_at),
            f"{e.attempts}+{e.replays}",
            _when(e.next_replay_at) if e.state == "pending" else "-",
            e.last_error or "-",
        )
        for e in entries
    ]
    if not rows:
        return "no entries"
    head = ("id", "state", "endpoint", "parked", "tries", "next replay", "last error")
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + "  "
        + row[-1]
        for row in [head, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


def format_entry(entry: OutboxEntry) -> str:
    """Every stored field of one entry, one per line; header names only, the body's size."""
    lines = [
        f"id:                 {entry.id}",
        f"state:              {entry.state}",
        f"endpoint:           {entry.endpoint}",
        f"request:            {entry.method} {entry.url}",
        f"idempotency key:    {entry.idempotency_key} ({entry.idempotency_header})",
        f"correlation id:     {entry.correlation_id or '-'}",
        f"parked at:          {_when(entry.parked_at)}",
        f"attempts:           {entry.attempts} (original call)",
        f"replays:            {entry.replays}",
        f"next replay:        {_when(entry.next_replay_at) if entry.state == 'pending' else '-'}",
        f"settled at:         {_when(entry.settled_at)}",
        f"last error:         {entry.last_error or '-'}",
        f"body:               {len(entry.body)} bytes",
        f"stored headers:     {', '.join(name for name, _ in entry.headers) or '-'}",
    ]
    if entry.reason:
        lines.append(f"reason:             {entry.reason}")
    if entry.problem is not None:
        lines.append(f"problem:            {entry.problem.summary()}")
    return "\n".join(lines)


def format_result(result: ReplayResult) -> str:
    """``delivered N, dead N, pending N``, then one line per dead or pending entry."""
    lines = [
        f"delivered {len(result.delivered)}, dead {len(result.dead)}, pending {len(result.pending)}"
    ]
    lines += [f"dead     {e.id}  {e.endpoint}  {e.reason}" for e in result.dead]
    lines += [f"pending  {e.id}  {e.endpoint}  {e.last_error}" for e in result.pending]
    return "\n".join(lines)


def drop_entry(outbox: Outbox, entry_id: str) -> bool:
    """Remove an entry; ``False`` if the store has none with this id."""
    return outbox.drop(entry_id)


def _count(text: str) -> int:
    """A ``--limit``: checked by argparse, so a bad one is a usage error (exit 2), not a
    traceback whose exit status 1 would read as "entries left"."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add ``outbox`` and its four commands to an ``add_subparsers()`` object."""
    outbox: argparse.ArgumentParser = commands.add_parser(
        "outbox", help="parked writes: list, show, replay, drop"
    )
    actions = outbox.add_subparsers(
        dest="outbox_command", required=True, help="what to do with the parked writes"
    )
    store_help = (
        f"sqlite:///path.db or redis://host:port/db (default: ${STORE_VARIABLE}, "
        f"else {DEFAULT_STORE})"
    )
    parsers = {
        "list": actions.add_parser("list", help="every pending and dead entry"),
        "show": actions.add_parser("show", help="one entry's stored fields"),
        "replay": actions.add_parser(
            "replay", help="send due entries again (no auth: for APIs needing none)"
        ),
        "drop": actions.add_parser("drop", help="remove one entry"),
    }
    for name, parser in parsers.items():
        parser.add_argument("--store", default=None, help=store_help)
        if name in ("show", "drop"):
            parser.add_argument("id", help="the entry's id (from `outbox list`)")
        if name == "list":
            parser.add_argument(
                "--state",
                choices=("pending", "dead"),
                default=None,
                help="only the entries in this state (default: both)",
            )
        if name == "replay":
            parser.add_argument("--limit", type=_count, default=None, help="entries at most")
    return outbox


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run a parsed ``outbox`` command. Exit status: 0 done; 1 no such entry, or a replay
    that left entries dead or pending; 2 the store does not exist (a SQLite file is never
    created here), cannot be opened or used (its error, naming it, on stderr)."""
    out = out or sys.stdout
    store = args.store or os.environ.get(STORE_VARIABLE) or DEFAULT_STORE
    try:
        # Opening a SQLite store creates its file: a mistyped path (or a shell without
        # $RESILIENT_CLIENT_OUTBOX) would read as "no entries" in the middle of an outage.
        if isinstance(store, str) and store.lower().startswith("sqlite:"):
            path = sqlite_path(store)
            if not os.path.exists(path):
                print(
                    f"resilient-client outbox: no outbox at {path} (name it with --store "
                    f"or ${STORE_VARIABLE})",
                    file=sys.stderr,
                )
                return 2
        outbox = Outbox(store)
    except (OutboxStoreError, ValueError) as exc:
        print(f"resilient-client outbox: {exc}", file=sys.stderr)
        return 2
    try:
        return _command(outbox, args, out)
    except OutboxStoreError as exc:
        print(f"resilient-client outbox: {exc}", file=sys.stderr)
        return 2
    finally:
        outbox.close()


def _command(outbox: Outbox, args: argparse.Namespace, out: TextIO) -> int:
    command = args.outbox_command
    if command == "list":
        entries = [e for e in outbox.entries() if args.state in (None, e.state)]
        print(format_entries(entries), file=out)
        return 0
    if command == "show":
        entry = outbox.get(args.id)
        if entry is None:
            print(f"no entry {args.id}", file=out)
            return 1
        print(format_entry(entry), file=out)
        return 0
    if command == "drop":
        dropped = drop_entry(outbox, args.id)
        print(f"dropped {args.id}" if dropped else f"no entry {args.id}", file=out)
        return 0 if dropped else 1
    from .._client import ResilientClient

    # The stored URLs are absolute; the client carries no auth (none is stored).
    with ResilientClient() as client:
        result = outbox.replay(client, limit=args.limit)
    print(format_result(result), file=out)
    return 0 if not result.dead and not result.pending else 1
