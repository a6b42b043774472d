"""Runs, scopes and health."""

from __future__ import annotations


def test_runs_list_every_run_with_its_months(client):
    body = client.get("/api/runs/").json()
    assert body["count"] == 2 and body["next"] is None
    assert [r["run_id"] for r in body["results"]] == ["backfill_v3", "live"]
    live = body["results"][1]
    assert live["months"] == ["2025-10"]
    assert set(live["rows"]) == {"price_aligned", "cross_shop_agg", "features_wide"}
    assert all(n > 0 for n in live["rows"].values())


def test_scopes_of_a_run_with_names(client):
    body = client.get("/api/runs/live/scopes/").json()
    scopes = [s["scope"] for s in body["results"]]
    assert scopes[:4] == ["iphone:1", "iphone:2", "iphone:3", "iphone:4"]
    assert {s.split(":")[0] for s in scopes[4:]} == {"cohort"} and len(scopes) == 7
    first = body["results"][0]
    assert first["name"] == "iPhone 17 Pro Max 256GB"
    assert first["first_bucket"] == "2025-10-01T00:00:00+09:00"
    assert first["last_bucket"] == "2025-10-31T23:45:00+09:00"


def test_healthz_reports_each_store(client, read_store):
    res = client.get("/healthz")
    assert res.status_code == 200
    stores = {s["store"]: s for s in res.json()["stores"]}
    assert stores["clickhouse"] == {"store": "clickhouse", "ok": True,
                                   "address": read_store.clickhouse.address}
    assert stores["postgres"]["ok"] and stores["postgres"]["address"] == read_store.postgres.address


def test_a_page_asked_again_is_served_from_the_cache_with_the_same_body(client, read_store):
    """Embedded engine held: nothing can write in between, so the second answer comes from
    the page cache (counted on /healthz) and is the same JSON."""
    url = "/api/overall-bars/?iphone=2&bucket__gte=2025-10-03&limit=7&offset=7"
    before = client.get("/healthz").json()["cache"]
    first, second = client.get(url), client.get(url)
    after = client.get("/healthz").json()["cache"]
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json() and first.json()["count"] > 14
    if read_store.clickhouse.dsn.startswith("chdb://"):
        assert after["hits"] - before["hits"] == 1
        assert after["misses"] - before["misses"] == 1
