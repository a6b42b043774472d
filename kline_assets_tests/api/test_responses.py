"""Price pages kept as encoded bodies and built on the event loop when memory holds them:
the bytes are FastAPI's own, a write between two requests is seen by the second (embedded
engine held, and without a hold by the parts version a server gets), and a kept body is not
served past the moment one of its buckets turns final."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from kline_assets.api.app import create_app
from kline_assets.api.inline import inline_or_pooled, may_block
from kline_assets.api.pagination import Page
from kline_assets.api.prices import CohortBar, FeatureValue, OverallBar, PurchasingTimeAnalysis
from kline_assets.api.responses import EncodedPages, encode, final_until
from kline_assets.prices.read.args import TZ
from kline_assets.resources.clickhouse.engine import is_embedded
from kline_assets_tests.api.test_memory import WRITER

URL = ("/api/overall-bars/?iphone=1&bucket__gte=2025-10-01T00:00&bucket__lte=2025-11-01T00:00"
       "&limit=10")


def _insert(clickhouse, mean: float, inserted_at: str, bucket: str = "2025-10-01 09:00:00"
            ) -> str:
    return (f"INSERT INTO {clickhouse.table('features_wide')} (run_id, bucket, scope, mean, "
            f"shop_count, inserted_at) VALUES ('live', '{bucket}', 'iphone:1', {mean}, 3, "
            f"'{inserted_at}')")


@pytest.fixture
def catalogue(postgres):
    with postgres.connect() as conn:
        conn.execute("INSERT INTO iphone (id, name) VALUES (1, 'iPhone 16 Pro 256GB')")
    return postgres


def _means(client: TestClient, url: str = URL) -> list[float]:
    res = client.get(url)
    assert res.status_code == 200, res.text
    return [r["mean"] for r in res.json()["results"]]


def _hits(client: TestClient) -> int:
    """Requests answered without reading ClickHouse: from a kept page or body, or from the
    month slices in memory."""
    health = client.get("/healthz").json()
    return health["cache"]["hits"] + (health["memory"] or {}).get("served", 0)


def _body_hits(client: TestClient) -> int:
    """Requests a kept body answered before routing."""
    return client.get("/healthz").json()["cache"]["body_hits"]


def validated(model: type, payload: dict) -> bytes:
    """What FastAPI sends for `response_model=Page[model]`: its validation, then its
    serializer with its defaults."""
    adapter = TypeAdapter(Page[model])
    return adapter.dump_json(adapter.validate_python(payload, from_attributes=True),
                             by_alias=True)


def test_a_body_is_the_bytes_fastapi_sends_for_the_response_model():
    payload = {"count": 3, "next": "http://x/api/overall-bars/?limit=1&offset=1",
               "previous": None, "results": [
                   {"bucket": "2025-10-01T09:00:00+09:00", "iphone": 1,
                    "iphone_name": "iPhone 16 Pro «256 GB» \"x\"\n", "mean": 1e16,
                    "median": 0.1, "std": None, "shop_count": 20, "dispersion": -0.0,
                    "is_final": True, "updated_at": "2025-12-01T00:00:00+09:00"},
                   {"bucket": "2025-10-01T09:15:00+09:00", "iphone": 1, "iphone_name": None,
                    "mean": 123456.789, "median": 5.0, "std": 1.5e-7, "shop_count": 1,
                    "dispersion": float("nan"), "is_final": False,
                    "updated_at": "2025-12-01T00:00:00+09:00"}]}
    app = FastAPI()

    @app.get("/page", response_model=Page[OverallBar])
    def page() -> dict:
        return payload

    with TestClient(app) as client:
        assert client.get("/page").content == encode(payload) == validated(OverallBar, payload)


@pytest.mark.parametrize(("url", "model"), [
    ("/api/overall-bars/?iphone=1,2&limit=50", OverallBar),
    ("/api/overall-bars/?ordering=-std&limit=40&offset=7", OverallBar),
    ("/api/cohort-bars/?limit=30", CohortBar),
    ("/api/features/?scope=iphone:1&name=shop_count,mean,n_models&limit=60", FeatureValue),
    ("/api/features/?scope=cohort:*&limit=60", FeatureValue),
    ("/api/purchasing-time-analyses/?limit=80", PurchasingTimeAnalysis),
])
def test_every_price_body_is_what_validating_the_page_against_its_model_would_send(
        client, url, model):
    """Bodies skip the validation pass, so every value must already be of its field's type
    (an integral float sent as `5` where validation sends `5.0` would fail here)."""
    for _ in range(2):  # built, then kept
        res = client.get(url)
        assert res.status_code == 200, res.text
        assert res.json()["results"]
        assert res.content == validated(model, res.json())


def test_a_write_while_the_engine_is_held_is_seen_by_the_next_request(clickhouse, catalogue):
    if not is_embedded(clickhouse.dsn):
        pytest.skip("holding applies to the embedded engine")
    with clickhouse.client() as client:
        client.command(_insert(clickhouse, 100.0, "2025-12-01 00:00:00"))
    app = create_app(clickhouse, catalogue, hold_s=30)
    with TestClient(app) as client:
        hits = _hits(client)
        assert _means(client) == _means(client) == [100.0]
        assert _hits(client) == hits + 1  # the second was answered from what is kept
        writer = subprocess.Popen([sys.executable, "-c", WRITER, clickhouse.dsn,
                                   clickhouse.database,
                                   _insert(clickhouse, 200.0, "2025-12-02 00:00:00")])
        while writer.poll() is None:  # a polling frontend keeps asking while the run waits
            _means(client)
            time.sleep(0.05)
        assert writer.returncode == 0
        assert _means(client) == [200.0]


def test_without_a_hold_a_write_is_seen_within_the_version_ttl(clickhouse, catalogue):
    """A ClickHouse server's case (parts version), exercised on chdb opened per request."""
    with clickhouse.client() as client:
        client.command(_insert(clickhouse, 100.0, "2025-12-01 00:00:00"))
    app = create_app(clickhouse, catalogue, hold_s=0, cache_ttl_s=0.2)
    with TestClient(app) as client:
        hits = _hits(client)
        assert _means(client) == _means(client) == [100.0]
        assert _hits(client) == hits + 1
        with clickhouse.client() as ch:
            ch.command(_insert(clickhouse, 200.0, "2025-12-02 00:00:00"))
        time.sleep(0.3)
        assert _means(client) == [200.0]


def test_a_kept_body_answers_with_the_routed_response_s_status_headers_and_bytes(
        clickhouse, catalogue):
    with clickhouse.client() as client:
        client.command(_insert(clickhouse, 100.0, "2025-12-01 00:00:00"))
    app = create_app(clickhouse, catalogue, hold_s=30)
    with TestClient(app) as client:
        client.get(URL)  # reads the catalogue names: bodies are kept from the next one on
        routed, hits = client.get(URL), _body_hits(client)
        kept = client.get(URL)
        assert _body_hits(client) == hits + 1
        assert (kept.status_code, kept.content) == (routed.status_code, routed.content)
        assert dict(kept.headers) == dict(routed.headers)
        other = client.get(URL.replace("limit=10", "limit=9"))  # another URL, another body
        assert other.status_code == 200 and _body_hits(client) == hits + 1


def test_a_renamed_iphone_shows_in_a_kept_page_once_the_names_are_read_again(
        clickhouse, catalogue):
    with clickhouse.client() as client:
        client.command(_insert(clickhouse, 100.0, "2025-12-01 00:00:00"))
    app = create_app(clickhouse, catalogue, hold_s=30, names_ttl_s=0.2)
    with TestClient(app) as client:
        assert client.get(URL).json()["results"][0]["iphone_name"] == "iPhone 16 Pro 256GB"
        with catalogue.connect() as conn:
            conn.execute("UPDATE iphone SET name = 'iPhone 16 Pro 256 GB' WHERE id = 1")
        time.sleep(0.3)
        names = [client.get(URL).json()["results"][0]["iphone_name"] for _ in range(3)]
        assert names == ["iPhone 16 Pro 256 GB"] * 3


def test_a_kept_body_is_not_served_once_a_bucket_in_it_turns_final(clickhouse, catalogue):
    """A bucket turns final 20 minutes after it starts (15-minute window + 5); a kept page
    must then say so, though no data changed."""
    start = datetime.now(TZ).replace(microsecond=0) - timedelta(minutes=20) \
        + timedelta(seconds=3)
    with clickhouse.client() as client:
        client.command(_insert(clickhouse, 100.0, "2025-12-01 00:00:00",
                               bucket=start.strftime("%Y-%m-%d %H:%M:%S")))
    url = (f"/api/overall-bars/?iphone=1&bucket__gte={start.date() - timedelta(days=1)}"
           f"&bucket__lte={start.date() + timedelta(days=1)}")
    app = create_app(clickhouse, catalogue, hold_s=30)
    with TestClient(app) as client:
        assert [r["is_final"] for r in client.get(url).json()["results"]] == [False]
        time.sleep(max(0.0, (start + timedelta(minutes=20)).timestamp() - time.time()) + 0.5)
        assert [r["is_final"] for r in client.get(url).json()["results"]] == [True]


def test_the_first_row_to_turn_final_bounds_how_long_a_body_is_kept():
    rows = [{"bucket": "2025-10-01T09:30:00+09:00", "is_final": False},
            {"bucket": "2025-10-01T09:15:00+09:00", "is_final": False},
            {"bucket": "2025-10-01T09:00:00+09:00", "is_final": True}]
    until = final_until(rows)
    assert until == datetime(2025, 10, 1, 9, 35, tzinfo=TZ).timestamp()
    assert final_until(rows[2:]) is None
    kept = EncodedPages(max_pages=2)
    kept.put("v1", "/a", b"{}", until)
    assert kept.get("v1", "/a", until - 1) == b"{}"
    assert kept.get("v2", "/a", until - 1) is None  # another version of the data
    assert kept.get("v1", "/a", until) is None


def test_an_answer_that_needs_a_store_is_built_in_the_thread_pool():
    loop_thread: list[int] = []
    built_in: list[int] = []

    def build() -> str:
        built_in.append(threading.get_ident())
        may_block()  # e.g. a page not in memory: ClickHouse must be read
        return "read"

    async def main() -> str:
        loop_thread.append(threading.get_ident())
        assert await inline_or_pooled(True, lambda: "memory", build) == "memory"
        return await inline_or_pooled(True, build, build)

    assert asyncio.run(main()) == "read"
    assert built_in[0] == loop_thread[0]  # tried on the loop, refused before any read
    assert built_in[1] != loop_thread[0]  # then built where blocking is fine
