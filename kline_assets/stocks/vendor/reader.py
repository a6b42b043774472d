"""XREADGROUP for the consumer, turned into columns without a Python object per field.

A batch of 5,000 entries is ~100,000 bulk strings: parsed into Python objects (hiredis) and
then into columns, that was most of the consumer's time — more than PostgreSQL took to write
the bars. Here the reply's bytes are read from the socket as they are and parsed with NumPy
and Arrow: in RESP2 every token ends with CRLF, and a batch whose entries all carry the same
fields in the same order has every token at a position known in advance, so the whole batch
is checked at once — every `$<length>` header against the token after it (a value holding a
line break is then shorter than its header says, so a misplaced token can never pass), every
entry header, the same field name at each position — and each field becomes one Arrow column.

A reply that does not fit (entries with different fields or field orders, an entry deleted
while pending, an error) is parsed by hiredis from the same bytes and decoded entry by entry
(`codec.decode`): the same table either way, only slower.

The reader keeps a connection of its own, in RESP2 whatever the client's protocol (no push
messages can interleave), created from the client's pool settings (address, credentials,
database, TLS, timeouts). Each read is followed by an ECHO of a random token, whose reply
marks the end of the batch's bytes; redis-py's retry policy of the connection applies.
"""

from __future__ import annotations

import os
import socket

import hiredis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import redis

from .codec import FIELDS, OPTIONAL, decode, strings

_NAMES = (*FIELDS, *OPTIONAL)
_INITIAL = 1 << 20


def raw_connection(client: redis.Redis) -> redis.Connection:
    """A connection of its own with the client's settings, in RESP2: replies read as bytes
    off its socket can hold no push message."""
    pool = client.connection_pool
    return pool.connection_class(**{**pool.connection_kwargs, "protocol": 2})


class StreamReader:
    """XREADGROUP of one consumer → the codec's table (None when nothing was delivered)."""

    def __init__(self, client: redis.Redis) -> None:
        self._conn = raw_connection(client)
        self._buf = bytearray(_INITIAL)

    def close(self) -> None:
        self._conn.disconnect()

    def read(self, group: str, consumer: str, count: int, stream: str,
             start: str) -> pa.Table | None:
        args = ("XREADGROUP", "GROUP", group, consumer, "COUNT", count, "STREAMS", stream, start)
        return self._conn.retry.call_with_retry(lambda: self._read(args),
                                                lambda _error: self._conn.disconnect())

    # ------------------------------------------------------------------ the wire

    def _read(self, args: tuple) -> pa.Table | None:
        conn = self._conn
        if getattr(conn, "_sock", None) is None:
            conn.connect()
        token = os.urandom(8).hex().encode()
        tail = b"$%d\r\n%s\r\n" % (len(token), token)
        conn.send_packed_command(conn.pack_commands([args, ("ECHO", token)]))
        sock = conn._sock
        size = self._receive(sock, 0, tail)
        reply = memoryview(self._buf)[:size - len(tail)]
        table = _parse(reply)
        if table is not False:
            return table
        return self._slow(sock, size, token)

    def _receive(self, sock: socket.socket, have: int, tail: bytes) -> int:
        """Read until the bytes end with `tail` (or one more chunk when tail is empty)."""
        buf = self._buf
        while True:
            if have == len(buf):
                buf.extend(bytes(len(buf)))  # double it
            try:
                got = sock.recv_into(memoryview(buf)[have:])
            except TimeoutError as exc:
                raise redis.TimeoutError("Timeout reading from the vendor stream") from exc
            except OSError as exc:
                raise redis.ConnectionError(f"Error reading the vendor stream: {exc}") from exc
            if not got:
                raise redis.ConnectionError("Connection closed by server.")
            have += got
            if not tail or buf.endswith(tail, 0, have):
                return have

    def _slow(self, sock: socket.socket, size: int, token: bytes) -> pa.Table | None:
        """hiredis over the bytes received, reading on if the ECHO's bytes were part of a
        value (then the batch was not complete yet)."""
        reader = hiredis.Reader()
        reader.feed(self._buf, 0, size)
        replies: list = []
        while len(replies) < 2:
            got = reader.gets()
            if got is False:
                more = self._receive(sock, 0, b"")
                reader.feed(self._buf, 0, more)
                continue
            replies.append(got)
        reply, echo = replies
        if echo != token:
            self._conn.disconnect()
            raise redis.ConnectionError("The vendor stream's reply was out of step")
        if isinstance(reply, hiredis.ReplyError):
            raise redis.ResponseError(str(reply))
        entries = reply[0][1] if reply else []
        return decode(entries) if entries else None


_CSV_READ = pacsv.ReadOptions(column_names=["t"], use_threads=False)
_CSV_PARSE = pacsv.ParseOptions(delimiter="\x1f", quote_char=False, double_quote=False,
                                escape_char=False, newlines_in_values=False,
                                ignore_empty_lines=False)
_CSV_CONVERT = pacsv.ConvertOptions(column_types={"t": pa.binary()}, check_utf8=False,
                                    strings_can_be_null=False,
                                    quoted_strings_can_be_null=False)


def _lines(reply: memoryview) -> pa.Array | None:
    """The reply's CRLF-ended lines (Arrow's CSV reader as a line splitter, in C); None when
    a byte makes it no single-column text (then the slow path parses the reply)."""
    read = pacsv.ReadOptions(column_names=_CSV_READ.column_names, use_threads=False,
                             block_size=len(reply) + 1)
    try:
        column = pacsv.read_csv(pa.py_buffer(reply), read, _CSV_PARSE, _CSV_CONVERT).column(0)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return column.combine_chunks()


def _bulk_lengths(data: np.ndarray, at: np.ndarray, width: np.ndarray) -> np.ndarray | None:
    """The lengths `$<digits>` headers declare (the tokens at `at`, `width` bytes each); None
    when one is no such header. Digit by digit over the headers of each width — a batch's
    headers have one or two digits — which costs less than text-to-number casts."""
    if not len(at):
        return np.zeros(0, dtype=np.int64)
    digits = width - 1
    if digits.min() < 1 or digits.max() > 12 or not (data[at] == ord("$")).all():
        return None
    out = np.zeros(len(at), dtype=np.int64)
    for d in np.flatnonzero(np.bincount(digits)).tolist():
        sel = np.flatnonzero(digits == d)
        first = at[sel] + 1
        value = np.zeros(len(first), dtype=np.int64)
        for k in range(d):
            digit = data[first + k] - np.uint8(ord("0"))  # wraps below "0": > 9 too
            if (digit > 9).any():
                return None
            value = value * 10 + digit
        out[sel] = value
    return out


def _parse(reply: memoryview) -> pa.Table | bool | None:
    """The table of a regular batch, None for no entries, False for any other reply (the
    slow path parses it)."""
    if bytes(reply[:1]) != b"*":
        return False
    if bytes(reply) == b"*-1\r\n":
        return None
    tokens = _lines(reply)
    if tokens is None or len(tokens) < 5:
        return False
    offsets = np.frombuffer(tokens.buffers()[1], dtype=np.int32)[
        tokens.offset:tokens.offset + len(tokens) + 1]
    data = np.frombuffer(tokens.buffers()[2], dtype=np.uint8)
    lengths = np.diff(offsets)

    def at(i: int) -> bytes:
        return tokens[i].as_py()

    # *1 *2 $len stream *N | per entry: *2 $len id *F ($len field $len value) × F/2
    if at(0) != b"*1" or at(1) != b"*2" or not at(4).startswith(b"*"):
        return False
    head = 5
    try:
        n = int(at(4)[1:])
    except ValueError:
        return False
    if n == 0:
        return None if len(tokens) == head else False
    if len(tokens) < head + 4 or not at(head + 3).startswith(b"*"):
        return False
    try:
        width = int(at(head + 3)[1:])
    except ValueError:
        return False
    if width < 0 or width % 2:
        return False
    stride = 4 + 2 * width
    if len(tokens) != head + n * stride:
        return False
    base = head + stride * np.arange(n, dtype=np.int64)
    # Every bulk header against the token it announces (the stream name, ids, fields and
    # values): a value holding a line break is split, and its first part is shorter.
    bulk = np.concatenate(([2], (base[:, None] + np.concatenate(
        ([1], 4 + 2 * np.arange(width)))[None, :]).ravel()))
    declared = _bulk_lengths(data, offsets[bulk], lengths[bulk])
    if declared is None or not np.array_equal(declared, lengths[bulk + 1]):
        return False
    if not (pc.all(pc.equal(tokens.take(pa.array(base)), b"*2")).as_py()
            and pc.all(pc.equal(tokens.take(pa.array(base + 3)),
                                b"*%d" % width)).as_py()):
        return False
    pairs = width // 2
    # Field names, entry by entry: every entry must name its fields as the first does.
    names = tokens.take(pa.array((base[:, None] + 5 + 4 * np.arange(pairs)).ravel()))
    if not pc.all(pc.equal(names, names.take(pa.array(np.tile(np.arange(pairs), n))))).as_py():
        return False
    where: dict[str, int] = {}
    for j in range(pairs):
        where[names[j].as_py().decode(errors="replace").strip().lower()] = j  # the later wins
    # Values column by column, in one take: column j is rows j·n … (j+1)·n.
    values = strings(tokens.take(pa.array(
        (base[None, :] + 7 + 4 * np.arange(pairs)[:, None]).ravel())))
    table = {"id": strings(tokens.take(pa.array(base + 2))),
             "nfields": pa.array(np.full(n, pairs, dtype=np.int64))}
    empty = None
    for name in _NAMES:
        j = where.get(name)
        if j is None:
            empty = empty if empty is not None else pa.array([""] * n, pa.string())
            table[name] = empty
        else:
            table[name] = values.slice(j * n, n)
    return pa.table(table)
