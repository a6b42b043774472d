"""cross_shop_agg → features_wide and cohorts, materialized by Dagster on real PostgreSQL and
embedded ClickHouse, against independent pandas references."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from dagster import materialize
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from kline_assets.prices.assets import (
    ALL,
    COMPUTED,
    cohorts,
    cross_shop_agg,
    features_wide,
    price_aligned,
)
from kline_assets.prices.run_config import PriceRun
from kline_assets.resources import ClickHouseResource
from kline_assets_tests.support.prices import HAND, insert_records, numbered_records, run, table

FEATURES = [f"{k}_{w}" for k in ("ema", "sma", "wma") for w in (120, 900, 1800)] + [
    f"boll_{p}_{w}" for w in (120, 900, 1800) for p in ("mid", "up", "low", "width")]
WINDOWS = {120: 8, 900: 60, 1800: 120}


def run_range(resources, instance, start: str, end: str):
    result = materialize(ALL, selection=COMPUTED, resources=resources, instance=instance,
                         tags={ASSET_PARTITION_RANGE_START_TAG: start,
                               ASSET_PARTITION_RANGE_END_TAG: end})
    assert result.success
    return result


def meta(result, node: str) -> dict:
    return {k: v.value for k, v in result.asset_materializations_for_node(node)[0].metadata.items()}


# --- hand-built records --------------------------------------------------------------------

def reference_cross_shop(records: pd.DataFrame, band: float = 0.2) -> pd.DataFrame:
    df = records.assign(bucket=records.recorded_at.dt.floor("15min"))
    df = df.sort_values(["recorded_at", "id"]).groupby(["shop_id", "iphone_id", "bucket"]).tail(1)
    rows = []
    for (iphone, bucket), g in df.groupby(["iphone_id", "bucket"]):
        p = g.price_new.astype(float).to_numpy()
        if len(p) >= 3:
            med = np.median(p)
            p = p[np.abs(p - med) <= band * med]
        rows.append({"iphone_id": iphone, "bucket": bucket, "mean": p.mean(),
                     "median": np.median(p), "std": p.std(ddof=1) if len(p) > 1 else np.nan,
                     "shop_count": len(p)})
    out = pd.DataFrame(rows)
    out["dispersion"] = out["std"] / out["mean"]
    return out.sort_values(["iphone_id", "bucket"]).reset_index(drop=True)


def reference_features(mean: pd.Series) -> pd.DataFrame:
    """mean on the full grid (NaN where empty) → ffill → pandas rolling/ewm."""
    x = mean.ffill()
    out = {}
    for minutes, w in WINDOWS.items():
        out[f"ema_{minutes}"] = x.ewm(span=w, adjust=False).mean()
        out[f"sma_{minutes}"] = x.rolling(w).mean()
        weights = np.arange(1, w + 1, dtype=float)
        out[f"wma_{minutes}"] = x.rolling(w).apply(lambda a, wt=weights: a @ wt / wt.sum(),
                                                   raw=True)
        sd = x.rolling(w).std(ddof=0)
        out[f"boll_mid_{minutes}"] = out[f"sma_{minutes}"]
        out[f"boll_up_{minutes}"] = out[f"sma_{minutes}"] + 2 * sd
        out[f"boll_low_{minutes}"] = out[f"sma_{minutes}"] - 2 * sd
        out[f"boll_width_{minutes}"] = 4 * sd
    return pd.DataFrame(out)


def test_cross_shop_agg_matches_pandas(price_resources, runs):
    records = insert_records(price_resources["postgres"], HAND)
    result = run(price_resources, runs, "2025-10-01|live")
    got = table(price_resources["clickhouse"], "cross_shop_agg").sort_values(
        ["iphone_id", "bucket"]).reset_index(drop=True)
    want = reference_cross_shop(records)
    assert got.iphone_id.astype(int).tolist() == want.iphone_id.tolist()
    assert got.bucket.tolist() == want.bucket.tolist()
    for col in ("mean", "median", "std", "dispersion"):
        np.testing.assert_allclose(got[col].astype(float), want[col], rtol=1e-12, equal_nan=True)
    assert got.shop_count.astype(int).tolist() == want.shop_count.tolist()
    first = got.iloc[0]  # four shops: median is the mean of the two middle prices
    assert first["median"] == 102_000.0
    assert meta(result, "cross_shop_agg")["outliers_dropped"] == 1  # the ×10 typo


def test_require_policy_nulls_stats_below_quorum(price_resources, runs):
    insert_records(price_resources["postgres"], HAND)
    config = PriceRun(quorum_policy="require", min_quorum=4).run_config()
    run(price_resources, runs, "2025-10-01|live", [price_aligned, cross_shop_agg], config)
    got = table(price_resources["clickhouse"], "cross_shop_agg")
    full = got.shop_count >= 4
    assert full.sum() == 1  # only the first bucket of iPhone 10 keeps four shops
    assert got.loc[full, "mean"].notna().all() and got.loc[~full, "mean"].isna().all()
    assert (got.loc[~full, "shop_count"] > 0).all()


def test_features_wide_matches_pandas_with_gaps(price_resources, runs):
    insert_records(price_resources["postgres"], HAND)
    run(price_resources, runs, "2025-10-01|live")
    got = table(price_resources["clickhouse"], "features_wide",
                "scope = 'iphone:10'").sort_values("bucket").reset_index(drop=True)
    start = pd.Timestamp("2025-10-01 00:00", tz="Asia/Tokyo")
    last = pd.Timestamp("2025-10-01 03:00", tz="Asia/Tokyo")  # the month's last source bucket
    assert got.bucket.tolist() == list(pd.date_range(start, last, freq="15min"))
    empty = got[got.shop_count == 0]
    assert len(empty) == 5 + 4  # 00:45–01:45 and 02:15–03:00
    assert empty["mean"].isna().all() and empty["std"].isna().all()
    records = pd.DataFrame(HAND, columns=["id", "shop_id", "iphone_id", "price_new", "a", "b",
                                          "recorded_at"])
    records["recorded_at"] = pd.to_datetime(records.recorded_at).dt.tz_localize("Asia/Tokyo")
    ref = reference_cross_shop(records)
    ref10 = ref[ref.iphone_id == 10].set_index("bucket")["mean"].reindex(got.bucket)
    want = reference_features(ref10.reset_index(drop=True))
    for col in FEATURES:
        np.testing.assert_allclose(got[col].astype(float), want[col], atol=1e-6, rtol=0,
                                   equal_nan=True, err_msg=col)


def test_scope_appearing_mid_month_starts_at_its_first_observation(price_resources, runs):
    insert_records(price_resources["postgres"], HAND)
    run(price_resources, runs, "2025-10-01|live")
    got = table(price_resources["clickhouse"], "features_wide", "scope = 'iphone:11'")
    assert got.bucket.min() == pd.Timestamp("2025-10-01 01:00", tz="Asia/Tokyo")
    assert got.bucket.max() == pd.Timestamp("2025-10-01 03:00", tz="Asia/Tokyo")


def test_empty_month_emits_no_materialization_and_skips_downstream(price_resources, runs):
    insert_records(price_resources["postgres"], HAND)
    result = run(price_resources, runs, "2025-12-01|live")
    assert result.get_asset_materialization_events() == []
    skipped = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SKIPPED"}
    assert skipped == {"cross_shop_agg", "features_wide", "cohorts"}
    assert runs.get_latest_materialization_event(price_aligned.key) is None
    assert table(price_resources["clickhouse"], "features_wide").empty
    said = [e.user_message for e in runs.all_logs(result.run_id)]
    assert any("price_aligned of run live, 2025-12: no data, so nothing is materialized" in m
               for m in said)


def test_a_month_whose_source_vanished_is_cleared_and_says_so(price_resources, runs):
    insert_records(price_resources["postgres"], HAND)
    run(price_resources, runs, "2025-10-01|live")
    with price_resources["postgres"].connect() as conn:
        conn.execute("DELETE FROM purchasing_shop_price_record")
    result = run(price_resources, runs, "2025-10-01|live")
    cleared = {node: meta(result, node)["cleared_rows"] for node in
               ("price_aligned", "cross_shop_agg", "features_wide")}
    assert all(n > 0 for n in cleared.values()), cleared
    for name in ("price_aligned", "cross_shop_agg", "features_wide"):
        assert table(price_resources["clickhouse"], name).empty


# --- month alone vs one long run, carry across the warm-up edge -----------------------------

def expected_rows_per_scope_and_month(clickhouse, postgres) -> dict[tuple[str, int], int]:
    """From price_aligned alone: a row per bucket from the scope's first observation (for a
    cohort: its first member's) to the month's last bucket holding any source record."""
    aligned = table(clickhouse, "price_aligned")
    first = aligned.groupby("iphone_id").bucket.min()
    with postgres.connect() as conn:
        members = conn.execute("SELECT c.slug, m.iphone_id FROM cohort c JOIN cohort_member m "
                               "ON m.cohort_id = c.id WHERE m.weight > 0").fetchall()
    firsts = {f"iphone:{i}": b for i, b in first.items()}
    for slug, iphone in members:
        if iphone in first.index:
            key = f"cohort:{slug}"
            firsts[key] = min(firsts.get(key, first[iphone]), first[iphone])
    expected = {}
    for month, rows in aligned.groupby(aligned.bucket.dt.strftime("%Y%m").astype(int)):
        month_start = rows.bucket.min().replace(day=1, hour=0, minute=0)
        last = rows.bucket.max()
        for scope, f in firsts.items():
            begin = max(f, month_start)
            if begin <= last:
                expected[(scope, month)] = int((last - begin) / pd.Timedelta("15min")) + 1
    return expected


@pytest.mark.slow
def test_month_alone_equals_long_run(price_resources, runs, demo_source, clickhouse_dsn):
    alone = price_resources
    long_run = {**price_resources, "clickhouse": ClickHouseResource(
        dsn=clickhouse_dsn, database=price_resources["clickhouse"].db + "_long")}
    from kline_assets.resources import ClickHouseIOManager

    long_run["clickhouse_io_manager"] = ClickHouseIOManager(clickhouse=long_run["clickhouse"])
    long_run["clickhouse"].ensure_schema()
    try:
        for month in ("2025-10-01", "2025-11-01"):
            run(alone, runs, f"{month}|live")
        run_range(long_run, runs, "2025-10-01|live", "2025-11-01|live")
        for name in ("features_wide", "cross_shop_agg"):
            a = table(alone["clickhouse"], name)
            b = table(long_run["clickhouse"], name)
            keys = ["scope", "bucket"] if name == "features_wide" else ["iphone_id", "bucket"]
            a = a.sort_values(keys).reset_index(drop=True)
            b = b.sort_values(keys).reset_index(drop=True)
            assert len(a) == len(b) > 0
            assert a[keys].equals(b[keys])
            for col in a.columns.difference([*keys, "run_id"]):
                np.testing.assert_allclose(a[col].astype(float), b[col].astype(float),
                                           rtol=1e-9, atol=0, equal_nan=True, err_msg=col)
        features = table(alone["clickhouse"], "features_wide")
        counts = features.groupby(
            [features.scope, features.bucket.dt.strftime("%Y%m").astype(int)]).size().to_dict()
        assert counts == expected_rows_per_scope_and_month(alone["clickhouse"],
                                                           alone["postgres"])
        assert {s.split(":")[0] for s, _ in counts} == {"iphone", "cohort"}
    finally:
        long_run["clickhouse"].drop_database()


def test_a_price_older_than_the_warm_up_is_carried(price_resources, runs):
    insert_records(price_resources["postgres"], numbered_records([
        (1, 12, 80_000, "2025-09-30 23:00"), (2, 12, 82_000, "2025-09-30 23:01"),
        (1, 10, 100_000, "2025-11-01 00:00"),  # November has source data (other iPhone)
    ]))
    for month in ("2025-09-01", "2025-10-01", "2025-11-01"):
        run(price_resources, runs, f"{month}|live")
    nov = table(price_resources["clickhouse"], "features_wide",
                "scope = 'iphone:12' AND toYYYYMM(bucket) = 202511")
    assert len(nov) == 1 and nov["mean"].isna().all() and nov.shop_count.eq(0).all()
    assert nov["ema_120"].iloc[0] == pytest.approx(81_000.0, abs=1e-9)
    assert nov["sma_1800"].iloc[0] == pytest.approx(81_000.0, abs=1e-9)


# --- cohorts ------------------------------------------------------------------------------

def test_cohorts_never_touch_iphone_rows_and_vice_versa(price_resources, runs, demo_source):
    key = "2025-10-01|live"
    run(price_resources, runs, key)
    ch = price_resources["clickhouse"]
    before = table(ch, "features_wide").sort_values(["scope", "bucket"]).reset_index(drop=True)
    with ch.client() as client:
        stamps = client.query(
            f"SELECT splitByChar(':', scope)[1] AS k, groupUniqArray(inserted_at) "
            f"FROM {ch.table('features_wide')} GROUP BY k ORDER BY k").result_rows
    import time

    time.sleep(1.1)  # inserted_at has one-second resolution
    run(price_resources, runs, key, [cohorts])
    run(price_resources, runs, key, [features_wide])
    after = table(ch, "features_wide").sort_values(["scope", "bucket"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(before, after)
    with ch.client() as client:
        stamps_after = client.query(
            f"SELECT splitByChar(':', scope)[1] AS k, groupUniqArray(inserted_at) "
            f"FROM {ch.table('features_wide')} GROUP BY k ORDER BY k").result_rows
    assert [k for k, _ in stamps] == ["cohort", "iphone"]
    assert stamps != stamps_after  # both kinds were rewritten, each by its own asset


def test_cohort_weights_match_a_pandas_reference(price_resources, runs):
    insert_records(price_resources["postgres"], HAND)
    with price_resources["postgres"].connect() as conn:
        conn.execute("INSERT INTO cohort VALUES (1, 'pair', 'Pair')")
        conn.execute("INSERT INTO cohort_member VALUES (1, 10, 3.0), (1, 11, 1.0)")
    run(price_resources, runs, "2025-10-01|live")
    ch = price_resources["clickhouse"]
    agg = table(ch, "cross_shop_agg").pivot(index="bucket", columns="iphone_id", values="mean")
    got = table(ch, "features_wide", "scope = 'cohort:pair'").set_index("bucket").sort_index()
    m10, m11 = agg[10].reindex(got.index), agg[11].reindex(got.index)
    w10, w11 = 3.0 * m10.notna(), 1.0 * m11.notna()
    want = (m10.fillna(0) * w10 + m11.fillna(0) * w11) / (w10 + w11)
    np.testing.assert_allclose(got["mean"].astype(float), want, rtol=1e-12, equal_nan=True)
    both = m10.notna() & m11.notna()
    np.testing.assert_allclose(got.loc[both, "median"].astype(float),
                               ((m10 + m11) / 2)[both], rtol=1e-12)
    want_features = reference_features(want.reset_index(drop=True))
    np.testing.assert_allclose(got["ema_120"].astype(float), want_features["ema_120"],
                               atol=1e-6, equal_nan=True)


def test_cohort_with_unknown_members_or_bad_weights_is_reported(price_resources, runs):
    insert_records(price_resources["postgres"], HAND)
    with price_resources["postgres"].connect() as conn:
        conn.execute("INSERT INTO cohort VALUES (1, 'ok', 'OK'), (2, 'bad', 'Bad'), "
                     "(3, 'empty', 'Empty')")
        conn.execute("INSERT INTO cohort_member VALUES (1, 10, 1), (2, 777, 1), (2, 11, 0), "
                     "(2, 10, -2)")
    result = run(price_resources, runs, "2025-10-01|live")
    m = meta(result, "cohorts")
    assert m["members_rejected"] == 4
    report = m["rejected_members"]
    assert "unknown iphone_id" in report and "weight is not positive" in report
    assert "cohort has no members" in report
    scopes = set(table(price_resources["clickhouse"], "features_wide").scope)
    assert "cohort:ok" in scopes and "cohort:bad" not in scopes


@pytest.mark.slow
def test_a_month_without_its_warm_up_fails_naming_the_partition_to_run_first(
        price_resources, runs):
    insert_records(price_resources["postgres"], numbered_records([
        (1, 10, 100_000, "2025-10-20 10:00"), (2, 10, 101_000, "2025-10-20 10:00"),
        (1, 10, 102_000, "2025-11-02 10:00"), (2, 10, 103_000, "2025-11-02 10:00")]))
    result = materialize(ALL, selection=COMPUTED, partition_key="2025-11-01|backfill_v3",
                         resources=price_resources, instance=runs, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.event_specific_data.error)
    assert "Materialize partition '2025-10-01|backfill_v3' first" in message
    assert table(price_resources["clickhouse"], "cross_shop_agg").empty

    cold = {"ops": {name: {"config": {"cold_start": True}}
                    for name in ("cross_shop_agg", "features_wide", "cohorts")}}
    result = run(price_resources, runs, "2025-11-01|backfill_v3", config=cold)
    assert meta(result, "cross_shop_agg")["warm_up"].startswith("cold start: 2025-10")

    run(price_resources, runs, "2025-10-01|backfill_v3")
    result = run(price_resources, runs, "2025-11-01|backfill_v3")
    assert meta(result, "features_wide")["warm_up"].startswith("2025-10 of run backfill_v3")


# --- what the asset pages show ---------------------------------------------------------------

def test_materialization_metadata_is_readable_and_snake_case(price_resources, runs):
    insert_records(price_resources["postgres"], HAND)
    result = run(price_resources, runs, "2025-10-01|live")
    replaced = {"price_aligned": "live/202510", "cross_shop_agg": "live/202510",
                "features_wide": "live/202510/iphone"}
    for node, partitions in replaced.items():
        m = meta(result, node)
        stored = len(table(price_resources["clickhouse"], "features_wide" if node ==
                           "features_wide" else node))
        assert m["dagster/row_count"] == stored > 0, node
        assert m["partitions_replaced"] == partitions
        assert m["query"].startswith("```sql\nSELECT * FROM ")
        odd = [k for k in m if not re.fullmatch(r"(dagster/)?[a-z0-9_]+", k)]
        assert odd == [], (node, odd)
