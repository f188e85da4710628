"""Decoding a body with a bound on the decoded bytes, whatever the compression.

httpx decodes a compressed body one network chunk at a time, and a chunk is decoded
whole: 983 bytes of ``Content-Encoding: gzip, gzip`` inflate to 2 GiB in one step. The
error path reads at most a bounded prefix of a body (64 KiB), so it decodes the raw bytes
itself, here, and no layer ever holds more than :data:`STEP` decoded bytes at a time:
each layer is asked for at most that much output per step (zlib's ``max_length``,
brotli's ``output_buffer_limit``) and feeds it to the next, and decoding stops as soon
as the bound is reached. Memory stays in the tens of kilobytes, the work in proportion to
the bytes kept.

Pure: :class:`BoundedDecoder` is fed raw bytes and says when it has enough; the sync and
async readers (``_parse.py``, the drivers) only pull bytes.

Encodings: ``identity``, ``gzip`` (``x-gzip``), ``deflate`` (zlib-wrapped or raw, as
httpx accepts) and ``br``, in any number of layers. ``zstd`` has no bounded streaming
API in ``zstandard``: a body in it decodes to nothing here (the problem is then read from
the status and headers alone). An unknown encoding passes the bytes through, as httpx
does.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

__all__ = ["STEP", "BoundedDecoder", "decodes_within"]

STEP = 16_384
"""The most decoded bytes one layer produces in one step."""


class _Zlib:
    """gzip or deflate: zlib's own bound on each step's output."""

    __slots__ = ("_decoder", "_raw_fallback")

    def __init__(self, wbits: int, raw_fallback: bool) -> None:
        self._decoder = zlib.decompressobj(wbits)
        self._raw_fallback = raw_fallback  # deflate: zlib-wrapped first, then raw

    def pieces(self, data: bytes) -> Iterator[bytes]:
        decoder = self._decoder
        while data and not decoder.eof:
            try:
                out = decoder.decompress(data, STEP)
            except zlib.error:
                if not self._raw_fallback:
                    raise
                self._raw_fallback = False
                decoder = self._decoder = zlib.decompressobj(-zlib.MAX_WBITS)
                continue
            self._raw_fallback = False
            data = decoder.unconsumed_tail
            if out:
                yield out


class _Brotli:
    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        import brotli  # type: ignore[import-untyped] # httpx decodes "br" only when installed

        self._decoder: Any = brotli.Decompressor()

    def pieces(self, data: bytes) -> Iterator[bytes]:
        decoder = self._decoder
        out = decoder.process(data, output_buffer_limit=STEP)
        if out:
            yield out
        while not decoder.is_finished() and not decoder.can_accept_more_data():
            out = decoder.process(b"", output_buffer_limit=STEP)
            if not out:
                return
            yield out


class _Unsupported(Exception):
    pass


def _layer(name: str) -> _Zlib | _Brotli | None:
    if name in ("gzip", "x-gzip"):
        return _Zlib(zlib.MAX_WBITS | 16, raw_fallback=False)
    if name == "deflate":
        return _Zlib(zlib.MAX_WBITS, raw_fallback=True)
    if name == "br":
        try:
            return _Brotli()
        except ImportError:
            raise _Unsupported(name) from None
    if name == "zstd":
        raise _Unsupported(name)
    return None  # identity, or unknown: passed through, as httpx does


class BoundedDecoder:
    """Decodes raw body bytes (as ``Content-Encoding`` says) up to ``limit`` decoded bytes.

    :meth:`feed` raw chunks until it returns True (enough) or the body ends; then
    :attr:`body` is the first ``limit`` decoded bytes (fewer when the body is shorter, or
    when it is corrupt: what decoded before the error is kept). A body in an encoding
    that cannot be decoded with a bound (``zstd``) decodes to ``b""``.
    """

    __slots__ = ("_chunks", "_layers", "_limit", "_size", "done", "supported")

    def __init__(self, content_encoding: str | None, limit: int) -> None:
        self._limit = max(0, limit)
        self._chunks: list[bytes] = []
        self._size = 0
        self.done = self._limit == 0
        self.supported = True
        names = [name.strip().lower() for name in (content_encoding or "").split(",")]
        try:
            # Decoded in the reverse of the order they were applied.
            layers = [_layer(name) for name in reversed(names) if name]
        except _Unsupported:
            layers = []
            self.done = True
            self.supported = False
        self._layers = [layer for layer in layers if layer is not None]

    def feed(self, data: bytes) -> bool:
        """Decode ``data``, the next raw bytes; True once nothing more is wanted."""
        if not self.done and data:
            try:
                self._push(0, data)
            except Exception:  # a corrupt layer: what decoded before it stands
                self.done = True
        return self.done

    def _push(self, index: int, data: bytes) -> None:
        if index == len(self._layers):
            self._chunks.append(data)
            self._size += len(data)
            if self._size >= self._limit:
                self.done = True
            return
        for piece in self._layers[index].pieces(data):
            self._push(index + 1, piece)
            if self.done:
                return

    @property
    def body(self) -> bytes:
        return b"".join(self._chunks)[: self._limit]


def decodes_within(raw: bytes, content_encoding: str | None, limit: int) -> bool:
    """Whether ``raw`` (a whole body) decodes to at most ``limit`` bytes, found out with
    at most ``limit + STEP`` decoded bytes in memory (False for an encoding that cannot be
    decoded with a bound)."""
    decoder = BoundedDecoder(content_encoding, limit + 1)
    decoder.feed(raw)
    return decoder.supported and len(decoder.body) <= limit
