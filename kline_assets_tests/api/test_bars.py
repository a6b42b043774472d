"""`GET /api/bars/`, `GET /api/bars/status` and the `/bars` page: a demo day of ticks consumed
into Redis (live), the vendor's bars of the next day in PostgreSQL; the page in headless
Chromium draws the candlesticks with each bar's source and the consumer's status."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from kline_assets.api.app import create_app
from kline_assets.api.bars import CALENDAR_HEADER
from kline_assets.resources import ClickHouseResource, PostgresResource
from kline_assets.resources.redis import RedisResource
from kline_assets.stocks import sessions
from kline_assets.stocks.ticks.consume import Consumer, ConsumerOptions
from kline_assets.stocks.ticks.publish import publish_file
from kline_assets_tests.support.browser import chromium_page, serve
from kline_assets_tests.support.stocks import insert_bars, make_bars
from kline_assets_tests.support.ticks import DAY, write_tick_file

NEXT_DAY = "2025-10-10"
CODE = "000001.SZ"  # the first demo tick code
UNUSED_CLICKHOUSE = ClickHouseResource(dsn="http://127.0.0.1:1/unused")  # bars never read it


@pytest.fixture
def bar_stores(postgres: PostgresResource, tmp_path: Path, redis_url: str) -> Iterator[tuple]:
    client = redis.Redis.from_url(redis_url)
    try:
        publish_file(client, write_tick_file(tmp_path / "ticks.csv"), "t:ticks")
        Consumer(client, ConsumerOptions(stream="t:ticks", consumer="demo", until_idle=0.2,
                                         block_ms=50, cumulative=True,
                                         volume_unit="lots")).run()
        insert_bars(postgres, make_bars([CODE], [NEXT_DAY], seed=9))
        yield postgres, RedisResource(url=redis_url)
    finally:
        client.close()


@pytest.fixture
def client(bar_stores) -> Iterator[TestClient]:
    postgres, live = bar_stores
    app = create_app(UNUSED_CLICKHOUSE, postgres, redis=live)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_bars_across_live_and_vendor_days(client):
    res = client.get("/api/bars/", params={"symbol": CODE, "start": f"{DAY}T12:00",
                                           "period": 60})
    assert res.status_code == 200, res.text
    body = res.json()
    frames = [(r["frame"], r["source"]) for r in body["results"]]
    assert frames == [(f"{DAY}T14:00:00+08:00", "live"), (f"{DAY}T15:00:00+08:00", "live"),
                      (f"{NEXT_DAY}T10:30:00+08:00", "vendor"),
                      (f"{NEXT_DAY}T11:30:00+08:00", "vendor")]  # 24 hours from 12:00
    assert body["count"] == 4 and body["next"] is None
    one = client.get("/api/bars/", params={"symbol": CODE, "start": f"{DAY}T09:00",
                                           "end": f"{DAY}T15:00", "limit": 100}).json()
    assert one["count"] == 238 and len(one["results"]) == 100 and one["next"]
    assert set(one["results"][0]) == {"symbol", "period", "frame", "open", "high", "low",
                                      "close", "volume", "amount", "source"}


@pytest.mark.parametrize(("params", "status", "text"), [
    ({"period": 7}, 400, "period must be one of"),
    ({"symbol": "NOPE.SH"}, 404, "unknown symbol"),
    ({"start": "not a time"}, 400, "not a date and time"),
    ({"end": f"{DAY}T08:00"}, 400, "is after end"),
    ({"end": "2025-12-31T00:00"}, 400, "at most 31 days"),
    ({"start": "9999-12-31T23:00"}, 400, ""),
    ({"start": "-1"}, 400, "start '-1' is outside 2000-01-01…2099-12-31"),
    ({"end": "-1"}, 400, "end '-1' is outside 2000-01-01…2099-12-31"),
    ({"start": "1999-12-31T09:00"}, 400, "is outside 2000-01-01…2099-12-31"),
])
def test_clear_errors(client, params, status, text):
    query = {"symbol": CODE, "start": f"{DAY}T09:00", **params}
    res = client.get("/api/bars/", params=query)
    assert res.status_code == status, res.text
    assert text in res.json()["detail"]


def test_redis_down_is_a_503_naming_it(bar_stores):
    postgres, _ = bar_stores
    down = RedisResource(url="redis://:s3cret@127.0.0.1:1/0")
    with TestClient(create_app(UNUSED_CLICKHOUSE, postgres, redis=down),
                    raise_server_exceptions=False) as c:
        res = c.get("/api/bars/", params={"symbol": CODE, "start": f"{DAY}T09:00"})
        health = c.get("/healthz")
    assert res.status_code == 503
    assert res.json()["store"] == "Redis" and "s3cret" not in res.text
    assert "127.0.0.1:1" in res.json()["address"]
    redis_health = {s["store"]: s for s in health.json()["stores"]}["redis"]
    assert health.status_code == 503 and redis_health["ok"] is False
    assert redis_health["address"] == "redis://:***@127.0.0.1:1/0"


def test_status(client):
    body = client.get("/api/bars/status").json()
    [consumer] = body["consumers"]
    assert consumer["consumer"] == "demo" and int(consumer["ticks"]) > 12_000
    assert body["live_days"] == [DAY] and CODE in body["symbols"]


# ---------------------------------------------------------------- the page in Chromium


@pytest.fixture
def served(bar_stores) -> Iterator[str]:
    postgres, live = bar_stores
    with serve(create_app(UNUSED_CLICKHOUSE, postgres, redis=live)) as url:
        yield url


@pytest.fixture
def page(served):
    with chromium_page(height=1100) as pg:
        yield pg


def colours(page, canvas: str) -> dict[str, int]:
    """Pixels of a canvas in the page's red (up), green (down) and source colours."""
    return page.evaluate("""(id) => {
        const c = document.getElementById(id);
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const want = {up: [224, 49, 49], down: [47, 158, 68], live: [240, 140, 0],
                      vendor: [134, 142, 150]};
        const n = {up: 0, down: 0, live: 0, vendor: 0};
        for (let i = 0; i < d.length; i += 4) {
            for (const [k, [r, g, b]] of Object.entries(want)) {
                if (d[i + 3] > 200 && Math.abs(d[i] - r) < 8 && Math.abs(d[i + 1] - g) < 8
                    && Math.abs(d[i + 2] - b) < 8) n[k]++;
            }
        }
        return n;
    }""", canvas)


@pytest.mark.slow
def test_the_page_draws_a_demo_day(page, served, tmp_path):
    page.goto(served + "/bars")
    page.wait_for_function("document.body.dataset.rows > 0", timeout=20_000)
    # Defaults: the latest day in Redis and its first symbol, 24 hours from 09:00; the
    # symbol field offers every symbol the stores hold.
    assert page.locator("#symbol").input_value() == CODE
    offered = page.eval_on_selector_all("#symbols option", "os => os.map(o => o.value)")
    assert CODE in offered and offered == sorted(offered)
    assert page.locator("#from-date").input_value() == DAY
    assert int(page.evaluate("document.body.dataset.rows")) == 238
    assert page.evaluate("document.body.dataset.sources") == "live"
    assert int(page.locator("#chart").get_attribute("data-points")) == 238
    ink = colours(page, "chart")
    assert ink["up"] > 200 and ink["down"] > 200 and ink["live"] > 200, ink
    assert colours(page, "volume")["up"] > 200
    assert page.locator("#rows tbody tr").count() == 238
    assert page.locator("#rows tbody tr").first.locator("td").last.inner_text() == "live"
    consumer = page.locator("#consumer tbody tr").first.inner_text()
    assert "demo" in consumer and "t:ticks / bars" in consumer
    page.screenshot(path=str(tmp_path / "live-day.png"), full_page=True)

    # 60-minute bars from noon for 24 hours: the live afternoon and the vendor's morning.
    page.select_option("#period", "60")
    page.fill("#from-time", "12:00")
    page.click("#show")
    page.wait_for_function("document.body.dataset.rows == 4", timeout=20_000)
    assert page.evaluate("document.body.dataset.sources") == "live, vendor"
    ink = colours(page, "chart")
    assert ink["live"] > 20 and ink["vendor"] > 20, ink
    cells = page.locator("#rows tbody tr").first.locator("td")
    assert cells.first.inner_text() == f"{NEXT_DAY} 11:30"
    assert cells.last.inner_text() == "vendor"
    page.screenshot(path=str(tmp_path / "mixed.png"), full_page=True)
    assert (tmp_path / "live-day.png").stat().st_size > 10_000

    # An unknown symbol says so instead of drawing.
    page.fill("#symbol", "NOPE.SH")
    page.click("#show")
    page.wait_for_function("document.body.dataset.rows == 0", timeout=20_000)
    assert "unknown symbol" in page.locator("#status").inner_text()


def test_a_range_of_provisional_days_says_so_in_a_header(postgres, monkeypatch, redis_url):
    """The page keeps its JSON shape; a header says the days come from the closures file."""
    monkeypatch.delenv("KLINE_XSHG_CLOSURES", raising=False)
    insert_bars(postgres, make_bars([CODE], ["2026-12-31", "2027-01-04"], seed=3))
    quiet = RedisResource(url=redis_url)  # read only: nothing lives in 2026-12 or 2027 there
    with TestClient(create_app(UNUSED_CLICKHOUSE, postgres, redis=quiet),
                    raise_server_exceptions=False) as c:
        new = c.get("/api/bars/", params={"symbol": CODE, "start": "2027-01-04T09:00",
                                          "period": 60})
        old = c.get("/api/bars/", params={"symbol": CODE, "start": "2026-12-31T09:00",
                                          "end": "2026-12-31T15:00", "period": 60})
    assert new.status_code == 200 and new.json()["count"] == 4, new.text
    assert set(new.json()) == {"count", "next", "previous", "results"}
    assert new.headers[CALENDAR_HEADER] == (
        f"provisional (closures file {sessions.DEFAULT_CLOSURES})")
    assert old.status_code == 200 and old.json()["count"] == 4
    assert CALENDAR_HEADER not in old.headers


@pytest.mark.slow
def test_the_page_says_when_its_days_are_provisional(postgres, monkeypatch, redis_url):
    """The /bars page shows the header's note under the form, beside the bars it drew."""
    monkeypatch.delenv("KLINE_XSHG_CLOSURES", raising=False)
    insert_bars(postgres, make_bars([CODE], ["2027-01-04"], seed=3))
    quiet = RedisResource(url=redis_url)  # read only: nothing lives in 2027 there
    with serve(create_app(UNUSED_CLICKHOUSE, postgres, redis=quiet)) as url, \
            chromium_page() as pg:
        pg.goto(f"{url}/bars?symbol={CODE}&day=2027-01-04&period=60")
        pg.wait_for_function("document.body.dataset.rows > 0", timeout=20_000)
        status = pg.locator("#status").inner_text()
        assert pg.evaluate("document.body.dataset.calendar") == (
            f"provisional (closures file {sessions.DEFAULT_CLOSURES})")
        assert "calendar: provisional (closures file" in status, status


def test_symbols_lists_what_each_store_holds_with_its_last_day(client, bar_stores):
    postgres, _ = bar_stores
    insert_bars(postgres, make_bars(["688981.SH"], ["2025-10-09", NEXT_DAY], seed=3))
    res = client.get("/api/bars/symbols")
    assert res.status_code == 200, res.text
    known = {k["symbol"]: k for k in res.json()}
    assert known[CODE] == {"symbol": CODE, "sources": ["vendor", "live"], "last_day": NEXT_DAY}
    assert known["688981.SH"] == {"symbol": "688981.SH", "sources": ["vendor"],
                                  "last_day": NEXT_DAY}
    assert list(known) == sorted(known)
    only = client.get("/api/bars/symbols", params={"prefix": "6889"}).json()
    assert [k["symbol"] for k in only] == ["688981.SH"]
    assert len(client.get("/api/bars/symbols", params={"limit": 1}).json()) == 1
    assert client.get("/api/bars/symbols", params={"prefix": "'; drop"}).status_code == 400


@pytest.mark.slow
def test_without_live_bars_the_page_opens_on_a_vendor_symbol_and_day(postgres, redis_url):
    insert_bars(postgres, make_bars(["600000.SH"], [NEXT_DAY], seed=3))
    app = create_app(UNUSED_CLICKHOUSE, postgres, redis=RedisResource(url=redis_url))
    with serve(app) as url, chromium_page() as page:
        page.goto(url + "/bars")
        page.wait_for_function("document.body.dataset.rows > 0", timeout=20_000)
        assert page.locator("#symbol").input_value() == "600000.SH"
        assert page.locator("#from-date").input_value() == NEXT_DAY
        assert page.evaluate("document.body.dataset.sources") == "vendor"
