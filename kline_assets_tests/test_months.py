"""Month arithmetic: one helper for both domains' partitions and windows."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from kline_assets.lib.months import (
    MonthWindow,
    add_months,
    key_of_yyyymm,
    month_key,
    month_window,
    parse_month,
    yyyymm,
)


def test_add_months_crosses_years_both_ways_and_keeps_the_zone():
    tokyo = datetime(2025, 12, 1, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert add_months(tokyo, 1) == datetime(2026, 1, 1, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert add_months(datetime(2025, 1, 1), -1) == datetime(2024, 12, 1)
    assert add_months(datetime(2025, 1, 1), -13) == datetime(2023, 12, 1)


@pytest.mark.parametrize("text", ["2025-10", "2025-10-01"])
def test_parse_month_accepts_labels_and_partition_keys(text):
    assert parse_month(text) == datetime(2025, 10, 1)


@pytest.mark.parametrize("text", ["2025-10abc", "2025-13", "2025-10-02", "25-10", "", "2025/10"])
def test_parse_month_refuses_anything_else(text):
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_month(text)


def test_keys_labels_and_yyyymm_round_trip():
    assert month_key(datetime(2025, 3, 1)) == "2025-03-01"
    assert yyyymm(datetime(2025, 3, 1)) == 202503
    assert key_of_yyyymm(202503) == "2025-03-01"


def test_month_window_is_the_local_calendar_month():
    start, end = month_window("2025-10", "Asia/Tokyo")
    assert (start.isoformat(), end.isoformat()) == (
        "2025-10-01T00:00:00+09:00", "2025-11-01T00:00:00+09:00")


def test_month_window_of_months_splits_and_labels():
    window = MonthWindow.of_months("2025-11", "2026-01")
    assert window.months == 3 and window.label == "2025-11..2026-01"
    assert window.keys() == ["2025-11-01", "2025-12-01", "2026-01-01"]
    assert [w.label for w in window.split()] == ["2025-11", "2025-12", "2026-01"]


def test_a_reversed_window_says_which_bound_is_wrong():
    with pytest.raises(ValueError, match=r"first month \(2025-11\) is after the last \(2025-10\)"):
        MonthWindow.of_months("2025-11", "2025-10")
