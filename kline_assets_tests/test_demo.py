"""The synthetic demo data: determinism, the realism the pipeline relies on, idempotent load."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from kline_assets.demo import (
    BAD_ROWS,
    BAR_MINUTES,
    COHORTS,
    DIRTY_BAR_RULES,
    NEGATIVE_CODE,
    RENAMED_CODE,
    DemoConfig,
    generate_catalog,
    generate_price_records,
    generate_stock_bars,
    generate_ticks,
    load_demo,
    release_time,
)
from kline_assets.resources import PostgresResource

SMALL = DemoConfig(months=1, n_shops=6, n_iphones=5, stock_codes=3, stock_months=1)
MEDIUM = DemoConfig(months=1, n_shops=12, n_iphones=20, stock_codes=0, stock_months=0)
BUCKET = pd.Timedelta(minutes=15)


@pytest.fixture(scope="module")
def small_records() -> pd.DataFrame:
    return generate_price_records(SMALL)


@pytest.fixture(scope="module")
def medium_records() -> pd.DataFrame:
    return generate_price_records(MEDIUM)


@pytest.fixture(scope="module")
def small_bars() -> pd.DataFrame:
    return generate_stock_bars(SMALL)


def _valid(records: pd.DataFrame, cfg: DemoConfig) -> pd.DataFrame:
    ok = (
        records.shop_id.between(1, cfg.n_shops)
        & records.iphone_id.between(1, cfg.n_iphones)
        & records.price_new.notna()
    )
    return records[ok & (records.price_new > 0)]


# --- determinism ---------------------------------------------------------------------------


def test_same_seed_same_frames_other_seed_other_frames(
    small_records: pd.DataFrame, small_bars: pd.DataFrame
) -> None:
    pd.testing.assert_frame_equal(generate_price_records(SMALL), small_records)
    pd.testing.assert_frame_equal(generate_stock_bars(SMALL), small_bars)
    pd.testing.assert_frame_equal(generate_ticks(SMALL), generate_ticks(SMALL))
    again = generate_catalog(SMALL)
    for table, frame in generate_catalog(SMALL).items():
        pd.testing.assert_frame_equal(frame, again[table])

    other = dataclasses.replace(SMALL, seed=SMALL.seed + 1)
    assert not generate_price_records(other).equals(small_records)
    assert not generate_stock_bars(other).equals(small_bars)
    assert not generate_ticks(other).equals(generate_ticks(SMALL))


# --- catalog -------------------------------------------------------------------------------


def test_catalog_defaults() -> None:
    cat = generate_catalog(DemoConfig())
    assert len(cat["iphone"]) == 40 and cat["iphone"].id.tolist() == list(range(1, 41))
    assert cat["iphone"].name.is_unique
    assert "iPhone 16 Pro 256GB" in set(cat["iphone"].name)
    assert len(cat["shop"]) == 24 and cat["shop"].name.is_unique
    assert cat["cohort"].slug.tolist() == [slug for slug, _ in COHORTS]
    members = cat["cohort_member"]
    assert (members.weight > 0).all() and (members.weight != 1).any()
    assert set(members.iphone_id) <= set(cat["iphone"].id)
    assert set(members.cohort_id) == set(cat["cohort"].id)  # no empty cohort
    assert not members.duplicated(["cohort_id", "iphone_id"]).any()


def test_small_catalog_keeps_every_cohort_populated() -> None:
    cat = generate_catalog(SMALL)
    assert len(cat["iphone"]) == 5 and len(cat["shop"]) == 6
    assert set(cat["cohort_member"].cohort_id) == set(cat["cohort"].id)
    assert set(cat["cohort_member"].iphone_id) <= set(range(1, 6))


# --- price records -------------------------------------------------------------------------


def test_price_records_schema_and_window(small_records: pd.DataFrame) -> None:
    r = small_records
    assert list(r.columns) == [
        "id", "shop_id", "iphone_id", "price_new", "price_grade_a", "price_grade_b", "recorded_at"
    ]
    assert r.id.tolist() == list(range(1, len(r) + 1))
    for col in ("price_new", "price_grade_a", "price_grade_b"):
        assert r[col].dtype == "Int64"
    assert str(r.recorded_at.dt.tz) == "Asia/Tokyo"
    assert r.recorded_at.is_monotonic_increasing  # ids follow recorded_at
    start, end = SMALL.window
    assert r.recorded_at.min() >= start and r.recorded_at.max() < end
    assert (r.recorded_at.dt.microsecond != 0).mean() > 0.9  # microsecond precision


def test_price_records_ids_exist_except_documented_bad_rows(small_records: pd.DataFrame) -> None:
    r = small_records
    unknown = r[~r.shop_id.between(1, SMALL.n_shops) | ~r.iphone_id.between(1, SMALL.n_iphones)]
    expected = [b for b in BAD_ROWS if b["reason"].startswith("unknown")]
    assert len(unknown) == len(expected)
    assert sorted(zip(unknown.shop_id, unknown.iphone_id, strict=True)) == sorted(
        (b["shop_id"], b["iphone_id"]) for b in expected
    )
    assert r.price_new.isna().sum() == sum(b["price_new"] is None for b in BAD_ROWS)
    assert (r.price_new <= 0).sum() == sum(
        b["price_new"] is not None and b["price_new"] <= 0 for b in BAD_ROWS
    )
    assert 4 <= len(BAD_ROWS) <= 10


def test_price_records_realism(small_records: pd.DataFrame) -> None:
    r = _valid(small_records, SMALL)
    # grade prices: NULL ~10% of the time each, else ≈ 0.93 / 0.85 of the new price
    for col, factor in (("price_grade_a", 0.93), ("price_grade_b", 0.85)):
        assert 0.07 < r[col].isna().mean() < 0.13
        ratio = (r[col] / r.price_new).dropna().median()
        assert abs(ratio - factor) < 0.01
    # two records of one shop/model in a 15-minute bucket, some exactly on the edge
    bucket = r.recorded_at.dt.floor("15min")
    per_bucket = r.groupby([r.shop_id, r.iphone_id, bucket]).size()
    assert (per_bucket == 2).any() and per_bucket.max() <= 2
    assert (r.recorded_at == bucket).sum() > 0
    # each shop lists a subset of the models; prices are whole hundreds of yen
    assert (r.groupby("shop_id").iphone_id.nunique() <= SMALL.n_iphones).all()
    assert (r.price_new % 100 == 0).mean() > 0.99
    assert r.price_new.median() > 30_000


def test_price_records_rates_on_medium_config(medium_records: pd.DataFrame) -> None:
    r = _valid(medium_records, MEDIUM)
    n_buckets = (MEDIUM.window[1] - MEDIUM.window[0]) / BUCKET
    pairs = r.groupby(["shop_id", "iphone_id"]).ngroups
    assert 0.6 < pairs / (MEDIUM.n_shops * MEDIUM.n_iphones) < 0.9  # ~75% listed
    assert 0.9 < len(r) / (pairs * n_buckets) < 1.05  # misses, outages, double visits
    # typos: ×10 / ÷10 against the model's median price that day
    day = r.recorded_at.dt.floor("D")
    median = r.groupby([r.iphone_id, day]).price_new.transform("median")
    ratio = (r.price_new / median).astype(float)
    typo = (ratio > 5) | (ratio < 0.2)
    assert 0.0002 < typo.mean() < 0.001
    assert ((ratio[~typo] > 0.85) & (ratio[~typo] < 1.15)).all()  # shop offsets stay small
    # the release step: older models drop ~8% across the release time
    rt = release_time(MEDIUM)
    old = r[r.iphone_id == 4]  # iPhone 14 128GB
    before = old[(old.recorded_at < rt) & (old.recorded_at >= rt - pd.Timedelta(hours=12))]
    after = old[(old.recorded_at >= rt + pd.Timedelta(hours=4))
                & (old.recorded_at < rt + pd.Timedelta(hours=16))]
    step = after.price_new.median() / before.price_new.median()
    assert 0.86 < step < 0.97
    assert r.price_new[~typo].between(40_000 * 0.8, 220_000 * 1.2).all()


def test_default_month_size() -> None:
    # a month at the defaults is the advertised ~2–2.5M records
    cfg = DemoConfig(months=1, stock_codes=0, stock_months=0)
    n = len(generate_price_records(cfg))
    assert 2_000_000 <= n <= 2_500_000


# --- stock bars ----------------------------------------------------------------------------


def _dirty(b: pd.DataFrame) -> dict[str, pd.Series]:
    return {
        "negative_volume": b.volume < 0,
        "null_amount": b.amount.isna(),
        "high_below_body": b.high < np.maximum(b.open, b.close),
        "low_above_body": b.low > np.minimum(b.open, b.close),
    }


def test_stock_bars_sessions_end_labelled(small_bars: pd.DataFrame) -> None:
    b = small_bars
    assert list(b.columns) == [
        "time", "code", "name", "open", "high", "low", "close", "volume", "amount"
    ]
    assert b.time.dt.tz is None
    minute = b.time.dt.hour * 60 + b.time.dt.minute
    assert set(minute) == set(BAR_MINUTES.tolist())
    assert not (minute == 9 * 60 + 30).any()
    assert not minute.between(11 * 60 + 31, 13 * 60).any()
    assert (b.time.dt.second == 0).all() and (b.time.dt.dayofweek < 5).all()
    per_day = b.groupby([b.code, b.time.dt.date]).size()
    assert (per_day == 240).all()
    assert set(b.code) == {"600000.SH", "000001.SZ", "600036.SH"}
    start, end = SMALL.stock_window
    assert b.time.min() >= start and b.time.max() < end
    assert not b.duplicated(["code", "time"]).any()


def test_stock_bars_dirty_rows_as_documented(small_bars: pd.DataFrame) -> None:
    b = small_bars
    masks = _dirty(b)
    assert set(masks) == set(DIRTY_BAR_RULES)
    months = SMALL.stock_months
    for rule, mask in masks.items():
        assert mask.sum() == months, rule
    any_dirty = np.logical_or.reduce(list(masks.values()))
    assert any_dirty.sum() == months * len(DIRTY_BAR_RULES)  # each breaks exactly one rule
    clean = b[~any_dirty]
    assert (clean.volume >= 0).all() and clean.amount.notna().all()
    assert (clean.amount >= 0).all()


def test_stock_bars_prices_names_and_amounts(small_bars: pd.DataFrame) -> None:
    b = small_bars
    codes = list(dict.fromkeys(b.code))
    neg_code = codes[NEGATIVE_CODE]
    neg = b[b.code == neg_code]
    assert (neg.close < 0).all()  # qfq prices below zero
    pos = b[b.code != neg_code]
    assert pos.close.between(0.5, 300).all()
    # amount ≈ volume × price × 100 (a price between low and high of the raw bar)
    ok = pos[(pos.volume > 0) & pos.amount.notna()
             & (pos.high >= np.maximum(pos.open, pos.close))
             & (pos.low <= np.minimum(pos.open, pos.close))]
    vwap = ok.amount / ok.volume / 100
    assert ((vwap >= ok.low * 0.995) & (vwap <= ok.high * 1.005)).all()
    # one code changes its name mid-month to an ST name
    names = b.groupby("code").name.nunique()
    renamed = codes[RENAMED_CODE]
    assert names[renamed] == 2 and (names.drop(renamed) == 1).all()
    seq = b[b.code == renamed].sort_values("time").name
    assert seq.iloc[-1] == "ST" + seq.iloc[0]
    assert len(generate_stock_bars(DemoConfig(stock_codes=20, stock_months=2))) > 150_000


# --- ticks ---------------------------------------------------------------------------------


def test_ticks_auctions_out_of_session_and_duplicate() -> None:
    t = generate_ticks(SMALL)
    assert list(t.columns) == ["time", "code", "price", "cum_volume", "cum_amount"]
    day = t.time.dt.normalize().unique()
    assert len(day) == 1 and day[0].dayofweek < 5
    clock = t.time.dt.strftime("%H:%M:%S.%f")
    for code, g in t.groupby("code"):
        c = set(clock[g.index])
        for special in ("09:25:00.000000", "11:30:00.000000", "15:00:00.000000"):
            assert special in c, (code, special)
        assert g.cum_volume.is_monotonic_increasing and g.cum_amount.is_monotonic_increasing
        assert g.time.is_monotonic_increasing
        assert (g.price > 0).all()
    hm = t.time.dt.hour * 60 + t.time.dt.minute
    in_session = hm.between(9 * 60 + 30, 11 * 60 + 29) | hm.between(13 * 60, 14 * 60 + 59)
    in_session |= clock.isin(["09:25:00.000000", "11:30:00.000000", "15:00:00.000000"])
    outside = t[~in_session]
    assert sorted(clock[outside.index]) == ["12:00:00.000000", "15:05:00.000000"]
    assert t.duplicated().sum() == 1
    # interior prints never sit exactly on a minute (bar-boundary conventions stay moot)
    on_minute = (t.time.dt.second == 0) & (t.time.dt.microsecond == 0)
    assert set(clock[on_minute]) == {
        "09:25:00.000000", "11:30:00.000000", "15:00:00.000000", "12:00:00.000000",
        "15:05:00.000000",
    }


def test_ticks_for_a_chosen_day() -> None:
    t = generate_ticks(SMALL, day="2025-10-15")
    assert (t.time.dt.date == pd.Timestamp("2025-10-15").date()).all()
    with pytest.raises(ValueError, match="not a trading day"):
        generate_ticks(SMALL, day="2025-10-18")


# --- loading -------------------------------------------------------------------------------


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


def test_load_demo_keeps_foreign_rows(postgres: PostgresResource) -> None:
    """Rows outside the demo (later ids, other dates, other codes) survive a reload."""
    load_demo(postgres, SMALL)
    with postgres.connect() as conn:
        conn.execute(
            "INSERT INTO purchasing_shop_price_record "
            "(shop_id, iphone_id, price_new, recorded_at) VALUES (1, 1, 99900, '2024-01-05')"
        )
        conn.execute(
            "INSERT INTO stock_1min_qfq (time, code, name, open, high, low, close, volume, amount)"
            " VALUES ('2025-10-09 09:31', '688981.SH', '中芯国际', 1, 1, 1, 1, 1, 100)"
        )
    before = _db_counts(postgres, ["purchasing_shop_price_record", "stock_1min_qfq"])
    load_demo(postgres, SMALL)
    assert _db_counts(postgres, ["purchasing_shop_price_record", "stock_1min_qfq"]) == before
    with postgres.connect() as conn:
        assert conn.execute(
            "SELECT count(*) FROM purchasing_shop_price_record WHERE price_new = 99900 "
            "AND recorded_at = '2024-01-05'"
        ).fetchone()[0] == 1
