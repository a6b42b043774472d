"""Loading into PostgreSQL: idempotent, exact values, and only the demo's own rows replaced."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from kline_assets.demo.catalog import DemoError
from kline_assets.demo.load import load_demo
from kline_assets.demo.prices import generate_price_records
from kline_assets.demo.stocks import generate_stock_bars
from kline_assets.resources import PostgresResource
from kline_assets_tests.support.demo import SMALL


def _db_counts(postgres: PostgresResource, tables: list[str]) -> dict[str, int]:
    with postgres.connect() as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def test_load_demo_twice_replaces_rows(postgres: PostgresResource) -> None:
    first = load_demo(postgres, SMALL)
    records = generate_price_records(SMALL)
    assert first["purchasing_shop_price_record"] == len(records)
    assert first["stock_1min_qfq"] == len(generate_stock_bars(SMALL))
    assert _db_counts(postgres, list(first)) == first
    with postgres.connect() as conn:
        ids_before = conn.execute(
            "SELECT min(id), max(id), sum(id), sum(price_new) FROM purchasing_shop_price_record"
        ).fetchone()

    second = load_demo(postgres, SMALL)
    assert second == first
    assert _db_counts(postgres, list(first)) == first  # replaced, not doubled
    with postgres.connect() as conn:
        assert conn.execute(
            "SELECT min(id), max(id), sum(id), sum(price_new) FROM purchasing_shop_price_record"
        ).fetchone() == ids_before
        # the sequence moved past the demo ids: a scraper's next insert does not collide
        nxt = conn.execute("SELECT nextval('purchasing_shop_price_record_id_seq')").fetchone()[0]
        assert nxt > len(records)
        # every value arrives as generated: NULLs, bad rows, instants to the microsecond
        rows = conn.execute(
            "SELECT id, shop_id, iphone_id, price_new, price_grade_a, price_grade_b, "
            "(extract(epoch FROM recorded_at) * 1000000)::bigint "
            "FROM purchasing_shop_price_record ORDER BY id"
        ).fetchall()
        db = pd.DataFrame(rows, columns=[*records.columns[:-1], "us"])
        for col in ("price_new", "price_grade_a", "price_grade_b"):
            db[col] = db[col].astype("Int64")
            pd.testing.assert_series_equal(db[col], records[col], check_names=False)
        for col in ("id", "shop_id", "iphone_id"):
            assert (db[col].to_numpy() == records[col].to_numpy()).all()
        expected_us = records.recorded_at.dt.tz_convert("UTC").dt.tz_localize(None)
        assert (db.us.to_numpy() == expected_us.to_numpy().astype("datetime64[us]").astype(
            "int64")).all()
        bars = generate_stock_bars(SMALL)
        got = conn.execute(
            "SELECT time, name, close, volume, amount FROM stock_1min_qfq "
            "WHERE code = %s ORDER BY time", (bars.code.iloc[-1],)
        ).fetchall()
        last = bars[bars.code == bars.code.iloc[-1]]
        assert [g[0] for g in got] == list(last.time.dt.to_pydatetime())
        assert [g[1] for g in got] == list(last.name)
        assert np.allclose([g[2] for g in got], last.close)
        assert sum(g[4] is None for g in got) == last.amount.isna().sum()


def _insert_record(conn, recorded_at: str, price: int) -> int:
    return conn.execute(
        "INSERT INTO purchasing_shop_price_record (shop_id, iphone_id, price_new, recorded_at) "
        "VALUES (1, 1, %s, %s) RETURNING id", (price, recorded_at),
    ).fetchone()[0]


def test_load_demo_keeps_foreign_rows(postgres: PostgresResource) -> None:
    """A scraper's records (a small id, one inside the demo window, one inserted after the
    demo) and other codes' bars survive loads and reloads; the demo's ids move out of their
    way and stay put on reload."""
    with postgres.connect() as conn:
        small_id = _insert_record(conn, "2024-01-05", 12_345)
        in_window = _insert_record(conn, "2025-10-20 12:00+09", 23_457)
        conn.execute(
            "INSERT INTO stock_1min_qfq (time, code, name, open, high, low, close, volume, amount)"
            " VALUES ('2025-10-09 09:31', '688981.SH', '中芯国际', 1, 1, 1, 1, 1, 100)"
        )
    assert (small_id, in_window) == (1, 2)
    records = generate_price_records(SMALL)
    load_demo(postgres, SMALL)
    with postgres.connect() as conn:
        after = _insert_record(conn, "2025-10-21 12:00+09", 34_567)
    assert after > len(records) + 2  # the sequence moved past the demo's block
    before = _db_counts(postgres, ["purchasing_shop_price_record", "stock_1min_qfq"])
    assert before["purchasing_shop_price_record"] == len(records) + 3

    load_demo(postgres, SMALL)
    assert _db_counts(postgres, ["purchasing_shop_price_record", "stock_1min_qfq"]) == before
    with postgres.connect() as conn:
        foreign = conn.execute(
            "SELECT id, price_new FROM purchasing_shop_price_record "
            "WHERE price_new IN (12345, 23457, 34567) ORDER BY id"
        ).fetchall()
        assert foreign == [(1, 12_345), (2, 23_457), (after, 34_567)]
        demo = conn.execute(
            "SELECT min(id), max(id) FROM purchasing_shop_price_record "
            "WHERE id NOT IN (1, 2, %s)", (after,)
        ).fetchone()
        assert demo == (3, len(records) + 2)  # ids kept across the reload
        assert conn.execute(
            "SELECT count(*) FROM stock_1min_qfq WHERE code = '688981.SH'"
        ).fetchone()[0] == 1


def test_smaller_reload_deletes_all_earlier_demo_rows(postgres: PostgresResource) -> None:
    load_demo(postgres, SMALL)
    tiny = dataclasses.replace(SMALL, n_shops=2, n_iphones=2, n_cohorts=1, stock_codes=1)
    counts = load_demo(postgres, tiny)
    assert _db_counts(postgres, list(counts)) == counts


@pytest.mark.parametrize("statement", [
    "INSERT INTO iphone (id, name) VALUES (2, 'somebody else''s phone')",
    "INSERT INTO cohort (id, slug, name) VALUES (50, 'legacy', 'their cohort')",
    "INSERT INTO stock_1min_qfq (time, code, name, close) VALUES "
    "('2025-10-20 10:00', '600000.SH', '浦发银行', 9.9)",
])
def test_foreign_rows_on_demo_keys_stop_the_load_before_any_change(
    postgres: PostgresResource, statement: str
) -> None:
    with postgres.connect() as conn:
        conn.execute(statement)
        _insert_record(conn, "2025-10-20 12:00+09", 23_457)
    tables = ["iphone", "shop", "cohort", "cohort_member", "purchasing_shop_price_record",
              "stock_1min_qfq"]
    before = _db_counts(postgres, tables)
    with pytest.raises(DemoError, match="did not create"):
        load_demo(postgres, SMALL)
    assert _db_counts(postgres, tables) == before
