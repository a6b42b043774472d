"""The one binary COPY encoder against real PostgreSQL: every type, NULLs, text layouts."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from kline_assets.resources.pgcopy import CopyTypeError, copy_table
from kline_assets.resources.postgres import PostgresResource
from kline_assets_tests.support.stocks import read_bars


@pytest.fixture
def table(postgres):
    with postgres.connect() as conn:
        conn.execute("CREATE TABLE t (i2 int2, i4 int4, i8 int8, f8 float8, b bool, "
                     "ts timestamptz, wall timestamp, s text)")
    return postgres


def test_round_trip_of_every_type_with_nulls_and_multibyte_text(table):
    df = pd.DataFrame({
        "i2": pd.array([1, None, -3], dtype="Int16"),
        "i4": pd.array([1, 2, None], dtype="Int32"),
        "i8": [2**40, -1, 0],
        "f8": [1.5, None, -0.25],
        "b": pd.array([True, None, False], dtype="boolean"),
        "ts": pd.to_datetime(["2025-10-01 00:00:00", None, "2025-10-31 23:59:59.5"], format="mixed"
                             ).tz_localize("Asia/Tokyo"),
        "wall": pd.to_datetime(["2025-10-09 09:31", "2025-10-09 15:00", None]),
        "s": ["600000.SH", "浦发银行", None],
    })
    with table.connect() as conn:
        assert copy_table(conn, "t", pa.Table.from_pandas(df, preserve_index=False)) == 3
        rows = conn.execute("SELECT i2, i4, i8, f8, b, ts AT TIME ZONE 'Asia/Tokyo', wall, s "
                            "FROM t ORDER BY i8").fetchall()
    assert rows[0][:5] == (None, 2, -1, None, None)
    assert rows[0][5] is None and str(rows[0][6]) == "2025-10-09 15:00:00"
    assert rows[0][7] == "浦发银行"
    assert rows[1][:5] == (-3, None, 0, -0.25, False)
    assert str(rows[1][5]) == "2025-10-31 23:59:59.500000" and rows[1][6:] == (None, None)
    assert rows[2][:5] == (1, 1, 2**40, 1.5, True)
    assert str(rows[2][5]) == "2025-10-01 00:00:00" and rows[2][7] == "600000.SH"


def test_a_value_that_does_not_fit_is_refused_before_anything_is_written(table):
    bad = pa.table({"i2": pa.array([1, 70_000], pa.int64())})
    with table.connect() as conn, pytest.raises(CopyTypeError, match="i2"):
        copy_table(conn, "t", bad)
    with table.connect() as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0


def test_naive_and_aware_timestamps_are_not_confused(table):
    aware = pa.table({"wall": pa.array(pd.to_datetime(["2025-10-09 09:31"]).tz_localize("UTC"))})
    with table.connect() as conn, pytest.raises(CopyTypeError, match="naive"):
        copy_table(conn, "t", aware)


def test_many_rows_in_several_layouts(table):
    n = 50_000
    rng = np.random.default_rng(1)
    s = np.where(rng.random(n) < 0.5, "a", "bbb").astype(object)
    s[rng.random(n) < 0.1] = None
    df = pd.DataFrame({"i8": np.arange(n), "s": s})
    with table.connect() as conn:
        copy_table(conn, "t", pa.Table.from_pandas(df, preserve_index=False))
        got = conn.execute("SELECT count(*), count(s), sum(length(s)) FROM t").fetchone()
    assert got == (n, int(pd.notna(s).sum()), int(sum(len(x) for x in s if x is not None)))


def test_binary_copy_round_trips_nulls_unicode_and_extremes(postgres: PostgresResource) -> None:
    bars = pa.table({
        "time": pa.array(pd.to_datetime([
            "2024-01-02 09:31", "2000-01-01 00:00", "1999-12-31 15:00", "2100-01-01 13:00",
        ]), pa.timestamp("us")),
        "code": ["600000.SH", "A", "", "长江电力"],
        "name": [None, "浦发银行", 'x"y,z\n', ""],
        "open": [1.5, None, -3.25, 1e300],
        "high": [2.0, 1.0, None, float("inf")],
        "low": [0.1, 0.2, 0.3, -0.0],
        "close": [None, None, None, 5.0],
        "volume": [1.0, 2.0, 3.0, 4.0],
        "amount": [None, 9.0, 8.0, 7.0],
    })
    with postgres.connect() as conn:
        assert copy_table(conn, "stock_1min_qfq", bars.slice(1)) == 3  # a sliced (offset) table

    loaded = read_bars(postgres).sort_values("time").reset_index(drop=True)
    expected = bars.slice(1).to_pandas().sort_values("time").reset_index(drop=True)
    pd.testing.assert_frame_equal(loaded, expected, check_dtype=False)
