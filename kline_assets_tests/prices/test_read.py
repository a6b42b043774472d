"""The price read side (kline_assets.prices.read) against real stores: the demo month
materialized by the price assets (session store), and hand-written rows where a case needs
exact control."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from kline_assets.lib.errors import InvalidQueryError, NotFoundError, StoreUnavailable
from kline_assets.prices import read as query
from kline_assets.resources import ClickHouseResource
from kline_assets.resources.clickhouse.sql import read_frame
from kline_assets_tests.support.ports import closed_port

# --- the demo month ------------------------------------------------------------------------

def test_list_runs_reads_partitions(read_store):
    runs = query.list_runs(read_store.clickhouse)
    assert [r["run_id"] for r in runs] == ["backfill_v3", "live"]
    assert runs[0]["rows"] == runs[1]["rows"] and runs[1]["months"] == ["2025-10"]


def test_features_page_is_the_newest_rows_of_one_scope(read_store):
    ch = read_store.clickhouse
    rows = query.query_features(ch, scope="iphone:3", columns=["bucket", "scope", "mean"],
                                limit=4)
    assert [list(r) for r in rows] == [["bucket", "scope", "mean"]] * 4
    assert [r["bucket"] for r in rows] == [
        "2025-10-31T23:45:00+09:00", "2025-10-31T23:30:00+09:00",
        "2025-10-31T23:15:00+09:00", "2025-10-31T23:00:00+09:00"]
    assert {r["scope"] for r in rows} == {"iphone:3"}


def test_pages_cover_the_count_without_overlap(read_store):
    ch = read_store.clickhouse
    flt = dict(scope="cohort:*", bucket_gte="2025-10-12T00:00", bucket_lte="2025-10-12T05:45")
    total = query.count_features(ch, **flt)
    assert total == 3 * 24
    seen = []
    for offset in range(0, total, 10):
        seen += [(r["scope"], r["bucket"]) for r in query.query_features(
            ch, **flt, columns=["scope", "bucket"], order="mean", limit=10, offset=offset)]
    assert len(seen) == len(set(seen)) == total


def test_time_bounds_accept_dates_times_and_offsets(read_store):
    ch = read_store.clickhouse
    tokyo = query.count_features(ch, scope="iphone:1", bucket_gte="2025-10-05T09:00",
                                 bucket_lte="2025-10-05T10:00")
    utc = query.count_features(ch, scope="iphone:1", bucket_gte="2025-10-05T00:00:00+00:00",
                               bucket_lte="2025-10-05 01:00:00Z")
    day = query.count_features(ch, scope="iphone:1", bucket_gte="2025-10-05",
                               bucket_lte="2025-10-05T23:59:59")
    assert (tokyo, utc, day) == (5, 5, 96)


def test_order_columns_and_limit_are_whitelisted(read_store):
    ch = read_store.clickhouse
    with pytest.raises(InvalidQueryError, match="cannot order by 'mean DESC'"):
        query.query_features(ch, order="mean DESC")
    with pytest.raises(InvalidQueryError, match=r"unknown column\(s\) 'version\(\)'"):
        query.query_features(ch, columns=["mean", "version()"])
    with pytest.raises(InvalidQueryError, match=r"limit must be an integer in \[1, 5000\]"):
        query.query_features(ch, limit=query.MAX_LIMIT + 1)
    with pytest.raises(InvalidQueryError, match="offset"):
        query.query_price_aligned(ch, offset=-1)
    with pytest.raises(InvalidQueryError, match="malformed run id"):
        query.count_features(ch, "live' OR 1=1 --")
    with pytest.raises(InvalidQueryError, match="invalid scope"):
        query.count_features(ch, scope=["iphone:1", "cohort:a' OR '1"])


def test_unknown_run_or_scope_is_not_found_but_an_empty_range_is_empty(read_store):
    ch = read_store.clickhouse
    with pytest.raises(NotFoundError, match="run 'gone' has no data in features_wide"):
        query.query_features(ch, "gone")
    with pytest.raises(NotFoundError, match="scope 'cohort:nope' has no data in run 'live'"):
        query.query_features(ch, scope="cohort:nope")
    with pytest.raises(NotFoundError, match="run 'gone' has no data in price_aligned"):
        query.query_price_aligned(ch, "gone")
    assert query.query_features(ch, scope="iphone:1", bucket_gte="2030-01-01") == []


def test_long_format_is_unpivoted_in_clickhouse(read_store):
    ch = read_store.clickhouse
    wide = query.query_features(ch, scope="iphone:2", bucket_gte="2025-10-15T12:00",
                                bucket_lte="2025-10-15T12:15", order="bucket")
    long = query.query_feature_values(ch, scope="iphone:2", names=["mean", "wma_900"],
                                      bucket_gte="2025-10-15T12:00",
                                      bucket_lte="2025-10-15T12:15", order="bucket,name")
    assert long == [{"bucket": w["bucket"], "scope": "iphone:2", "name": n, "value": w[n],
                     "version": "live"} for w in wide for n in ("mean", "wma_900")]
    assert query.count_feature_values(ch, scope="iphone:2", names=["mean", "wma_900"],
                                      bucket_gte="2025-10-15T12:00",
                                      bucket_lte="2025-10-15T12:15") == 4


def test_cohort_n_models_counts_members_with_data_in_the_bucket(read_store):
    ch, pg = read_store.clickhouse, read_store.postgres
    with ch.client() as client:
        agg = read_frame(client, ch.table("cross_shop_agg"), "run_id = 'live'",
                         columns=["bucket", "iphone_id", "mean"])
    with pg.connect() as conn:
        members = pd.DataFrame(conn.execute(
            "SELECT c.slug, m.iphone_id FROM cohort c JOIN cohort_member m ON m.cohort_id = c.id "
            "WHERE m.weight > 0").fetchall(), columns=["slug", "iphone_id"])
    present = agg[agg["mean"].notna()].merge(members, on="iphone_id")
    expected = present.groupby(["slug", "bucket"]).size()
    rows = query.query_features(ch, scope="cohort:*", columns=["scope", "bucket", "n_models"],
                                limit=query.MAX_LIMIT, bucket_lte="2025-10-15")
    assert rows and all(r["n_models"] is not None for r in rows)
    got = {(r["scope"][7:], pd.Timestamp(r["bucket"])): r["n_models"] for r in rows}
    for (slug, bucket), n in got.items():
        assert n == expected.get((slug, bucket), 0), (slug, bucket)
    iphone = query.query_features(ch, scope="iphone:1", columns=["n_models"], limit=5)
    assert {r["n_models"] for r in iphone} == {None}


def test_aligned_prices_filter_by_shop_iphone_and_range(read_store):
    ch = read_store.clickhouse
    rows = query.query_price_aligned(ch, shop_ids=[1, 3], iphone_ids=[4],
                                     bucket_gte="2025-10-09", bucket_lte="2025-10-09T23:59",
                                     order="shop_id,bucket", limit=query.MAX_LIMIT)
    assert rows and {(r["shop_id"], r["iphone_id"]) for r in rows} <= {(1, 4), (3, 4)}
    assert all("2025-10-09T00:00:00+09:00" <= r["bucket"] < "2025-10-10" for r in rows)
    assert [(r["shop_id"], r["bucket"]) for r in rows] == sorted(
        (r["shop_id"], r["bucket"]) for r in rows)
    assert len(rows) == query.count_price_aligned(ch, shop_ids=[1, 3], iphone_ids=[4],
                                                  bucket_gte="2025-10-09",
                                                  bucket_lte="2025-10-09T23:59")


# --- hand-written rows ----------------------------------------------------------------------

def insert(ch: ClickHouseResource, rows: list[tuple]) -> None:
    """(scope, bucket Tokyo text, mean, inserted_at UTC text) into features_wide, run live."""
    with ch.client() as client:
        client.command(
            f"INSERT INTO {ch.table('features_wide')} (run_id, bucket, scope, mean, shop_count, "
            "inserted_at) VALUES " + ", ".join(
                f"('live', toDateTime('{b}', 'Asia/Tokyo'), '{s}', {m}, 1, "
                f"toDateTime('{t}', 'UTC'))" for s, b, m, t in rows))


def test_final_shows_only_the_newest_version_of_a_row(clickhouse):
    insert(clickhouse, [("iphone:1", "2025-10-01 09:00:00", 100.0, "2025-10-02 00:00:00"),
                        ("iphone:1", "2025-10-01 09:15:00", 101.0, "2025-10-02 00:00:00")])
    insert(clickhouse, [("iphone:1", "2025-10-01 09:00:00", 200.0, "2025-10-03 00:00:00")])
    rows = query.query_features(clickhouse, scope="iphone:1", order="bucket",
                                columns=["bucket", "mean", "inserted_at"])
    assert rows == [
        {"bucket": "2025-10-01T09:00:00+09:00", "mean": 200.0,
         "inserted_at": "2025-10-03T09:00:00+09:00"},
        {"bucket": "2025-10-01T09:15:00+09:00", "mean": 101.0,
         "inserted_at": "2025-10-02T09:00:00+09:00"},
    ]
    assert query.count_features(clickhouse, scope="iphone:1") == 2


def test_nan_and_infinity_leave_as_null(clickhouse):
    insert(clickhouse, [("iphone:1", "2025-10-01 09:00:00", "nan", "2025-10-02 00:00:00"),
                        ("iphone:1", "2025-10-01 09:15:00", "inf", "2025-10-02 00:00:00")])
    rows = query.query_features(clickhouse, scope="iphone:1", columns=["mean", "std"])
    assert rows == [{"mean": None, "std": None}] * 2
    json.dumps(rows, allow_nan=False)  # strict JSON: no NaN token
    assert query.query_feature_values(clickhouse, scope="iphone:1", bucket_gte="2025-10-01",
                                      names=["mean"], limit=5) == []


def test_a_closed_clickhouse_port_is_store_unavailable_with_its_address():
    port = closed_port()
    ch = ClickHouseResource(dsn=f"http://u:s3cret@127.0.0.1:{port}/kline")
    with pytest.raises(StoreUnavailable) as info:
        query.query_features(ch, scope="iphone:1")
    assert info.value.store == "ClickHouse" and info.value.address == f"http://127.0.0.1:{port}"
    assert "s3cret" not in str(info.value)


def test_scope_number_orders_iphones_numerically(clickhouse):
    insert(clickhouse, [(f"iphone:{i}", "2025-10-01 09:00:00", 1.0, "2025-10-02 00:00:00")
                        for i in (9, 10, 100, 2)])
    rows = query.query_features(clickhouse, scope="iphone:*", order="-scope_number",
                                columns=["scope"])
    assert [r["scope"] for r in rows] == ["iphone:100", "iphone:10", "iphone:9", "iphone:2"]
    by_text = query.query_features(clickhouse, scope="iphone:*", order="scope", columns=["scope"])
    assert [r["scope"] for r in by_text] == ["iphone:10", "iphone:100", "iphone:2", "iphone:9"]


def test_finality_of_iso_buckets_is_is_final_at_every_edge():
    """The string comparison the pages use agrees with parsing, at the cutoff and off it,
    and for times `iso` did not write (another offset, fractions of a second)."""
    from datetime import datetime, timedelta

    from kline_assets.prices.read.args import TZ

    now = datetime(2025, 10, 1, 10, 0, 0, 500000, tzinfo=TZ)  # between two whole seconds
    final = query.finality(now)
    cutoff = now.replace(microsecond=0) - timedelta(minutes=20)
    buckets = [query.iso(int((cutoff + timedelta(seconds=s)).timestamp()))
               for s in (-900, -1, 0, 1, 900)]
    buckets += ["2025-10-01T00:39:59+00:00", "2025-10-01T00:40:01+00:00",
                "2025-10-01T09:39:59.5+09:00", "2025-10-01T09:40:00.5+09:00",
                "1945-10-01T09:00:00+09:00"]
    assert [final(b) for b in buckets] == [query.is_final(b, now) for b in buckets]
    assert [final(b) for b in buckets[:5]] == [True, True, True, False, False]
    assert final.many(buckets) == [final(b) for b in buckets]  # mixed forms: one by one
    assert final.many(buckets[:5]) == [True, True, True, False, False]  # iso's: compared
    assert final.many([]) == []
