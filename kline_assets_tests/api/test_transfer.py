"""`GET /api/vendor/status` and the `/transfer` page: a day of vendor bars ingested from a real
Redis stream into a real PostgreSQL (two symbols complete, one half a day, a correction and
rejections), read back as JSON, then shown in headless Chromium (24-hour times, no AM/PM)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kline_assets.api.app import create_app
from kline_assets.resources import ClickHouseResource, PostgresResource
from kline_assets.resources.redis import RedisResource
from kline_assets.stocks.vendor.ingest import IngestOptions, Ingestor
from kline_assets.stocks.vendor.keys import VendorKeys
from kline_assets.stocks.vendor.publish import publish_file
from kline_assets.stocks.vendor.store import ensure_schema
from kline_assets_tests.support.browser import chromium_page, serve
from kline_assets_tests.support.vendor import DAY, vendor_bars, write_vendor_csv

UNUSED_CLICKHOUSE = ClickHouseResource(dsn="http://127.0.0.1:1/unused")  # never read here
KEYS = VendorKeys("kline")


@pytest.fixture
def fed(postgres: PostgresResource, redis_url: str, tmp_path: Path) -> Iterator[tuple]:
    ensure_schema(postgres)
    client = RedisResource(url=redis_url).client()
    bars = vendor_bars()
    half = vendor_bars(codes=["300750.SZ"], periods=(1,)).head(120)
    write_vendor_csv(bars, tmp_path / "day.csv")
    write_vendor_csv(half, tmp_path / "half.csv")
    publish_file(client, tmp_path / "day.csv", KEYS.stream)
    publish_file(client, tmp_path / "half.csv", KEYS.stream)
    base = {"symbol": "600000.SH", "period": "1", "frame": f"{DAY}T10:00:00", "open": "10",
            "high": "10.5", "low": "9.5", "close": "10.2", "volume": "100", "amount": "1020"}
    client.xadd(KEYS.stream, base)                                  # a correction
    client.xadd(KEYS.stream, {**base, "frame": f"{DAY}T12:00:00"})  # outside_session
    client.xadd(KEYS.stream, {**base, "high": "9"})                 # high_low
    worker = Ingestor(client, postgres, IngestOptions(consumer="feed-1", until_idle=0.1,
                                                      block_ms=20, report_every=0.1), KEYS)
    worker.run()
    try:
        yield postgres, RedisResource(url=redis_url)
    finally:
        client.close()


def test_status_says_what_arrived(fed):
    postgres, live = fed
    with TestClient(create_app(UNUSED_CLICKHOUSE, postgres, redis=live)) as client:
        res = client.get("/api/vendor/status")
    assert res.status_code == 200, res.text
    s = res.json()
    assert s["stream"] == "kline:vendor:bars" and s["dead_letters"] == 2
    (group,) = s["groups"]
    assert group["group"] == "history" and group["backlog"] == 0
    assert group["inserted"] == 480 + 96 + 120 and group["corrections"] == 1
    assert group["rejected"] == {"outside_session": 1, "high_low": 1}
    assert [c["consumer"] for c in group["consumers"]] == ["feed-1"]
    assert group["consumers"][0]["pending"] == 0
    assert group["rate"] and all("bars_per_s" in p for p in group["rate"])
    assert s["day"] == {"day": DAY, "complete": 2, "symbols": 3, "bars_per_day": 240}
    assert s["symbols"] == 3
    assert s["last_frames"][0] == {"symbol": "300750.SZ", "frame": f"{DAY}T11:30:00"}
    (fix,) = s["recent_corrections"]
    assert fix["code"] == "600000.SH" and fix["close"] == 10.2


def test_redis_down_is_a_503_naming_it(postgres):
    down = RedisResource(url="redis://127.0.0.1:1/0")
    with TestClient(create_app(UNUSED_CLICKHOUSE, postgres, redis=down),
                    raise_server_exceptions=False) as client:
        res = client.get("/api/vendor/status")
    assert res.status_code == 503 and "Redis unreachable at redis://127.0.0.1:1/0" in res.text


@pytest.mark.slow
def test_the_transfer_page_shows_the_feed(fed, tmp_path):
    postgres, live = fed
    with serve(create_app(UNUSED_CLICKHOUSE, postgres, redis=live)) as url, \
            chromium_page(height=1000) as page:
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
        page.goto(url + "/transfer")
        page.wait_for_function("Number(document.body.dataset.refreshes) >= 1", timeout=20_000)
        assert page.locator("#status").get_attribute("class") != "error", \
            page.locator("#status").inner_text()
        assert page.locator("#complete").inner_text() == "2 of 3"
        assert page.locator("#corrections").inner_text() == "1"
        assert page.locator("#backlog").inner_text() == "0"
        assert page.locator("#rejected").inner_text() == "2 (2)"
        assert page.locator("#reasons tbody tr").count() == 2
        assert page.locator("#consumers tbody tr").first.locator("td").first.inner_text() == (
            "history / feed-1")
        first = page.locator("#frames tbody tr").first.locator("td")
        assert first.nth(0).inner_text() == "300750.SZ"
        assert first.nth(1).inner_text() == f"{DAY} 11:30"
        assert int(page.locator("#rate").get_attribute("data-points")) > 2
        body = page.locator("body").inner_text()
        assert not re.search(r"\b(AM|PM)\b", body)
        stamp = page.locator("#groups tbody tr").first.locator("td").last.inner_text()
        assert re.fullmatch(r"\d{4}-\d\d-\d\d [0-2]\d:[0-5]\d:[0-5]\d", stamp), stamp
        page.screenshot(path=str(tmp_path / "transfer.png"), full_page=True)
        # it keeps refreshing
        page.wait_for_function("Number(document.body.dataset.refreshes) >= 2", timeout=10_000)
        assert console == []
    assert (tmp_path / "transfer.png").stat().st_size > 10_000
