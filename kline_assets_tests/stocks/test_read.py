"""The merged bar query across the vendor history, the synthesised archive and the live bars in
Redis: each bar once, from the preferred store, saying which; clear errors otherwise."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from kline_assets.lib.errors import ServiceUnavailableError
from kline_assets.resources.postgres import PostgresResource
from kline_assets.resources.redis import RedisResource
from kline_assets.stocks.read import BarsQueryError, UnknownSymbolError, bars
from kline_assets.stocks.ticks.handover import archive
from kline_assets.stocks.ticks.keys import LiveKeys
from kline_assets_tests.support.stocks import insert_bars, make_bars, session_minutes

CODE = "600000.SH"
VENDOR_DAY, ARCHIVED_DAY, LIVE_DAY, MIXED_DAY = "2025-10-09", "2025-10-10", "2025-10-13", \
    "2025-10-14"


@pytest.fixture
def live(redis_url: str) -> RedisResource:
    return RedisResource(url=redis_url)


def put_live(resource: RedisResource, frame: pd.DataFrame) -> None:
    """Bars into Redis the way the consumer keeps them (keys.LiveKeys)."""
    keys, client = LiveKeys(resource.key_prefix), resource.client()
    for (day, code), part in frame.groupby([frame.time.dt.strftime("%Y-%m-%d"), "code"]):
        client.hset(keys.bars(day, code), mapping={
            f"{t:%H:%M}": f"{o!r},{h!r},{lo!r},{c!r},{v!r},{a!r}" for t, o, h, lo, c, v, a in
            part[["time", "open", "high", "low", "close", "volume", "amount"]].itertuples(
                index=False)})
        client.sadd(keys.symbols(day), code)
        client.sadd(keys.days, day)


def put_archive(postgres: PostgresResource, frame: pd.DataFrame) -> None:
    from kline_assets.kernels.bars import Bars

    for day, part in frame.groupby(frame.time.dt.date):
        b = Bars(1, part.code.to_numpy(object), part.time.to_numpy("datetime64[s]"),
                 *(part[c].to_numpy(float) for c in Bars.COLUMNS))
        archive(postgres, day, b)


@pytest.fixture
def stores(postgres: PostgresResource, live: RedisResource) -> dict[str, pd.DataFrame]:
    """Vendor: day 1 and the morning of day 4 until 10:15; archive: days 1 and 2 (day 1 with
    other prices, which must lose to the vendor); Redis: days 2, 3 and 4 (day 2 was kept in
    Redis after its hand-over, so the archive wins)."""
    morning = session_minutes()[session_minutes() <= pd.Timedelta("10:15:00")]
    made = {
        "vendor": pd.concat([make_bars([CODE], [VENDOR_DAY], seed=1),
                             make_bars([CODE], [MIXED_DAY], seed=2, minutes=morning)]),
        "synth": make_bars([CODE], [VENDOR_DAY, ARCHIVED_DAY], seed=3, base=50),
        "live": make_bars([CODE], [ARCHIVED_DAY, LIVE_DAY, MIXED_DAY], seed=4, base=90),
    }
    insert_bars(postgres, made["vendor"])
    put_archive(postgres, made["synth"])
    put_live(live, made["live"])
    return made


def query(postgres, live, period=1, start=f"{VENDOR_DAY} 09:30", end=f"{MIXED_DAY} 15:00",
          symbol=CODE):
    return bars(symbol, period, start, end, postgres=postgres, redis=live)


def test_each_minute_once_from_the_preferred_store(postgres, live, stores):
    rows = pd.DataFrame(query(postgres, live))
    assert rows.frame.is_unique and rows.frame.is_monotonic_increasing
    rows["day"] = rows.frame.str[:10]
    assert len(rows) == 4 * 240
    by_day = rows.groupby("day").source.agg(lambda s: sorted(set(s)))
    assert by_day.to_dict() == {VENDOR_DAY: ["vendor"], ARCHIVED_DAY: ["synth"],
                                LIVE_DAY: ["live"], MIXED_DAY: ["live", "vendor"]}
    mixed = rows[rows.day == MIXED_DAY].set_index("frame").source
    assert mixed[f"{MIXED_DAY}T10:15:00+08:00"] == "vendor"
    assert mixed[f"{MIXED_DAY}T10:16:00+08:00"] == "live"
    # the values are the chosen store's own
    vendor = stores["vendor"].set_index("time")
    first = rows.iloc[0]
    assert first.frame == f"{VENDOR_DAY}T09:31:00+08:00"
    assert first.close == vendor.loc[pd.Timestamp(f"{VENDOR_DAY} 09:31"), "close"]
    synth = stores["synth"].set_index("time")
    at = rows.set_index("frame").loc[f"{ARCHIVED_DAY}T13:01:00+08:00"]
    assert at.close == pytest.approx(synth.loc[pd.Timestamp(f"{ARCHIVED_DAY} 13:01"), "close"])


def test_n_minute_bars_follow_one_convention_and_name_the_least_final_source(
        postgres, live, stores):
    rows = query(postgres, live, period=60, start=f"{VENDOR_DAY} 10:00")
    frames = [r["frame"][11:16] for r in rows]
    assert frames == ["10:30", "11:30", "14:00", "15:00"] * 4
    sources = [r["source"] for r in rows]
    assert sources == ["vendor"] * 4 + ["synth"] * 4 + ["live"] * 4 + ["live"] * 4
    # 09:31…10:30 of the mixed day: vendor until 10:15, live after — one bar, both stores
    block = rows[12]
    vendor = stores["vendor"]
    live_bars = stores["live"]
    part_v = vendor[(vendor.time > f"{MIXED_DAY} 09:30") & (vendor.time <= f"{MIXED_DAY} 10:30")]
    part_l = live_bars[(live_bars.time > f"{MIXED_DAY} 10:15")
                       & (live_bars.time <= f"{MIXED_DAY} 10:30")]
    assert block["open"] == part_v.open.iloc[0] and block["close"] == part_l.close.iloc[-1]
    assert block["volume"] == part_v.volume.sum() + part_l.volume.sum()
    assert block["high"] == max(part_v.high.max(), part_l.high.max())


def test_edges_are_whole_blocks_and_the_range_is_inclusive(postgres, live, stores):
    rows = query(postgres, live, period=30, start=f"{LIVE_DAY} 10:00", end=f"{LIVE_DAY} 11:00")
    assert [r["frame"] for r in rows] == [f"{LIVE_DAY}T10:00:00+08:00",
                                          f"{LIVE_DAY}T10:30:00+08:00",
                                          f"{LIVE_DAY}T11:00:00+08:00"]
    day = stores["live"][stores["live"].time.dt.strftime("%Y-%m-%d") == LIVE_DAY]
    first = day[(day.time > f"{LIVE_DAY} 09:30") & (day.time <= f"{LIVE_DAY} 10:00")]
    assert rows[0]["volume"] == first.volume.sum()


def test_clear_errors(postgres, live, stores):
    with pytest.raises(BarsQueryError, match="period must be one of 1, 5, 15, 30, 60"):
        query(postgres, live, period=7)
    with pytest.raises(BarsQueryError, match="is after end"):
        query(postgres, live, start=f"{MIXED_DAY} 10:00", end=f"{VENDOR_DAY} 10:00")
    with pytest.raises(BarsQueryError, match="not a date and time"):
        query(postgres, live, start="yesterday-ish")
    with pytest.raises(UnknownSymbolError, match=r"unknown symbol 'NOPE\.SH'"):
        query(postgres, live, symbol="NOPE.SH")
    assert query(postgres, live, start="2025-11-03 09:30", end="2025-11-03 15:00") == []
    with pytest.raises(ServiceUnavailableError, match=r"Redis unreachable at redis://127\.0\.0\.1:1/0"):
        bars(CODE, 1, f"{VENDOR_DAY} 09:30", f"{VENDOR_DAY} 15:00", postgres=postgres,
             redis=RedisResource(url="redis://127.0.0.1:1/0"))
    down = PostgresResource(dsn="postgresql://postgres@127.0.0.1:1/x", connect_timeout_s=1)
    with pytest.raises(ServiceUnavailableError,
                       match=r"PostgreSQL unreachable at 127\.0\.0\.1:1/x"):
        bars(CODE, 1, f"{VENDOR_DAY} 09:30", f"{VENDOR_DAY} 15:00", postgres=down, redis=live)


def test_offsets_are_converted_and_a_day_in_redis_is_read_whatever_today_is(postgres, live,
                                                                            stores):
    rows = query(postgres, live, period=5, start=f"{LIVE_DAY}T01:30:00Z",
                 end=f"{LIVE_DAY}T09:40:00+08:00")
    assert [r["frame"] for r in rows] == [f"{LIVE_DAY}T09:35:00+08:00",
                                          f"{LIVE_DAY}T09:40:00+08:00"]
    assert {r["source"] for r in rows} == {"live"}
    assert date.fromisoformat(LIVE_DAY) < date.today()
