"""Run ids and price partition keys: one set of rules, whole-string matches."""

import pytest

from kline_assets.lib.errors import InvalidRunIdError
from kline_assets.prices.partitions import (
    create_run,
    price_partition_key,
    require_registered,
    split_price_key,
    validate_run_id,
)


@pytest.mark.parametrize("run_id", ["live", "backfill_20251101_v3", "a" * 64])
def test_valid_run_ids(run_id):
    assert validate_run_id(run_id) == run_id


@pytest.mark.parametrize("run_id", ["abc\n", "Bad-Name", "", "a" * 65, "x|y", "x,y", "live "])
def test_malformed_run_ids_are_refused_whole(run_id):
    with pytest.raises(InvalidRunIdError, match="malformed run id"):
        validate_run_id(run_id)


def test_create_run_refuses_a_trailing_newline(instance):
    with pytest.raises(InvalidRunIdError):
        create_run(instance, "abc\n")
    assert instance.get_dynamic_partitions("run_id") == []


def test_keys_round_trip_in_dagsters_dimension_order():
    key = price_partition_key("live", "2025-10")
    assert str(key) == "2025-10-01|live"
    assert split_price_key("2025-10-01|live") == ("live", "2025-10-01")
    assert split_price_key(key) == ("live", "2025-10-01")


@pytest.mark.parametrize("key", ["2025-10-01", "2025-10abc|live", "2025-10-01|live\n"])
def test_malformed_keys_say_what_is_wrong(key):
    with pytest.raises(InvalidRunIdError, match="malformed"):
        split_price_key(key)


def test_an_unregistered_run_names_the_command_that_registers_it(instance):
    with pytest.raises(InvalidRunIdError, match="kline runs create nosuch"):
        require_registered(instance, "nosuch")
