"""live_prices_sensor: new source rows (by id) → one run refreshing `live`: an incremental window
from the earliest bucket they change, or whole months when there is nothing to continue from
or the window is long. Real PostgreSQL and ClickHouse, Dagster's sensor test context."""

from dagster import DefaultSensorStatus, SensorResult, SkipReason, build_sensor_context, materialize
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from kline_assets.prices.assets import (
    ALL,
)
from kline_assets.prices.sensors import live_prices_sensor, live_refresh_enabled
from kline_assets.resources import ClickHouseResource, PostgresResource
from kline_assets_tests.support.prices import insert_records


def evaluate(postgres, clickhouse, instance, cursor=None):
    context = build_sensor_context(instance=instance, cursor=cursor,
                                   resources={"postgres": postgres, "clickhouse": clickhouse})
    return live_prices_sensor(context)


def window_of(request) -> tuple[str, str]:
    config = request.run_config["ops"]["refresh_live_window"]["config"]
    return config["window_start"], config["window_end"]


def live_through_nov_5_noon(price_resources, runs) -> None:
    """`live` materialized for 2025-11 with records of two shops up to 2025-11-05 12:05."""
    insert_records(price_resources["postgres"], [
        (1, 1, 10, 100_000, None, None, "2025-11-05 11:35:00"),
        (2, 1, 10, 100_000, None, None, "2025-11-05 11:50:00"),
        (3, 2, 10, 101_000, None, None, "2025-11-05 12:05:00"),
    ])
    assert materialize(ALL, selection=ALL[1:], partition_key="2025-11-01|live",
                       resources=price_resources, instance=runs).success


def test_nothing_new_is_skipped(catalog, clickhouse, instance):
    insert_records(catalog, [(1, 1, 10, 100_000, None, None, "2025-11-01 00:10:00")])
    result = evaluate(catalog, clickhouse, instance, cursor="1")
    assert isinstance(result, SkipReason) and "no new price records after id 1" in str(
        result.skip_message)


def test_new_records_ask_one_refresh_of_their_window(price_resources, runs):
    live_through_nov_5_noon(price_resources, runs)
    insert_records(price_resources["postgres"], [
        (4, 1, 10, 100_500, None, None, "2025-11-05 12:20:00"),
        (5, 3, 11, 150_000, None, None, "2025-11-05 12:31:00"),
    ])
    result = evaluate(price_resources["postgres"], price_resources["clickhouse"], runs, "3")
    [request] = result.run_requests
    assert request.job_name == "live_refresh"
    # From the bucket after the last one live holds (12:00) to the end of the month.
    assert window_of(request) == ("2025-11-05T12:15:00+09:00", "2025-12-01T00:00:00+09:00")
    assert request.run_key == "live:window:2025-11-05T12:15:00+09:00:5"
    assert result.cursor == "5"


def test_a_late_record_asks_the_earlier_window(price_resources, runs):
    live_through_nov_5_noon(price_resources, runs)
    insert_records(price_resources["postgres"], [
        (4, 3, 10, 99_000, None, None, "2025-11-05 11:58:00"),  # late: 11:45 bucket
    ])
    result = evaluate(price_resources["postgres"], price_resources["clickhouse"], runs, "3")
    [request] = result.run_requests
    assert window_of(request) == ("2025-11-05T11:45:00+09:00", "2025-12-01T00:00:00+09:00")


def test_a_long_or_old_window_recomputes_whole_months(price_resources, runs):
    live_through_nov_5_noon(price_resources, runs)
    insert_records(price_resources["postgres"], [
        (4, 3, 10, 99_000, None, None, "2025-10-20 08:00:00"),  # a late record of October
        (5, 1, 10, 100_000, None, None, "2025-11-05 12:30:00"),
    ])
    result = evaluate(price_resources["postgres"], price_resources["clickhouse"], runs, "3")
    [request] = result.run_requests
    assert request.job_name == "price_assets"
    assert request.tags[ASSET_PARTITION_RANGE_START_TAG] == "2025-10-01|live"
    assert request.tags[ASSET_PARTITION_RANGE_END_TAG] == "2025-11-01|live"


def test_nothing_to_continue_from_recomputes_the_month_and_registers_live(
        catalog, clickhouse, instance):
    insert_records(catalog, [
        (1, 1, 10, 100_000, None, None, "2025-10-31 23:50:00"),
        (2, 1, 10, 100_000, None, None, "2025-11-01 00:10:00"),
    ])
    result = evaluate(catalog, clickhouse, instance)
    assert isinstance(result, SensorResult)
    [request] = result.run_requests
    assert request.job_name == "price_assets"
    assert (request.tags[ASSET_PARTITION_RANGE_START_TAG],
            request.tags[ASSET_PARTITION_RANGE_END_TAG]) == ("2025-10-01|live", "2025-11-01|live")
    assert result.cursor == "2"
    assert [r.partition_keys for r in result.dynamic_partitions_requests] == [["live"]]


def test_records_outside_the_partitions_are_counted_and_never_block_the_rest(
        catalog, clickhouse, instance):
    insert_records(catalog, [
        (1, 1, 10, 100_000, None, None, "2099-01-01 00:00:00"),  # a typo'd year
        (2, 1, 10, 100_000, None, None, "2024-06-01 00:00:00"),  # before the partitions
        (3, 1, 10, 100_000, None, None, "2025-11-01 00:10:00"),
    ])
    result = evaluate(catalog, clickhouse, instance)
    [request] = result.run_requests
    assert request.partition_key == "2025-11-01|live"
    assert request.tags["kline/records_outside_partitions"] == "2"
    assert result.cursor == "3"


def test_only_out_of_range_records_skip_with_a_reason_and_move_the_cursor(
        catalog, clickhouse, instance):
    insert_records(catalog, [(1, 1, 10, 100_000, None, None, "2099-01-01 00:00:00")])
    result = evaluate(catalog, clickhouse, instance)
    assert result.run_requests == [] and result.cursor == "1"
    assert "outside the price partitions" in result.skip_reason.skip_message


def test_an_unreachable_postgres_is_a_skip_naming_its_address(clickhouse, instance):
    down = PostgresResource(dsn="postgresql://postgres:secretpw@127.0.0.1:1/x",
                            connect_timeout_s=1)
    result = evaluate(down, clickhouse, instance)
    assert isinstance(result, SkipReason)
    assert "127.0.0.1:1" in result.skip_message and "secretpw" not in result.skip_message


def test_an_unreachable_clickhouse_is_a_skip_naming_its_address(catalog, instance):
    insert_records(catalog, [(1, 1, 10, 100_000, None, None, "2025-11-01 00:10:00")])
    down = ClickHouseResource(dsn="http://default:secretpw@127.0.0.1:1/kline")
    result = evaluate(catalog, down, instance)
    assert isinstance(result, SkipReason)
    assert "ClickHouse" in result.skip_message and "127.0.0.1:1" in result.skip_message
    assert "secretpw" not in result.skip_message


def test_on_by_default_only_where_the_deployment_says_so():
    assert live_prices_sensor.default_status == DefaultSensorStatus.STOPPED  # tests: unset
    assert live_refresh_enabled({"KLINE_LIVE_REFRESH": "on"})
    assert not live_refresh_enabled({})
