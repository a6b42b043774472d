"""The consumer's XREADGROUP reader: whatever the entries hold, the same table as hiredis's
parse decoded entry by entry — and the regular batch never takes the slow way."""

from __future__ import annotations

import contextlib

import pytest
import redis

from kline_assets.stocks.vendor import reader as reader_module
from kline_assets.stocks.vendor.codec import FIELDS, decode
from kline_assets.stocks.vendor.reader import StreamReader

STREAM = "kline_test_vendor:reader"
BAR = {"symbol": "600000.SH", "period": "1", "frame": "2025-10-09T09:31:00", "open": "10.5",
       "high": "10.6", "low": "10.4", "close": "10.55", "volume": "1200", "amount": "12660"}


def _reference(client: redis.Redis, group: str, start: str = ">", count: int = 1000):
    raw = redis.Redis(connection_pool=client.connection_pool)
    raw.set_response_callback("XREADGROUP", lambda reply, **_kw: reply)
    reply = raw.execute_command("XREADGROUP", "GROUP", group, "ref", "COUNT", count,
                                "STREAMS", STREAM, start)
    entries = (next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]
               ) if reply else []
    return decode(entries) if entries else None


def _both(client: redis.Redis, start: str = ">", count: int = 1000):
    """(the reader's table, the reference table) of the same entries, read by two groups."""
    for group in ("fast", "ref"):
        with contextlib.suppress(redis.ResponseError):  # the group of an earlier read
            client.xgroup_create(STREAM, group, id="0", mkstream=True)
    reader = StreamReader(client)
    try:
        got = reader.read("fast", "ref", count, STREAM, start)
    finally:
        reader.close()
    return got, _reference(client, "ref", start, count)


def _add(client: redis.Redis, *entries: dict | list) -> None:
    for fields in entries:
        pairs = list(fields.items()) if isinstance(fields, dict) else fields
        client.execute_command("XADD", STREAM, "*", *[x for kv in pairs for x in kv])


@pytest.fixture
def fast_only(monkeypatch):
    """Fail if a read goes the slow way."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("the regular batch took the slow path")
    monkeypatch.setattr(StreamReader, "_slow", refuse)


def test_a_regular_batch_is_read_without_the_slow_path(redis_client, fast_only):
    _add(redis_client, *({**BAR, "frame": f"2025-10-09T09:{31 + i}:00", "volume": ""}
                         if i == 3 else {**BAR, "frame": f"2025-10-09T09:{31 + i}:00"}
                         for i in range(20)))
    got, want = _both(redis_client)
    assert got.num_rows == 20 and got.equals(want)
    assert got.column("volume")[3].as_py() == ""


def test_every_entry_with_a_name_and_in_another_order_is_still_one_pass(redis_client,
                                                                           fast_only):
    fields = [("Name", "浦发银行"), *reversed(BAR.items())]
    _add(redis_client, *(fields for _ in range(5)))
    got, want = _both(redis_client)
    assert got.equals(want)
    assert got.column("name").to_pylist() == ["浦发银行"] * 5
    assert got.column("symbol").to_pylist() == ["600000.SH"] * 5


@pytest.mark.parametrize("value", ["10\r\n5", "10\n$4\r\nopen", "10\r", "a\x1fb", "", "\r\n",
                                   "$4", "*2"])
def test_values_holding_line_breaks_and_separators_read_as_sent(redis_client, value):
    _add(redis_client, BAR, {**BAR, "close": value}, BAR)
    got, want = _both(redis_client)
    assert got.equals(want)
    assert got.column("close")[1].as_py() == value


def test_irregular_batches_read_as_hiredis_does(redis_client):
    _add(redis_client, BAR, {k: v for k, v in BAR.items() if k != "amount"},
         {**BAR, "name": "x"}, [*list(BAR.items())[1:], ("symbol", "000001.SZ")],
         {**BAR, "symbol": b"\xff\xfe"}, {"symbol": "600000.SH"})
    got, want = _both(redis_client)
    assert got.num_rows == 6 and got.equals(want)


def test_fields_in_another_order_in_one_entry_only(redis_client):
    _add(redis_client, BAR, BAR, list(reversed(BAR.items())))
    got, want = _both(redis_client)
    assert got.equals(want)
    assert got.column("symbol").to_pylist() == ["600000.SH"] * 3


def test_nothing_new_own_pending_and_an_entry_deleted_while_pending(redis_client):
    _add(redis_client, BAR, BAR)
    got, want = _both(redis_client)
    assert got.num_rows == 2
    assert _both(redis_client)[0] is None  # nothing new
    ids = got.column("id").to_pylist()
    redis_client.xdel(STREAM, ids[0])
    pending, want = _both(redis_client, start="0")
    assert pending.equals(want)
    assert pending.column("nfields").to_pylist() == [0, len(FIELDS)]
    redis_client.xack(STREAM, "fast", *ids)
    redis_client.xack(STREAM, "ref", *ids)
    assert _both(redis_client, start="0") == (None, None)


def test_an_error_reply_is_a_response_error(redis_client):
    _add(redis_client, BAR)
    reader = StreamReader(redis_client)
    try:
        with pytest.raises(redis.ResponseError, match="NOGROUP"):
            reader.read("no-such-group", "c", 10, STREAM, ">")
        redis_client.xgroup_create(STREAM, "late", id="0")
        assert reader.read("late", "c", 10, STREAM, ">").num_rows == 1  # the connection goes on
    finally:
        reader.close()


def test_a_value_that_looks_like_the_end_marker_reads_on(redis_client, monkeypatch):
    monkeypatch.setattr(reader_module.os, "urandom", lambda n: b"\x00" * n)
    token = (b"\x00" * 8).hex()
    # The batch's bytes end right after the marker's: the reader must see the real end.
    _add(redis_client, {**BAR, "amount": f"x\r\n$16\r\n{token}"})
    got, want = _both(redis_client)
    assert got.equals(want)
    assert got.column("amount")[0].as_py() == f"x\r\n$16\r\n{token}"


def test_a_big_batch_grows_the_buffer(redis_client, fast_only):
    _add(redis_client, *({**BAR, "amount": "9" * 300} for _ in range(5000)))
    got, want = _both(redis_client, count=5000)
    assert got.num_rows == 5000 and got.equals(want)
