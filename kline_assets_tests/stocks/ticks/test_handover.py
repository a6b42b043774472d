"""The nightly hand-over on real Redis and PostgreSQL: the archive lands before Redis is
cleared, a database failure leaves Redis untouched, the accuracy report finds exactly the
differences planted in the vendor's bars, and a non-trading day does nothing."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from dagster import AssetCheckSeverity, RunConfig, build_schedule_context, materialize

from kline_assets.cli import cli
from kline_assets.kernels.bars import Bars
from kline_assets.lib.errors import ServiceUnavailableError
from kline_assets.resources.postgres import PostgresResource
from kline_assets.resources.postgres_io import is_hypertable
from kline_assets.resources.redis import RedisResource
from kline_assets.stocks import STOCK_SYNTH_TABLE
from kline_assets.stocks.history import minute_bars
from kline_assets.stocks.ticks.assets import (
    ACCURACY_CHECK,
    INTEGRITY_CHECK,
    HandoverConfig,
    stock_1min_synth,
    stock_handover_nightly,
)
from kline_assets.stocks.ticks.consume import Consumer, ConsumerOptions
from kline_assets.stocks.ticks.handover import handover
from kline_assets.stocks.ticks.keys import LiveKeys
from kline_assets.stocks.ticks.live import day_keys, live_days, read_day
from kline_assets.stocks.ticks.publish import publish_file
from kline_assets_tests.support.calendar import package_ending
from kline_assets_tests.support.stocks import insert_bars
from kline_assets_tests.support.ticks import DAY, assert_same_bars, clean_bars, write_tick_file

KEYS = LiveKeys()
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def live_day(redis_client, tmp_path: Path) -> Bars:
    """The demo day consumed into Redis; returns the batch kernel's bars of it."""
    path = write_tick_file(tmp_path / "ticks.csv")
    publish_file(redis_client, path, "t:ticks")
    Consumer(redis_client, ConsumerOptions(stream="t:ticks", until_idle=0.2, block_ms=50,
                                           cumulative=True, volume_unit="lots")).run()
    return clean_bars(path)


def vendor_frame(bars: Bars) -> pd.DataFrame:
    return pd.DataFrame({"time": bars.frame.astype("datetime64[us]"),
                         "code": bars.symbol.astype(str), "name": "demo",
                         **{c: getattr(bars, c) for c in Bars.COLUMNS}})


def test_handover_archives_then_clears_redis(postgres, redis_client, live_day):
    keys_before = day_keys(redis_client, KEYS, DAY)
    assert keys_before

    report = handover(postgres, redis_client, KEYS, DAY)

    assert report.archived == len(live_day) == report.in_redis
    assert_same_bars(minute_bars(postgres, STOCK_SYNTH_TABLE, date(2025, 10, 9),
                                 date(2025, 10, 9)), live_day)
    assert report.deleted_keys == len(keys_before)
    assert day_keys(redis_client, KEYS, DAY) == [] and live_days(redis_client, KEYS) == []
    with postgres.connect() as conn:  # the vendors' table never receives synthesised bars
        assert conn.execute("SELECT count(*) FROM stock_1min_qfq").fetchone()[0] == 0
    # The demo's continuous trading stops at 14:57 and the closing call prints at 15:00.
    gaps = report.integrity.set_index("symbol")["gaps"]
    assert set(gaps) == {"14:58–14:59"} and report.gaps == 2 * len(gaps)
    assert report.accuracy is not None and report.accuracy.empty  # no vendor bars that day
    assert "has no bars of that day" in report.summary()
    assert redis_client.hget(KEYS.handover, "day") == DAY.encode()

    again = handover(postgres, redis_client, KEYS, DAY)  # nothing left in Redis: reports only
    assert (again.in_redis, again.archived, again.deleted_keys) == (0, 0, 0)
    assert again.gaps == report.gaps
    with postgres.connect() as conn:
        assert conn.execute(f"SELECT count(*) FROM {STOCK_SYNTH_TABLE}").fetchone()[0] == len(
            live_day)


def test_a_symbol_no_table_could_index_never_blocks_the_others(postgres, redis_client,
                                                             live_day):
    """A symbol that reached Redis some other way than the consumer (which refuses it)."""
    huge = "6" * 1_000_000
    redis_client.sadd(KEYS.symbols(DAY), huge)
    redis_client.hset(KEYS.bars(DAY, huge), "10:00", "10,10,10,10,100,1000")

    report = handover(postgres, redis_client, KEYS, DAY)

    assert report.archived == len(live_day) and report.refused_symbols == [huge]
    assert_same_bars(minute_bars(postgres, STOCK_SYNTH_TABLE, date(2025, 10, 9),
                                 date(2025, 10, 9)), live_day)
    assert "1 symbol(s) not archived" in report.summary()
    assert "(1,000,000 characters)" in report.summary()
    assert day_keys(redis_client, KEYS, DAY) == []
    assert redis_client.hget(KEYS.handover, "refused_symbols") == b"1"


def test_redis_is_cleared_only_once_the_archive_is_committed(postgres, redis_client, live_day,
                                                            monkeypatch):
    import kline_assets.stocks.ticks.handover as module

    seen = {}
    real = module.delete_day

    def delete_after_looking(client, keys, day):
        with postgres.connect() as other:  # another session sees only committed rows
            seen["committed"] = other.execute(
                f"SELECT count(*) FROM {STOCK_SYNTH_TABLE}").fetchone()[0]
        seen["keys"] = len(day_keys(client, keys, day))
        return real(client, keys, day)

    monkeypatch.setattr(module, "delete_day", delete_after_looking)
    handover(postgres, redis_client, KEYS, DAY)
    assert seen["committed"] == len(live_day) and seen["keys"] > 0


def test_late_ticks_of_a_handed_over_day_are_parked_not_restarted(postgres, redis_client,
                                                                  live_day):
    handover(postgres, redis_client, KEYS, DAY)
    redis_client.xadd("t:ticks", {"symbol": "600000.SH", "time": f"{DAY} 14:59:59",
                                  "price": "10", "volume": "1", "amount": "10"})
    stats = Consumer(redis_client, ConsumerOptions(stream="t:ticks", until_idle=0.2,
                                                   block_ms=50)).run()
    assert stats.malformed == 1
    [(_, fields)] = redis_client.xrange(KEYS.dead("t:ticks"))
    assert b"handed over already" in fields[b"reason"]
    assert day_keys(redis_client, KEYS, DAY) == [] and live_days(redis_client, KEYS) == []


def test_a_database_failure_leaves_redis_untouched(redis_client, live_day):
    before = {k: redis_client.dump(k) for k in day_keys(redis_client, KEYS, DAY)}
    down = PostgresResource(dsn="postgresql://postgres@127.0.0.1:1/nowhere", connect_timeout_s=1)
    with pytest.raises(ServiceUnavailableError, match=r"127\.0\.0\.1:1/nowhere"):
        handover(down, redis_client, KEYS, DAY)
    assert {k: redis_client.dump(k) for k in day_keys(redis_client, KEYS, DAY)} == before
    assert live_days(redis_client, KEYS) == [DAY]


def test_a_refused_archive_write_leaves_redis_untouched(postgres, redis_client, live_day):
    with postgres.connect() as conn:  # a table the archive cannot write into
        conn.execute(f"CREATE TABLE {STOCK_SYNTH_TABLE} (time timestamp NOT NULL, code text, "
                     "open double precision, high double precision, low double precision, "
                     "close double precision, volume double precision, amount double precision,"
                     " archived_at timestamptz DEFAULT now(), CHECK (volume < 0))")
    with pytest.raises(Exception, match="check constraint"):
        handover(postgres, redis_client, KEYS, DAY)
    assert_same_bars(read_day(redis_client, KEYS, DAY), live_day)
    with postgres.connect() as conn:
        assert conn.execute(f"SELECT count(*) FROM {STOCK_SYNTH_TABLE}").fetchone()[0] == 0


def test_accuracy_finds_the_planted_differences(postgres, redis_client, live_day):
    vendor = vendor_frame(live_day)
    a, b, c = sorted(vendor["code"].unique())
    rows_a = vendor.index[vendor["code"] == a]
    vendor.loc[rows_a[[10, 20]], "close"] += 0.01  # two closes off by a cent
    dropped = rows_a[30]  # a frame the vendor lacks: extra on our side
    vendor.loc[vendor.index[vendor["code"] == b][5], "volume"] += 100  # one volume off
    added = vendor.loc[[rows_a[-1]]].assign(time=pd.Timestamp(f"{DAY} 14:58"))  # we lack it
    vendor = pd.concat([vendor.drop(index=dropped), added], ignore_index=True)
    insert_bars(postgres, vendor)

    report = handover(postgres, redis_client, KEYS, DAY)

    acc = report.accuracy.set_index("symbol")
    n_a = int((live_day.symbol == a).sum())
    assert acc.loc[a, "frames"] == n_a + 1
    assert acc.loc[a, "exact"] == n_a - 3  # two closes, the frame only we have
    assert (acc.loc[a, "missing"], acc.loc[a, "extra"]) == (1, 1)
    assert acc.loc[a, "max_abs_close"] == pytest.approx(0.01)
    assert acc.loc[b, "exact"] == acc.loc[b, "frames"] - 1
    assert acc.loc[b, "max_abs_volume"] == 100 and acc.loc[b, "max_abs_close"] == 0
    assert acc.loc[c, "exact_share"] == 1.0 and acc.loc[c, "missing"] == 0
    assert report.exact_share == pytest.approx((acc["exact"].sum()) / acc["frames"].sum())


def test_the_asset_reports_and_warns_above_the_threshold(postgres, redis_url, redis_client,
                                                         live_day, instance):
    vendor = vendor_frame(live_day)
    vendor["close"] += 0.01  # every bar off: the accuracy check must warn
    insert_bars(postgres, vendor)
    result = materialize([stock_1min_synth], partition_key=DAY, instance=instance,
                         resources={"postgres": postgres, "redis": RedisResource(url=redis_url)},
                         run_config=RunConfig(ops={STOCK_SYNTH_TABLE: HandoverConfig(
                             threshold=0.05)}))
    assert result.success
    [mat] = result.asset_materializations_for_node(STOCK_SYNTH_TABLE)
    meta = mat.metadata
    assert meta["rows_archived"].value == len(live_day)
    assert meta["exact_share"].value == 0.0 and meta["missing_minutes"].value == 6
    assert "| symbol |" in meta["accuracy"].value
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks[ACCURACY_CHECK].passed
    assert checks[ACCURACY_CHECK].severity == AssetCheckSeverity.WARN
    assert not checks[INTEGRITY_CHECK].passed  # 14:58 and 14:59 missing for every symbol
    assert live_days(redis_client, KEYS) == []


def test_a_non_trading_day_does_nothing_and_says_so(postgres, redis_url, redis_client,
                                                    live_day, instance):
    holiday = "2025-10-01"  # National Day
    report = handover(postgres, redis_client, KEYS, holiday)
    assert not report.trading_day and "not an XSHG trading day" in report.summary()
    assert live_days(redis_client, KEYS) == [DAY]
    result = materialize([stock_1min_synth], partition_key=holiday, instance=instance,
                         resources={"postgres": postgres, "redis": RedisResource(url=redis_url)})
    [mat] = result.asset_materializations_for_node(STOCK_SYNTH_TABLE)
    assert mat.metadata["trading_day"].value is False
    assert "nothing to hand over" in mat.metadata["note"].value
    with postgres.connect() as conn:
        assert conn.execute("SELECT to_regclass('stock_1min_synth')").fetchone()[0] is None


def test_the_schedule_hands_over_the_day_that_just_ended_on_trading_days_only():
    after_thursday = build_schedule_context(
        scheduled_execution_time=datetime(2025, 10, 10, 2, 0, tzinfo=SHANGHAI))
    [request] = list(stock_handover_nightly(after_thursday))
    assert request.partition_key == "2025-10-09"
    after_holiday = build_schedule_context(
        scheduled_execution_time=datetime(2025, 10, 2, 2, 0, tzinfo=SHANGHAI))
    [skip] = list(stock_handover_nightly(after_holiday))
    assert "2025-10-01 is not an XSHG trading day" in skip.skip_message


def test_cli_handover(postgres, redis_url, redis_client, live_day):
    env = {"KLINE_REDIS_URL": redis_url, "KLINE_PG_DSN": postgres.dsn}
    result = CliRunner(env=env).invoke(cli, ["ticks", "handover", "--date", DAY,
                                             "--keep-redis"])
    assert result.exit_code == 0, result.output
    assert f"{len(live_day)} archived to stock_1min_synth" in result.output
    assert live_days(redis_client, KEYS) == [DAY]  # kept on request
    bad = CliRunner(env=env).invoke(cli, ["ticks", "handover", "--date", "2025-13-01"])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
    assert np.isfinite(live_day.close).all()


@pytest.mark.timescale
def test_with_timescaledb_the_archive_is_a_hypertable(timescale, redis_client, live_day):
    report = handover(timescale, redis_client, KEYS, DAY)
    assert report.archived == len(live_day)
    with timescale.connect() as conn:
        assert is_hypertable(conn, STOCK_SYNTH_TABLE)
    again = handover(timescale, redis_client, KEYS, DAY)  # idempotent on the hypertable too
    assert again.integrity.equals(report.integrity)


def test_a_provisional_day_says_so_in_the_hand_over_metadata(postgres, redis_url, instance,
                                                             tmp_path, monkeypatch):
    note = package_ending(monkeypatch, "2025-12-31", tmp_path / "closures.csv",
                          "year,2026\n2026-01-01,New Year's Day\n")
    resources = {"postgres": postgres, "redis": RedisResource(url=redis_url)}
    meta = {}
    for day in ("2025-12-31", "2026-01-01", "2026-01-05"):
        result = materialize([stock_1min_synth], partition_key=day, instance=instance,
                             resources=resources)
        [mat] = result.asset_materializations_for_node(STOCK_SYNTH_TABLE)
        meta[day] = {k: v.value for k, v in mat.metadata.items()}
    assert "calendar" not in meta["2025-12-31"] and meta["2025-12-31"]["trading_day"] is True
    assert meta["2026-01-01"]["trading_day"] is False  # the file's closure
    assert meta["2026-01-01"]["calendar"] == note == meta["2026-01-05"]["calendar"]
    assert meta["2026-01-05"]["trading_day"] is True


def test_cli_handover_with_a_malformed_dsn_is_one_line_without_the_password(redis_url):
    result = CliRunner(env={"KLINE_REDIS_URL": redis_url,
                            "KLINE_PG_DSN": "postgresql://postgres:sec ret@127.0.0.1:5432/x"}
                       ).invoke(cli, ["ticks", "handover", "--date", DAY])
    assert result.exit_code == 2
    assert len(result.output.splitlines()) == 1, result.output
    assert "malformed PostgreSQL DSN postgresql://postgres:***@127.0.0.1:5432/x" in result.output
    assert "sec ret" not in result.output
