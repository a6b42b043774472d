"""The price endpoints against the demo month materialized into ClickHouse: shapes exactly as
the old frontend reads them, filters, DRF pagination links, ordering and run_id."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from kline_assets.prices import read as query

OVERALL = ["bucket", "iphone", "iphone_name", "mean", "median", "std", "shop_count",
           "dispersion", "is_final", "updated_at"]
COHORT = ["bucket", "cohort", "cohort_name", "mean", "median", "std", "n_models",
          "shop_count_agg", "dispersion"]
FEATURE = ["bucket", "scope", "name", "value", "version", "is_final"]
ANALYSIS = ["shop", "iphone", "price_new", "price_a", "price_b", "bucket", "record_time",
            "alignment_diff_sec"]


def get(client, url, status=200, **params):
    res = client.get(url, params=params)
    assert res.status_code == status, res.text
    return res.json()


def test_overall_bars_shape_and_values_match_features_wide(client, read_store):
    page = get(client, "/api/overall-bars/", iphone=2, limit=3)
    assert list(page) == ["count", "next", "previous", "results"]
    assert [list(r) for r in page["results"]] == [OVERALL] * 3
    first = page["results"][0]
    assert first["iphone"] == 2 and first["iphone_name"] == "iPhone 17 Pro 256GB"
    assert first["bucket"] == "2025-10-31T23:45:00+09:00"  # -bucket by default, Tokyo offset
    assert first["is_final"] is True  # October 2025 ended long ago
    wide = query.query_features(read_store.clickhouse, scope="iphone:2", limit=1)[0]
    assert first["mean"] == wide["mean"] and first["shop_count"] == wide["shop_count"]
    assert first["updated_at"] == wide["inserted_at"]
    assert page["count"] == query.count_features(read_store.clickhouse, scope="iphone:2")


def test_overall_bars_cover_every_iphone_and_no_cohort(client):
    page = get(client, "/api/overall-bars/", bucket__gte="2025-10-10T12:00",
               bucket__lte="2025-10-10T12:00")
    assert sorted(r["iphone"] for r in page["results"]) == [1, 2, 3, 4]
    assert {r["bucket"] for r in page["results"]} == {"2025-10-10T12:00:00+09:00"}


def test_pagination_links_walk_the_whole_result(client):
    url = "/api/overall-bars/?iphone=1&bucket__gte=2025-10-01&bucket__lte=2025-10-01T02:45"
    seen, pages, nxt = [], 0, url + "&limit=5"
    first = None
    while nxt:
        body = client.get(nxt).json()
        first = first or body
        seen += [r["bucket"] for r in body["results"]]
        nxt, pages = body["next"], pages + 1
        if pages > 1:
            assert body["previous"]
    assert first["count"] == 12 and first["previous"] is None and pages == 3
    assert len(seen) == len(set(seen)) == 12
    assert seen == sorted(seen, reverse=True)
    assert "offset=5" in first["next"] and "limit=5" in first["next"]
    last = client.get(first["next"].replace("offset=5", "offset=10")).json()
    assert last["next"] is None and "offset=5" in last["previous"]
    second = client.get(first["next"]).json()
    assert "offset" not in second["previous"]  # back to the first page, as DRF does


def test_ordering_by_several_fields(client):
    rows = get(client, "/api/overall-bars/", bucket__gte="2025-10-05", bucket__lte="2025-10-05",
               ordering="-iphone,bucket")["results"]
    assert [r["iphone"] for r in rows] == [4, 3, 2, 1]
    asc = get(client, "/api/overall-bars/", iphone="1,3", ordering="mean", limit=50)["results"]
    means = [r["mean"] for r in asc if r["mean"] is not None]
    assert means == sorted(means) and {r["iphone"] for r in asc} <= {1, 3}


def test_run_id_selects_the_run(client):
    live = get(client, "/api/overall-bars/", iphone=1, limit=1)
    backfill = get(client, "/api/overall-bars/", iphone=1, limit=1, run_id="backfill_v3")
    assert live["count"] == backfill["count"] > 0
    assert live["results"][0]["mean"] == backfill["results"][0]["mean"]
    assert get(client, "/api/features/", run_id="backfill_v3", scope="iphone:1",
               name="mean", limit=1)["results"][0]["version"] == "backfill_v3"


def test_cohort_bars_shape_names_and_member_counts(client, read_store):
    page = get(client, "/api/cohort-bars/", cohort__slug="pro-latest", limit=2)
    assert [list(r) for r in page["results"]] == [COHORT] * 2
    row = page["results"][0]
    with read_store.postgres.connect() as conn:
        cid, name = conn.execute("SELECT id, name FROM cohort WHERE slug = 'pro-latest'").fetchone()
        members = conn.execute(
            "SELECT count(*) FROM cohort_member m JOIN cohort c ON c.id = m.cohort_id "
            "WHERE c.slug = 'pro-latest' AND m.iphone_id IN (1, 2, 3, 4)").fetchone()[0]
    assert row["cohort"] == cid and row["cohort_name"] == name
    assert 1 <= row["n_models"] <= members
    assert row["shop_count_agg"] >= row["n_models"]
    all_cohorts = get(client, "/api/cohort-bars/", bucket__gte="2025-10-07T08:00",
                      bucket__lte="2025-10-07T08:00")["results"]
    with read_store.postgres.connect() as conn:
        names = sorted(n for (n,) in conn.execute("SELECT name FROM cohort").fetchall())
    assert sorted(r["cohort_name"] for r in all_cohorts) == names and len(names) == 3


def test_features_long_format_is_the_unpivoted_wide_row(client, read_store):
    wide = query.query_features(read_store.clickhouse, scope="cohort:pro-latest",
                                bucket_gte="2025-10-20T10:00", bucket_lte="2025-10-20T10:00")[0]
    page = get(client, "/api/features/", scope="cohort:pro-latest",
               name=["ema_900", "boll_up_120"], bucket__gte="2025-10-20T10:00",
               bucket__lte="2025-10-20T10:00", ordering="name")
    assert page["count"] == 2
    assert page["results"] == [
        {"bucket": "2025-10-20T10:00:00+09:00", "scope": "cohort:pro-latest",
         "name": "boll_up_120", "value": wide["boll_up_120"], "version": "live",
         "is_final": True},
        {"bucket": "2025-10-20T10:00:00+09:00", "scope": "cohort:pro-latest",
         "name": "ema_900", "value": wide["ema_900"], "version": "live", "is_final": True},
    ]


def test_features_leave_out_nulls_and_count_them_out(client):
    # The first buckets of the month have no 1800-minute SMA yet (cold start): no rows.
    page = get(client, "/api/features/", scope="iphone:1", name="sma_1800",
               bucket__lte="2025-10-01T01:00")
    assert page == {"count": 0, "next": None, "previous": None, "results": []}
    kinds = get(client, "/api/features/", scope="iphone:*", name="mean",
                bucket__gte="2025-10-03T00:00", bucket__lte="2025-10-03T00:00")
    assert sorted(r["scope"] for r in kinds["results"]) == [f"iphone:{i}" for i in (1, 2, 3, 4)]
    assert [list(r) for r in kinds["results"]] == [FEATURE] * 4


def test_purchasing_time_analyses_join_names(client, read_store):
    page = get(client, "/api/purchasing-time-analyses/", shop=2, iphone=1,
               bucket__gte="2025-10-02", bucket__lte="2025-10-02T23:59", ordering="bucket")
    assert page["count"] > 0
    row = page["results"][0]
    assert list(row) == ANALYSIS
    assert row["shop"] == {"id": 2, "name": "Shinjuku Smart Buy"}
    assert row["iphone"] == {"id": 1, "name": "iPhone 17 Pro Max 256GB"}
    bucket = datetime.fromisoformat(row["bucket"])
    record = datetime.fromisoformat(row["record_time"])
    assert timedelta(0) <= record - bucket < timedelta(minutes=15)
    assert row["alignment_diff_sec"] == (record - bucket).total_seconds()
    assert row["bucket"].endswith("+09:00") and row["bucket"] >= "2025-10-02T00:00"
    assert page["count"] == query.count_price_aligned(
        read_store.clickhouse, shop_ids=[2], iphone_ids=[1], bucket_gte="2025-10-02",
        bucket_lte="2025-10-02T23:59")


@pytest.mark.parametrize(("url", "params", "status", "says"), [
    ("/api/overall-bars/", {"ordering": "price"}, 400, "cannot order by 'price'"),
    ("/api/overall-bars/", {"bucket__gte": "yesterday"}, 400, "not an ISO-8601"),
    ("/api/overall-bars/", {"limit": 100_000}, 400, "limit"),
    ("/api/overall-bars/", {"iphone": "one"}, 400, "integer ids"),
    ("/api/features/", {"name": "password"}, 400, "unknown column(s) 'password'"),
    ("/api/features/", {"scope": "iphone:1 OR 1=1"}, 400, "invalid scope"),
    ("/api/overall-bars/", {"run_id": "no_such_run"}, 404, "run 'no_such_run' has no data"),
    ("/api/overall-bars/", {"iphone": 999}, 404, "scope 'iphone:999' has no data"),
    ("/api/cohort-bars/", {"cohort__slug": "nope"}, 404, "scope 'cohort:nope'"),
    ("/api/runs/missing/scopes/", {}, 404, "run 'missing'"),
])
def test_bad_parameters_say_what_is_wrong(client, url, params, status, says):
    body = get(client, url, status, **params)
    assert says in body["detail"]


@pytest.mark.parametrize(("param", "value"), [
    ("run_id", "live' OR '1'='1"), ("run_id", "live; DROP TABLE features_wide"),
    ("scope", "iphone:1') OR ('1'='1"), ("scope", "cohort:x'||sleep(3)||'"),
    ("name", "mean, (SELECT password FROM system.users)"), ("name", "mean) --"),
    ("ordering", "bucket; DROP TABLE features_wide"), ("ordering", "(SELECT 1)"),
    ("cohort__slug", "x' UNION SELECT * FROM system.tables --"),
])
def test_injection_attempts_are_refused_and_change_nothing(client, read_store, param, value):
    url = {"scope": "/api/features/", "name": "/api/features/",
           "cohort__slug": "/api/cohort-bars/"}.get(param, "/api/overall-bars/")
    res = client.get(url, params={param: value})
    assert res.status_code in (400, 404), res.text
    assert query.count_features(read_store.clickhouse) > 0
