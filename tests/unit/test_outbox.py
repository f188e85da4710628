"""The outbox without a network: what is stored, the SQLite store's claims and leases, its
errors on bad files, the replay decisions as a table, the CLI's output."""

from __future__ import annotations

import argparse
import io
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pydantic
import pytest

import resilient_client as rc
from resilient_client._exceptions import WriteParked
from resilient_client.outbox import Outbox, OutboxEntry, OutboxStoreError, SqliteOutboxStore
from resilient_client.outbox._cli import add_parser, format_entries, format_entry, run
from resilient_client.outbox._model import stored_url
from resilient_client.outbox._replay import (
    REPLAY_BACKOFF,
    Outcome,
    ReplayPass,
    Step,
    held_endpoints,
    outcome_of,
)
from resilient_client.outbox._store import sqlite_path
from resilient_client.testing import FakeClock

EP = "POST /payments/{name}"
CANARY = "canary-secret-7f3a9c"


def write(key: str = "key-1", *, url: str = "https://api.test/payments/a") -> httpx.Request:
    return httpx.Request(
        "POST",
        url,
        json={"amount": 10},
        headers={
            "Idempotency-Key": key,
            "Authorization": f"Bearer {CANARY}",
            "Cookie": f"session={CANARY}",
            "X-Api-Key": CANARY,
            "X-Correlation-ID": "corr-1",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "X-Tenant": "acme",
        },
    )


def park(outbox: Outbox, key: str = "key-1", **kwargs: object) -> OutboxEntry:
    return outbox.park(
        write(key, **kwargs),  # type: ignore[arg-type]
        endpoint=EP,
        idempotency_key=key,
        idempotency_header="Idempotency-Key",
        correlation_id="corr-1",
        attempts=3,
        last_error="status 503",
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start_wall=1_800_000_000.0)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "outbox.db"


@pytest.fixture
def outbox(db: Path, clock: FakeClock) -> Outbox:
    return Outbox(f"sqlite:///{db}", clock=clock)


# -- what is stored -----------------------------------------------------------------------


def test_park_keeps_the_write_and_its_key_and_returns_a_due_entry(
    outbox: Outbox, clock: FakeClock
) -> None:
    entry = park(outbox)
    assert entry.state == "pending"
    assert entry.parked_at == datetime.fromtimestamp(clock.wall(), UTC)
    assert entry.parked_at.tzinfo is UTC
    assert (entry.attempts, entry.last_error, entry.endpoint) == (3, "status 503", EP)
    assert outbox.get(entry.id) == entry
    assert entry.body == b'{"amount":10}'
    names = [name.lower() for name, _ in entry.headers]
    assert "idempotency-key" in names and "x-tenant" in names and "x-correlation-id" in names


def test_sensitive_and_trace_headers_are_never_stored(outbox: Outbox) -> None:
    names = {name.lower() for name, _ in park(outbox).headers}
    assert not names & {"authorization", "cookie", "x-api-key", "traceparent", "content-length"}


def test_the_canary_secret_is_in_no_byte_of_the_store_files(outbox: Outbox, db: Path) -> None:
    for n in range(5):
        park(outbox, f"key-{n}")
    outbox.close()
    files = [path for path in db.parent.iterdir() if path.name.startswith(db.name)]
    assert db in files
    for path in files:  # the database, its WAL and shared-memory files
        assert CANARY.encode() not in path.read_bytes()
    assert b"acme" in b"".join(path.read_bytes() for path in files)  # a real read, not empty


def test_url_credentials_and_sensitive_query_parameters_are_not_stored() -> None:
    url = f"https://user:{CANARY}@api.test/v1/pay?api_key={CANARY}&order=7#frag"
    assert stored_url(url) == "https://api.test/v1/pay?order=7#frag"


def test_a_one_shot_streamed_body_cannot_be_parked(outbox: Outbox) -> None:
    request = httpx.Request("POST", "https://api.test/x", content=iter([b"a"]))
    with pytest.raises(ValueError, match="one-shot stream"):
        outbox.park(request, endpoint=EP, idempotency_key="k")


def test_the_entry_repr_shows_no_body_or_header(outbox: Outbox) -> None:
    text = repr(park(outbox))
    assert "amount" not in text and "acme" not in text


# -- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path"),
    [("sqlite:///outbox.db", "outbox.db"), ("sqlite:////var/lib/x.db", "/var/lib/x.db")],
)
def test_sqlite_urls_follow_the_three_and_four_slash_convention(url: str, path: str) -> None:
    assert sqlite_path(url) == path


def test_an_unknown_store_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="sqlite"):
        Outbox("postgres://db/outbox")


@pytest.mark.parametrize("field", ["max_age", "lease", "batch"])
def test_bad_numbers_are_refused_naming_the_field(db: Path, field: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=field):
        Outbox(f"sqlite:///{db}", **{field: 0})  # type: ignore[arg-type]


# -- bad store files: a clear error naming the file, the file left as it was ----------------


def test_a_corrupt_file_is_named_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    garbage = b"this is not a database " * 100
    path.write_bytes(garbage)
    with pytest.raises(OutboxStoreError, match=r"corrupt\.db .*not a readable SQLite") as caught:
        Outbox(f"sqlite:///{path}")
    assert caught.value.store == str(path)
    assert path.read_bytes() == garbage
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.db"]


def test_another_applications_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE users (name TEXT)")
    before = path.read_bytes()
    with pytest.raises(OutboxStoreError, match=r"app\.db is a SQLite database but not an outbox"):
        Outbox(f"sqlite:///{path}")
    assert path.read_bytes() == before


def test_a_directory_or_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(OutboxStoreError, match="is a directory"):
        Outbox(f"sqlite:///{tmp_path}")
    missing = tmp_path / "no" / "such" / "outbox.db"
    with pytest.raises(OutboxStoreError, match=re.escape(str(missing))):
        Outbox(f"sqlite:///{missing}")


def test_a_locked_store_is_named_and_loses_no_entry(db: Path, clock: FakeClock) -> None:
    outbox = Outbox(SqliteOutboxStore(db, timeout=0.05), clock=clock)
    first = park(outbox, "before")
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process writing, for longer than we wait
    try:
        with pytest.raises(OutboxStoreError, match=re.escape(f"{db} is locked")):
            park(outbox, "during")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    later = park(outbox, "after")
    assert sorted(e.idempotency_key for e in outbox.entries()) == ["after", "before"]
    assert {e.id for e in outbox.entries()} == {first.id, later.id}


# -- claims and leases -----------------------------------------------------------------


def test_a_claim_gives_each_entry_to_one_owner_until_its_lease_runs_out(
    outbox: Outbox, clock: FakeClock
) -> None:
    store = outbox.store
    ids = {park(outbox, f"k{n}").id for n in range(4)}
    now = clock.wall()
    first = store.claim(now=now, until=now + 30, owner="a", limit=3)
    second = store.claim(now=now, until=now + 30, owner="b", limit=10)
    assert len(first) == 3 and len(second) == 1
    assert {e.id for e in first} | {e.id for e in second} == ids
    assert store.claim(now=now + 29.9, until=now + 60, owner="c", limit=10) == []
    taken_over = store.claim(now=now + 30, until=now + 60, owner="c", limit=10)
    assert {e.id for e in taken_over} == ids
    # The first owner's lease passed to "c": its late settle writes nothing.
    assert store.settle(first[0], owner="a") is False
    assert store.settle(taken_over[0], owner="c") is True


def test_a_claim_skips_the_endpoints_it_is_told_to(outbox: Outbox, clock: FakeClock) -> None:
    park(outbox)
    now = clock.wall()
    assert outbox.store.claim(now=now, until=now + 1, owner="a", limit=5, skip=[EP]) == []


def test_next_due_is_the_earliest_due_or_lease_end(outbox: Outbox, clock: FakeClock) -> None:
    assert outbox.store.next_due() is None
    entry = park(outbox)
    assert outbox.store.next_due() == entry.due
    outbox.store.claim(now=clock.wall(), until=clock.wall() + 30, owner="a", limit=1)
    assert outbox.store.next_due() == clock.wall() + 30


# -- replay decisions, as a table ----------------------------------------------------------


def _pass() -> ReplayPass:
    return ReplayPass(max_age=100.0, lease=30.0, backoff=REPLAY_BACKOFF, batch=8)


def _response(status: int, **kwargs: object) -> Outcome:
    return outcome_of(httpx.Response(status, request=write(), **kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("outcome", "state"),
    [
        (_response(201), "delivered"),
        (_response(200), "delivered"),
        (_response(422, json={"title": "bad"}), "dead"),
        (_response(400), "dead"),
        (_response(404), "dead"),
        (_response(503), "pending"),
        (_response(500), "pending"),
        (_response(409), "pending"),  # the key's first request still in progress
        (_response(429), "pending"),
        (outcome_of(httpx.ConnectError("refused")), "pending"),
        (outcome_of(rc.CircuitOpenError("e", 0.0)), "pending"),
    ],
)
def test_what_an_answer_makes_of_an_entry(
    outbox: Outbox, clock: FakeClock, outcome: Outcome, state: str
) -> None:
    entry = park(outbox)
    after = _pass().judge(entry, outcome, clock.wall(), 0.5)
    assert after.state == state
    assert after.replays == 1
    if state == "pending":
        assert after.next_replay_at is not None and after.due >= clock.wall() + 2.5
    if state == "dead":
        assert after.problem is not None and after.problem.status == outcome.status
        assert after.reason == f"status {outcome.status} is not retryable"


def test_a_longer_retry_after_wins_over_the_backoff(outbox: Outbox, clock: FakeClock) -> None:
    entry = park(outbox)
    after = _pass().judge(entry, _response(503, headers={"Retry-After": "120"}), clock.wall(), 0.0)
    assert after.due == pytest.approx(clock.wall() + 120)


def test_steps_expire_old_entries_hold_failing_endpoints_and_respect_the_lease(
    outbox: Outbox, clock: FakeClock
) -> None:
    entry = park(outbox)
    run, now = _pass(), clock.wall()
    assert run.step(entry, now, now + 30) is Step.SEND
    assert run.step(entry, now + 101, now + 200) is Step.EXPIRE
    assert run.step(entry, now + 30, now + 30) is Step.LAPSED
    run.failing.add(EP)
    assert run.step(entry, now, now + 30) is Step.HOLD
    dead = run.unsent(entry, Step.EXPIRE, now + 101)
    assert dead is not None and dead.state == "dead" and "max_age" in (dead.reason or "")


def test_only_open_breakers_not_yet_probing_hold_their_endpoint() -> None:
    class Snap:
        def __init__(self, endpoint: str, state: str, retry_in: float | None) -> None:
            self.endpoint, self.state, self.retry_in = endpoint, state, retry_in

    snaps = [Snap("a", "open", 5.0), Snap("b", "open", None), Snap("c", "half_open", None)]
    assert held_endpoints([*snaps, Snap("d", "closed", None)]) == frozenset({"a"})


# -- WriteParked --------------------------------------------------------------------------


def test_write_parked_is_a_transport_error_with_the_entry_and_a_safe_message(
    outbox: Outbox,
) -> None:
    entry = park(outbox)
    error = WriteParked(entry, request=write())
    assert isinstance(error, httpx.TransportError) and isinstance(error, rc.ResilienceError)
    assert error.entry is entry
    text = str(error)
    assert "\n" not in text and entry.id in text and EP in text and "status 503" in text
    assert CANARY not in text and "api.test" not in text


def test_httpx2_has_its_own_write_parked() -> None:
    import httpx2

    from resilient_client.httpx2 import WriteParked as WriteParked2

    assert issubclass(WriteParked2, httpx2.TransportError)
    assert not issubclass(WriteParked2, httpx.TransportError)


# -- the CLI functions -----------------------------------------------------------------------


def _cli(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    out = io.StringIO()
    return run(parser.parse_args(list(argv)), out), out.getvalue()


def test_cli_lists_shows_and_drops_entries_without_bodies_or_header_values(
    outbox: Outbox, db: Path
) -> None:
    entry = park(outbox)
    store = f"sqlite:///{db}"
    status, listing = _cli("outbox", "list", "--store", store)
    assert status == 0 and entry.id in listing and "status 503" in listing
    status, shown = _cli("outbox", "show", entry.id, "--store", store)
    assert status == 0 and "X-Tenant" in shown and "acme" not in shown and "13 bytes" in shown
    assert _cli("outbox", "drop", entry.id, "--store", store) == (0, f"dropped {entry.id}\n")
    assert _cli("outbox", "show", entry.id, "--store", store)[0] == 1
    assert _cli("outbox", "list", "--store", store) == (0, "no entries\n")


def test_cli_names_a_bad_store_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.db"
    path.write_bytes(b"garbage" * 50)
    assert _cli("outbox", "list", "--store", f"sqlite:///{path}")[0] == 2
    assert str(path) in capsys.readouterr().err


@pytest.mark.parametrize("command", [["list"], ["show", "e-1"], ["replay"], ["drop", "e-1"]])
def test_cli_names_a_missing_store_file_and_does_not_create_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    path = tmp_path / "typo.db"
    status, printed = _cli("outbox", *command, "--store", f"sqlite:///{path}")
    assert (status, printed) == (2, "")  # not "no entries": nothing was ever parked there
    assert str(path) in capsys.readouterr().err
    assert not path.exists()


def test_cli_refuses_a_negative_replay_limit_with_a_usage_error(
    outbox: Outbox, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    park(outbox)
    # A usage error (exit 2, one line naming the option), not a traceback whose exit
    # status 1 would read as "entries left pending".
    with pytest.raises(SystemExit) as caught:
        _cli("outbox", "replay", "--limit", "-1", "--store", f"sqlite:///{db}")
    assert caught.value.code == 2
    assert "--limit" in capsys.readouterr().err
    assert [e.replays for e in outbox.entries()] == [0]


def test_formatting_functions_are_plain_text(outbox: Outbox) -> None:
    entry = park(outbox)
    assert format_entries([]) == "no entries"
    assert format_entries([entry]).splitlines()[0].startswith("id")
    assert "idempotency key:    key-1 (Idempotency-Key)" in format_entry(entry)


# -- a replay's send ends with its lease ---------------------------------------------------


@pytest.mark.parametrize("resilient", [True, False], ids=["resilient", "plain"])
def test_a_replay_send_cannot_outlast_the_lease_it_was_claimed_under(
    db: Path, clock: FakeClock, resilient: bool
) -> None:
    # After the lease another replayer may claim the entry: a send still in flight would
    # be a second one at once. Default timeouts (5 s connect, 10 s read, 30 s deadline)
    # are all longer than this 3 s lease.
    outbox = Outbox(f"sqlite:///{db}", clock=clock, lease=3.0)
    request = httpx.Request("POST", "https://api.test/v1/payments", json={"amount": 1})
    outbox.park(request, endpoint="POST /v1/payments", idempotency_key="k-1")
    seen: list[dict[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(201)

    transport = httpx.MockTransport(handler)
    with (
        rc.ResilientClient(transport=transport, clock=clock)
        if resilient
        else httpx.Client(transport=transport)
    ) as client:
        result = outbox.replay(client)
    assert len(result.delivered) == 1
    (timeouts,) = seen
    assert set(timeouts) == {"connect", "read", "write", "pool"}
    assert all(value is not None and 0 < value <= 3.0 for value in timeouts.values())
