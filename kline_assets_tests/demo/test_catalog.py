"""The demo's configuration and catalogue, and the determinism every generator promises."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from kline_assets.demo.catalog import COHORTS, DemoConfig, generate_catalog
from kline_assets.demo.prices import generate_price_records
from kline_assets.demo.stocks import generate_stock_bars
from kline_assets.demo.ticks import generate_ticks
from kline_assets_tests.support.demo import SMALL


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


def test_config_months_and_windows() -> None:
    cfg = DemoConfig(start="2025-11", months=3, stock_months=1)
    assert cfg.price_months == ["2025-11-01", "2025-12-01", "2026-01-01"]
    assert cfg.stock_month_keys == ["2025-11-01"]
    start, end = cfg.window
    assert (str(start), str(end)) == ("2025-11-01 00:00:00+09:00", "2026-02-01 00:00:00+09:00")
    assert cfg.stock_window == (pd.Timestamp("2025-11-01"), pd.Timestamp("2025-12-01"))
    assert DemoConfig(start="2025-11-01").window == DemoConfig(start="2025-11").window


@pytest.mark.parametrize("kwargs", [
    {"months": 0}, {"stock_months": -1}, {"start": "2025-11-15"}, {"start": "2025-13"},
    {"n_shops": 999}, {"n_iphones": 41},
])
def test_config_refuses_bad_values(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        DemoConfig(**kwargs)
