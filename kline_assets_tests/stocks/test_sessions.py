"""The XSHG calendar as the stock domain uses it: holidays, make-up Saturdays, the schedule, and
the years beyond exchange-calendars that come from the operators' closures file."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from dagster import AssetCheckResult, AssetCheckSeverity, SkipReason, build_schedule_context

from kline_assets.lib.errors import CalendarRangeError, ClosuresFileError
from kline_assets.stocks import sessions
from kline_assets.stocks.checks import calendar_coverage
from kline_assets.stocks.schedules import stock_current_month

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_known_xshg_holidays_are_pinned() -> None:
    national_day = pd.date_range("2025-10-01", "2025-10-08")
    assert not any(sessions.is_trading_day(d) for d in national_day)
    assert not sessions.is_trading_day("2025-10-11")  # a make-up workday, not a session
    assert sessions.is_trading_day("2025-10-09")
    assert sessions.previous_trading_day("2025-10-09") == pd.Timestamp("2025-09-30")
    days = sessions.trading_days("2025-09-29", "2025-10-12")
    assert [d.strftime("%m-%d") for d in days] == ["09-29", "09-30", "10-09", "10-10"]


def test_in_session_refuses_holiday_bars_and_off_hours() -> None:
    times = np.array(["2025-10-09T09:30", "2025-10-09T11:30", "2025-10-09T12:00",
                      "2025-10-09T15:00", "2025-10-09T15:01", "2025-10-08T10:00",
                      "2025-10-11T10:00"], dtype="datetime64[us]")
    assert sessions.in_session(times).tolist() == [True, True, False, True, False, False, False]
    assert sessions.in_session(times, check_day=False)[-2:].tolist() == [True, True]


def test_the_schedule_launches_nothing_on_an_exchange_holiday() -> None:
    holiday = build_schedule_context(
        scheduled_execution_time=datetime(2025, 10, 3, 16, 30, tzinfo=SHANGHAI))
    [skip] = list(stock_current_month(holiday))
    assert isinstance(skip, SkipReason)

    # the first trading day after National Day also re-runs September (its last trading day)
    after = build_schedule_context(
        scheduled_execution_time=datetime(2025, 10, 9, 16, 30, tzinfo=SHANGHAI))
    assert [r.partition_key for r in stock_current_month(after)] == ["2025-09-01", "2025-10-01"]


# ---------------------------------------------------------------- beyond the package: the file

PACKAGE_LAST = pd.Timestamp("2026-12-31")  # exchange-calendars 4.13 knows XSHG to here


def closures_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str) -> Path:
    """A closures file of the test's own, in use through KLINE_XSHG_CLOSURES."""
    path = tmp_path / "closures.csv"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv(sessions.CLOSURES_ENV, str(path))
    return path


@pytest.fixture
def shipped(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The closures file shipped with the package, whatever the environment says."""
    monkeypatch.delenv(sessions.CLOSURES_ENV, raising=False)
    return sessions.DEFAULT_CLOSURES


def test_2027_trades_on_weekdays_except_the_shipped_closures(shipped: Path) -> None:
    assert sessions.package_range()[1] == PACKAGE_LAST
    assert sessions.is_trading_day("2027-01-04")
    assert not sessions.is_trading_day("2027-01-01")  # New Year's Day
    assert not sessions.is_trading_day("2027-01-02") and not sessions.is_trading_day("2027-01-03")
    assert sessions.previous_trading_day("2027-01-04") == PACKAGE_LAST
    assert sessions.previous_trading_day("2027-01-05") == pd.Timestamp("2027-01-04")
    days = sessions.trading_days("2026-12-28", "2027-01-08")
    assert [d.strftime("%Y-%m-%d") for d in days] == [
        "2026-12-28", "2026-12-29", "2026-12-30", "2026-12-31",
        "2027-01-04", "2027-01-05", "2027-01-06", "2027-01-07", "2027-01-08"]
    times = np.array(["2026-12-31T10:00", "2027-01-01T10:00", "2027-01-04T09:30",
                      "2027-01-04T12:00", "2027-01-04T15:00", "2027-01-09T10:00"],
                     dtype="datetime64[us]")
    assert sessions.trading_day_mask(times).tolist() == [True, False, True, True, True, False]
    assert sessions.in_session(times).tolist() == [True, False, True, False, True, False]


def test_a_year_neither_the_package_nor_the_file_covers_names_the_file_and_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    path = closures_file(monkeypatch, tmp_path, "year,2027\n2027-01-01,New Year\n"
                                                "year,2029\n")
    for ask in (lambda: sessions.trading_days("2027-12-27", "2028-01-05"),
                lambda: sessions.is_trading_day("2028-01-03"),
                lambda: sessions.trading_day_mask(np.array(["2028-01-03"], "datetime64[D]")),
                lambda: sessions.previous_trading_day("2029-01-01")):  # 2028 in between
        with pytest.raises(CalendarRangeError) as err:
            ask()
        message = str(err.value)
        assert str(path) in message and sessions.CLOSURES_ENV in message
        assert "2028" in message and "'year,2028'" in message
    assert sessions.is_trading_day("2029-01-02")  # 2029 is declared: weekdays trade
    assert sessions.previous_trading_day("2027-12-31") == pd.Timestamp("2027-12-30")


@pytest.mark.parametrize(("text", "line", "says"), [
    ("year,2027\n2027-02-30,Spring\n", 2, "2027-02-30 is not a date"),
    ("# closures\nyear,2027\nFeb 8 2027,Spring\n", 3, "expected 'year,YYYY' or 'YYYY-MM-DD"),
    ("year,27\n", 1, "expected 'year,YYYY'"),
    ("year,2027\n\n2027-01-02,a Saturday\n", 3, "is a Saturday: weekends are never sessions"),
    ("year,2027\n2027-01-01,New Year\n2027-01-01,again\n", 3, "listed twice (first on line 2)"),
    ("year,2027\nyear,2027\n", 2, "declared twice (first on line 1)"),
    ("year,2027\n2028-01-03,not declared\n", 2, "add a line 'year,2028'"),
])
def test_a_malformed_closures_file_names_file_and_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str, line: int, says: str,
) -> None:
    path = closures_file(monkeypatch, tmp_path, text)
    with pytest.raises(ClosuresFileError) as err:
        sessions.is_trading_day("2027-01-04")
    assert f"{path}:{line}: " in str(err.value) and says in str(err.value)
    assert isinstance(err.value, CalendarRangeError)  # callers that park such days do so
    assert sessions.is_trading_day("2026-12-31")  # the package's days never read the file


def test_a_missing_closures_file_is_named_with_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.setenv(sessions.CLOSURES_ENV, str(tmp_path / "nope.csv"))
    with pytest.raises(ClosuresFileError, match=r"nope\.csv.*named by KLINE_XSHG_CLOSURES"):
        sessions.trading_days("2027-01-04", "2027-01-08")


def test_closures_within_the_package_range_are_ignored_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    closures_file(monkeypatch, tmp_path, "year,2026\n2026-12-30,left over\nyear,2027\n")
    assert sessions.is_trading_day("2026-12-30")  # the package decides its own range
    status = sessions.calendar_status("2026-12-02", "2027-01-01")
    assert status.covered and status.provisional and status.file_years == (2026, 2027)
    assert [i.split(": ", 1)[0][-2:] for i in status.ignored] == [":1", ":2"]
    assert all("the package decides it" in i for i in status.ignored)


def test_an_edited_closures_file_is_read_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    path = closures_file(monkeypatch, tmp_path, "year,2027\n")
    assert sessions.is_trading_day("2027-02-08")
    path.write_text("year,2027\n2027-02-08,Spring Festival\n", encoding="utf-8")
    assert not sessions.is_trading_day("2027-02-08")


def test_provisional_days_are_those_the_file_decides(shipped: Path) -> None:
    assert not sessions.is_provisional("2026-12-31") and sessions.is_provisional("2027-01-04")
    assert sessions.is_provisional(datetime(2027, 1, 1, 0, 30, tzinfo=SHANGHAI))
    assert not sessions.is_provisional(datetime(2026, 12, 31, 15, 59, tzinfo=ZoneInfo("UTC")))
    days = sessions.provisional_days("2026-12-30", "2027-01-02")
    assert [d.strftime("%m-%d") for d in days] == ["01-01", "01-02"]
    assert len(sessions.provisional_days("2026-01-01", "2026-12-31")) == 0
    note = f"provisional (closures file {shipped})"
    assert sessions.calendar_metadata(datetime(2026, 12, 1), datetime(2027, 1, 1)) == {}
    assert sessions.calendar_metadata(datetime(2027, 1, 1), datetime(2027, 2, 1)) == {
        "calendar": note}
    assert sessions.provisional_note(date(2026, 12, 31), date(9999, 1, 1)) == note


def test_the_calendar_check_passes_provisionally_on_the_file_and_warns_beyond_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    path = closures_file(monkeypatch, tmp_path, "year,2027\n2027-01-01,New Year's Day\n")

    def on(day: str) -> AssetCheckResult:
        return calendar_coverage(datetime.fromisoformat(f"{day}T09:00").replace(tzinfo=SHANGHAI))

    package = on("2026-11-01")  # 11-01…11-30: the package alone
    assert package.passed and package.metadata["calendar"].value.startswith("exchange-calendars")
    provisional = on("2026-12-15")  # …2027-01-13: relies on the file
    assert provisional.passed
    assert provisional.metadata["calendar"].value == f"provisional (closures file {path})"
    assert provisional.metadata["window"].value == "2026-12-15..2027-01-13"
    beyond = on("2027-12-15")  # …2028-01-13: 2028 is in neither
    assert not beyond.passed and beyond.severity == AssetCheckSeverity.WARN
    assert beyond.metadata["uncovered_years"].value == "2028"
    assert str(path) in beyond.metadata["error"].value
    assert "'year,2028'" in beyond.metadata["error"].value

    path.write_text("year,2027\n2027-01-09,a Saturday\n", encoding="utf-8")
    broken = on("2026-11-01")  # a bad file warns before any day needs it
    assert not broken.passed and f"{path}:2: " in broken.metadata["error"].value
