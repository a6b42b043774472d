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
