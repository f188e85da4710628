"""Fresh correlation ids: random, unique across refills, threads and forked children."""

from __future__ import annotations

import gc
import os
import re
import sys
import threading
import warnings

import pytest

from resilient_client import _context

HEX_ID = re.compile(r"[0-9a-f]{32}")


def test_ids_are_32_hex_digits_and_never_repeat_across_many_refills() -> None:
    ids = [_context.new_correlation_id() for _ in range(256 * 5 + 7)]
    assert all(HEX_ID.fullmatch(value) for value in ids)
    assert len(set(ids)) == len(ids)


def test_threads_drawing_at_once_never_get_the_same_id() -> None:
    drawn: list[list[str]] = [[] for _ in range(8)]
    start = threading.Barrier(len(drawn))

    def draw(into: list[str]) -> None:
        start.wait()
        into.extend(_context.new_correlation_id() for _ in range(2000))

    threads = [threading.Thread(target=draw, args=(into,)) for into in drawn]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [value for into in drawn for value in into]
    assert len(every) == 16000 and len(set(every)) == len(every)


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32", reason="needs fork")
def test_a_forked_child_does_not_repeat_its_parents_next_ids() -> None:
    _context.new_correlation_id()  # the parent's current batch is started, not fresh
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():  # 3.12+ warns of forking beside threads; the child
        warnings.simplefilter("ignore", DeprecationWarning)  # only writes and exits
        pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave at once
        try:
            os.close(read_end)
            os.write(write_end, " ".join(_context.new_correlation_id() for _ in range(4)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        child = pipe.read().decode().split()
    os.waitpid(pid, 0)
    parent = [_context.new_correlation_id() for _ in range(4)]
    assert len(child) == 4 and all(HEX_ID.fullmatch(value) for value in child)
    assert not set(child) & set(parent)


def test_a_read_that_fails_fails_one_draw_not_every_later_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = os.urandom

    def failing(size: int) -> bytes:
        raise OSError("no entropy")

    monkeypatch.setattr(os, "urandom", failing)
    with pytest.raises(OSError):  # within one batch, a draw needs the next read
        [_context.new_correlation_id() for _ in range(257)]
    monkeypatch.setattr(os, "urandom", real)
    assert HEX_ID.fullmatch(_context.new_correlation_id())


def test_a_read_overlapping_another_leaks_neither_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.urandom
    freed: list[int] = []
    drawn: list[str] = []

    class Read(bytes):
        number = 0

        def __del__(self) -> None:
            freed.append(self.number)

    reads: list[int] = []

    def read(size: int) -> bytes:
        pool = Read(real(size))
        pool.number = len(reads)
        reads.append(pool.number)
        if pool.number == 0:
            # The OS read releases the GIL: another thread may draw meanwhile and find
            # no batch ready either - modelled here by drawing during the read.
            drawn.append(_context.new_correlation_id())
        return pool

    monkeypatch.setattr(os, "urandom", read)
    drawn.extend(_context.new_correlation_id() for _ in range(4 * 256))
    monkeypatch.setattr(os, "urandom", real)
    gc.collect()
    assert len(set(drawn)) == len(drawn) == 4 * 256 + 1
    assert {0, 1} <= set(freed)  # both overlapping reads were let go once used
    # and of their ids, at most one batch is kept: the replaced one is not held on to.
    assert len(_context._FRESH) < _context._PER_READ
