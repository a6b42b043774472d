"""The vendor feed in Dagster: observations of the months a batch touched, the sensor that
refreshes those months' K-lines (the monthly K-line reflects a correction after the automation
runs, nobody launching anything by hand), the vendor-consistency check, and the nightly trim."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from dagster import (
    AssetKey,
    Definitions,
    Failure,
    build_schedule_context,
    build_sensor_context,
)

from kline_assets.resources.postgres_io import PostgresIOManager
from kline_assets.stocks.assets import stock_1min, stock_monthly_kline
from kline_assets.stocks.vendor.dagster import (
    CHECK,
    trim_stream,
    vendor_bars_match_kernel,
    vendor_history_sensor,
    vendor_monthly_refresh,
    vendor_stream_trim_nightly,
)
from kline_assets.stocks.vendor.events import MonthEvents
from kline_assets.stocks.vendor.ingest import IngestOptions, Ingestor
from kline_assets.stocks.vendor.keys import VendorKeys
from kline_assets.stocks.vendor.publish import publish_file
from kline_assets_tests.support.stocks import read_monthly
from kline_assets_tests.support.vendor import DAY

STREAM = "t:vendor"
KEYS = VendorKeys("t")
MONTH = "2025-10-01"


def num(value: float) -> str:
    return repr(float(value))


def ingest(client, postgres, instance) -> Ingestor:
    events = MonthEvents(instance, STREAM, "history", every=0)
    worker = Ingestor(client, postgres, IngestOptions(stream=STREAM, consumer="c1",
                                                      until_idle=0.1, block_ms=20,
                                                      report_every=3600), KEYS, events=events)
    worker.run()
    return worker


def automation_runs(instance, postgres, cursor: str | None) -> tuple[list, str | None]:
    """Evaluate the sensor as the daemon would, and run what it asks for."""
    context = build_sensor_context(instance=instance, cursor=cursor)
    requests = [r for r in vendor_history_sensor(context) if hasattr(r, "partition_key")]
    defs = Definitions(assets=[stock_1min, stock_monthly_kline],
                       asset_checks=[vendor_bars_match_kernel], jobs=[vendor_monthly_refresh],
                       resources={"postgres": postgres,
                                  "postgres_io_manager": PostgresIOManager(postgres=postgres)})
    job = defs.resolve_job_def("vendor_monthly_refresh")
    results = [job.execute_in_process(instance=instance, partition_key=r.partition_key,
                                      tags=r.tags) for r in requests]
    return list(zip(requests, results, strict=True)), context.cursor


def _check(result) -> object:
    (evaluation,) = [e for e in result.get_asset_check_evaluations()
                     if e.check_name == CHECK]
    return evaluation


def test_new_vendor_bars_refresh_their_month_by_automation(vendor_pg, redis_client, day_file,
                                                           day_bars, instance):
    publish_file(redis_client, day_file, STREAM)
    ingest(redis_client, vendor_pg, instance)
    obs = instance.fetch_observations(AssetKey("stock_1min"), limit=10).records
    assert [o.partition_key for o in obs] == [MONTH]
    meta = obs[0].asset_observation.metadata
    assert meta["rows"].value == len(day_bars) and meta["corrections"].value == 0

    runs, cursor = automation_runs(instance, vendor_pg, None)
    assert [r.partition_key for r, _ in runs] == [MONTH]
    assert all(res.success for _, res in runs)
    monthly = read_monthly(vendor_pg)
    one = day_bars[day_bars["period"] == 1]
    assert sorted(monthly["code"]) == sorted(one["code"].unique())
    row = monthly[monthly["code"] == "600000.SH"].iloc[0]
    assert row["high"] == pytest.approx(one[one["code"] == "600000.SH"]["high"].max())
    assert _check(runs[0][1]).passed  # the 5-minute bars are the kernel's of the 1-minute

    # The sensor launches nothing for what it saw already.
    again, cursor = automation_runs(instance, vendor_pg, cursor)
    assert again == []

    # A correction: a new high of the month on 600000.SH at 10:00, and a 5-minute bar of
    # 000001.SZ the vendor got wrong.
    bar = one[(one["code"] == "600000.SH") & (one["time"] == f"{DAY} 10:00")].iloc[0]
    redis_client.xadd(STREAM, {"symbol": "600000.SH", "period": "1", "frame": f"{DAY} 10:00",
                               "open": num(bar["open"]), "high": "99.5",
                               "low": num(bar["low"]), "close": num(bar["close"]),
                               "volume": num(bar["volume"]), "amount": num(bar["amount"])})
    five = day_bars[(day_bars["period"] == 5) & (day_bars["code"] == "000001.SZ")].iloc[3]
    redis_client.xadd(STREAM, {"symbol": "000001.SZ", "period": "5",
                               "frame": five["time"].strftime("%Y-%m-%d %H:%M"),
                               "open": num(five["open"]), "high": num(five["high"]),
                               "low": num(five["low"]), "close": num(five["close"]),
                               "volume": num(five["volume"] + 100),
                               "amount": num(five["amount"])})
    fixed = ingest(redis_client, vendor_pg, instance)
    assert fixed.stats.corrections == 2, fixed.stats
    runs, _ = automation_runs(instance, vendor_pg, cursor)
    assert [r.partition_key for r, _ in runs] == [MONTH]
    monthly = read_monthly(vendor_pg)
    assert monthly[monthly["code"] == "600000.SH"].iloc[0]["high"] == 99.5
    check = _check(runs[0][1])
    assert not check.passed and check.severity.value == "WARN"
    # The wrong 5-minute bar, and the vendor's 5-minute bar ending 10:00 of 600000.SH, which
    # the corrected 1-minute bar no longer agrees with.
    assert check.metadata["mismatches"].value == 2
    assert check.metadata["mismatches_by_symbol"].value == {"000001.SZ": 1, "600000.SH": 1}
    assert f"600000.SH | 5 | {DAY} 10:00 | values" in check.metadata["sample"].value
    assert "000001.SZ | 5 | " + five["time"].strftime("%Y-%m-%d %H:%M") in \
        check.metadata["sample"].value


def test_the_nightly_trim_waits_for_postgres_then_trims_what_is_older(vendor_pg, redis_client,
                                                                     day_file, instance):
    n, _ = publish_file(redis_client, day_file, STREAM)
    redis_client.xadd(STREAM, {"symbol": "600000.SH"}, id="9999999999999-0")  # a later day
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date()
    redis_client.xgroup_create(STREAM, "history", id="0")
    with pytest.raises(Failure, match=r"not read the entries|no ingest group"):
        trim_stream(vendor_pg, redis_client, STREAM, tomorrow)
    assert redis_client.xlen(STREAM) == n + 1
    ingest(redis_client, vendor_pg, None)
    result = trim_stream(vendor_pg, redis_client, STREAM, tomorrow)
    assert result["trimmed"] == n and result["left"] == 1
    assert redis_client.xrange(STREAM)[0][0] == b"9999999999999-0"


def test_the_trim_schedule_follows_trading_days():
    def at(text: str) -> list:
        when = datetime.fromisoformat(text)
        return list(vendor_stream_trim_nightly(build_schedule_context(
            scheduled_execution_time=when)))

    (request,) = at("2025-10-10T02:00:00+08:00")
    assert request.run_config["ops"]["trim_vendor_stream"]["config"]["day"] == "2025-10-09"
    (skip,) = at("2025-10-02T02:00:00+08:00")  # National Day
    assert "not an XSHG trading day" in skip.skip_message
    assert date.fromisoformat("2025-10-09")
