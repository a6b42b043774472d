"""live_prices_sensor: new source rows (by id) → runs of `live` for the months they touch."""

from dagster import SensorResult, SkipReason, build_sensor_context

from kline_assets.prices.sensors import live_prices_sensor
from kline_assets_tests.support.prices import insert_records


def evaluate(postgres, instance, cursor=None):
    context = build_sensor_context(instance=instance, cursor=cursor,
                                   resources={"postgres": postgres})
    return live_prices_sensor(context)


def test_new_rows_request_their_months_and_register_live(catalog, instance):
    insert_records(catalog, [
        (1, 1, 10, 100_000, None, None, "2025-10-31 23:50:00"),
        (2, 1, 10, 100_000, None, None, "2025-11-01 00:10:00"),
    ])
    result = evaluate(catalog, instance)
    assert isinstance(result, SensorResult)
    assert sorted(r.partition_key for r in result.run_requests) == [
        "2025-10-01|live", "2025-11-01|live"]
    assert result.cursor == "2"
    assert [r.partition_keys for r in result.dynamic_partitions_requests] == [["live"]]


def test_nothing_new_is_skipped(catalog, instance):
    insert_records(catalog, [(1, 1, 10, 100_000, None, None, "2025-11-01 00:10:00")])
    assert isinstance(evaluate(catalog, instance, cursor="1"), SkipReason)


def test_a_late_record_reruns_the_month_it_belongs_to(catalog, instance):
    insert_records(catalog, [(1, 1, 10, 100_000, None, None, "2025-11-05 00:10:00")])
    insert_records(catalog, [(2, 2, 10, 99_000, None, None, "2025-10-31 23:59:00")])  # late
    result = evaluate(catalog, instance, cursor="1")
    assert [r.partition_key for r in result.run_requests] == ["2025-10-01|live"]
    assert result.cursor == "2"


def test_records_outside_the_partitions_are_counted_and_never_block_the_rest(catalog, instance):
    insert_records(catalog, [
        (1, 1, 10, 100_000, None, None, "2099-01-01 00:00:00"),  # a typo'd year
        (2, 1, 10, 100_000, None, None, "2024-06-01 00:00:00"),  # before the partitions
        (3, 1, 10, 100_000, None, None, "2025-11-01 00:10:00"),
    ])
    result = evaluate(catalog, instance)
    assert [r.partition_key for r in result.run_requests] == ["2025-11-01|live"]
    assert result.run_requests[0].tags["kline/records_outside_partitions"] == "2"
    assert result.cursor == "3"


def test_only_out_of_range_records_skip_with_a_reason_and_move_the_cursor(catalog, instance):
    insert_records(catalog, [(1, 1, 10, 100_000, None, None, "2099-01-01 00:00:00")])
    result = evaluate(catalog, instance)
    assert result.run_requests == [] and result.cursor == "1"
    assert "outside the price partitions" in result.skip_reason.skip_message


def test_an_unreachable_database_is_a_skip_naming_its_address(instance):
    from kline_assets.resources import PostgresResource

    down = PostgresResource(dsn="postgresql://postgres:secretpw@127.0.0.1:1/x",
                            connect_timeout_s=1)
    result = evaluate(down, instance)
    assert isinstance(result, SkipReason)
    assert "127.0.0.1:1" in result.skip_message and "secretpw" not in result.skip_message
