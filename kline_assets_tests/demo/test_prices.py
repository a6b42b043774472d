"""Price records: schema, window, the documented bad rows and the realism the pipeline relies on."""

from __future__ import annotations

import pandas as pd

from kline_assets.demo.catalog import DemoConfig
from kline_assets.demo.prices import BAD_ROWS, generate_price_records, release_time
from kline_assets_tests.support.demo import MEDIUM, SMALL

BUCKET = pd.Timedelta(minutes=15)


def _valid(records: pd.DataFrame, cfg: DemoConfig) -> pd.DataFrame:
    ok = (
        records.shop_id.between(1, cfg.n_shops)
        & records.iphone_id.between(1, cfg.n_iphones)
        & records.price_new.notna()
    )
    return records[ok & (records.price_new > 0)]


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
