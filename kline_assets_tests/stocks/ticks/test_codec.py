"""Ticks on the stream: what `publish` writes decodes to the same ticks, and a malformed entry
is pointed out by its position without losing its neighbours."""

from __future__ import annotations

import numpy as np

from kline_assets.kernels.bars import Ticks
from kline_assets.stocks.ticks.codec import decode, encode


def ticks(with_extras: bool) -> Ticks:
    n = 4
    extras = dict(tick_id=np.arange(n) + 10, high=np.array([10.5, 10.6, np.nan, 10.9]),
                  low=np.array([9.5, 9.4, 9.4, 9.3])) if with_extras else {}
    return Ticks.from_arrays(
        np.array(["600000.SH", "000001.SZ", "600000.SH", "000001.SZ"]),
        np.array(["2025-10-09T09:25:00", "2025-10-09T09:30:00.123456", "2025-10-09T10:00:01",
                  "2025-10-09T15:00:00"], dtype="datetime64[us]"),
        np.array([10.0, 0.1 + 0.2, np.nan, 12.34]), np.array([100.0, 0.0, 5.0, 1e9]),
        np.array([1000.0, 0.0, 50.5, 1.2345678901234e10]), **extras)


def entries(lines: list[bytes]) -> list:
    return [(f"1-{i}".encode(), [b"t", line]) for i, line in enumerate(lines)]


def same(a: Ticks, b: Ticks) -> None:
    assert a.names[a.symbol].tolist() == b.names[b.symbol].tolist()
    np.testing.assert_array_equal(a.time, b.time)
    for name in ("price", "volume", "amount", "tick_id", "high", "low"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            np.testing.assert_array_equal(x, y, err_msg=name)  # NaN equals NaN here


def test_round_trip_is_exact():
    for extras in (False, True):
        original = ticks(extras)
        decoded = decode(entries(encode(original)))
        assert decoded.bad == {} and decoded.entry.tolist() == [0, 1, 2, 3]
        same(decoded.ticks, original)


def test_malformed_entries_are_named_by_position_and_the_rest_kept():
    lines = encode(ticks(False))
    batch = entries([lines[0], b"garbage", lines[1], b'60"0000.SH,x,1,1,1,,,', lines[2],
                     b"", b"bad\tsymbol,1760000000000000,1,1,1,,,", lines[3]])
    batch.append((b"1-99", {b"symbol": b"600000.SH", b"time": b"2025-10-09 10:00:02",
                            b"price": b"10.1", b"volume": b"1", b"amount": b"10.1"}))
    batch.append((b"1-100", {b"symbol": b"600000.SH"}))
    decoded = decode(batch)
    assert sorted(decoded.bad) == [1, 3, 5, 6, 9]
    assert "missing field(s) time" in decoded.bad[9]
    assert decoded.entry.tolist() == [0, 2, 4, 7, 8]
    assert decoded.ticks.names[decoded.ticks.symbol].tolist() == [
        "600000.SH", "000001.SZ", "600000.SH", "000001.SZ", "600000.SH"]
    assert str(decoded.ticks.time[-1]) == "2025-10-09T10:00:02.000000"


def test_times_no_calendar_could_hold_are_refused_by_position():
    lines = encode(ticks(False))
    batch = entries([lines[0], b"600001.SH,-9223372036854775807,10.5,100,1000,,,",
                     b"600001.SH,9223372036854775807,10.5,100,1000,,,",
                     b"600001.SH,-100000000000000000,10.5,100,1000,,,", lines[1]])
    batch.append((b"1-9", {b"symbol": b"600000.SH", b"time": b"1999-12-31T10:00:00",
                           b"price": b"10.1", b"volume": b"1", b"amount": b"10.1"}))
    decoded = decode(batch)
    assert sorted(decoded.bad) == [1, 2, 3, 5]
    assert "time -9223372036854775807 µs is outside 2000-01-01…2099-12-31" in decoded.bad[1]
    assert decoded.entry.tolist() == [0, 4]
    same(decoded.ticks, ticks(False).take(np.array([0, 1])))


def test_symbols_that_break_the_rule_are_refused_by_position():
    lines = encode(ticks(False))
    huge = b"6" * 1_000_000
    batch = entries([lines[0], huge + b",1760000000000000,1,1,1,,,",
                     b"600000.sh,1760000000000000,1,1,1,,,", b"BJ,1760000000000000,1,1,1,,,",
                     b"830799.BJ,1760000000000000,1,1,1,,,", lines[1]])
    decoded = decode(batch)
    assert sorted(decoded.bad) == [1, 2, 3]
    assert decoded.bad[1].startswith("symbol '666666") and "(1,000,000 characters)" in \
        decoded.bad[1]
    assert decoded.bad[2] == ("symbol '600000.sh' is not six digits, a dot and SH, SZ or BJ "
                              "(e.g. 600000.SH)")
    assert decoded.ticks.names[decoded.ticks.symbol].tolist() == [
        "600000.SH", "830799.BJ", "000001.SZ"]
