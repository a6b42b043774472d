"""Checks of time rather than rows: the last month was loaded on time, and the trading
calendar reaches far enough ahead for what will arrive."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetRecordsFilter,
    DagsterInstance,
    MetadataValue,
    asset_check,
)

from kline_assets.lib.settings import STOCK_TZ

from .. import sessions
from ..partitions import month_label
from .bars import ONE_MIN
from .monthly import MONTHLY

LOADED_AT = time(16, 30)
"""When the stock_current_month schedule loads a trading day (after the 15:00 close)."""


def last_month_freshness(instance: DagsterInstance, now: datetime) -> AssetCheckResult:
    """The month holding the last trading day that should be loaded by `now` was materialized
    no earlier than the load of the trading day before it: at most one trading day behind."""
    local = now.astimezone(ZoneInfo(STOCK_TZ)).replace(tzinfo=None)
    day = pd.Timestamp(local.date())
    if not (sessions.is_trading_day(day) and local.time() >= LOADED_AT):
        day = sessions.previous_trading_day(day)
    due = datetime.combine(sessions.previous_trading_day(day).date(), LOADED_AT)
    due_utc = due.replace(tzinfo=ZoneInfo(STOCK_TZ)).timestamp()
    key = f"{month_label(day.to_pydatetime())}-01"
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=MONTHLY, asset_partitions=[key]), limit=1).records
    last = records[0].timestamp if records else None
    meta: dict[str, object] = {
        "partition": key,
        "last_trading_day": f"{day:%Y-%m-%d}",
        "loaded_no_earlier_than": f"{due:%Y-%m-%d %H:%M} Beijing",
        "last_materialized_at": (datetime.fromtimestamp(last, ZoneInfo(STOCK_TZ))
                                 .strftime("%Y-%m-%d %H:%M") + " Beijing") if last else "never",
    }
    return AssetCheckResult(passed=last is not None and last >= due_utc,
                            severity=AssetCheckSeverity.WARN, metadata=meta)


@asset_check(
    asset=MONTHLY,
    description="Freshness: the month of the last trading day was loaded at most one trading "
    "day late (materialized no earlier than 16:30 Beijing of the trading day before it). "
    "Evaluated after every stock_current_month run and by the stocks_watch schedule.",
)
def last_month_loaded(context: AssetCheckExecutionContext) -> AssetCheckResult:
    return last_month_freshness(context.instance, datetime.now(UTC))


CALENDAR_COVERAGE = "calendar_covers_next_30_days"
CALENDAR_HORIZON_DAYS = 30


def calendar_coverage(now: datetime, days: int = CALENDAR_HORIZON_DAYS) -> AssetCheckResult:
    """Whether every day of the `days` Beijing days from `now` on is known to the calendar.

    Fails (as a warning, while there is still time to act) when one of them lies in a year
    that neither exchange-calendars nor the closures file covers, or when the closures file
    cannot be read — from then on every tick, landing file and hand-over of such a day is
    refused. Passes with `calendar: provisional (…)` while the days rely on the file."""
    today = now.astimezone(ZoneInfo(STOCK_TZ)).date()
    last = today + timedelta(days=days - 1)
    status = sessions.calendar_status(today, last)
    source = (f"provisional (closures file {status.closures_path})" if status.provisional
              else f"exchange-calendars {status.package_version}")
    meta: dict[str, object] = {
        "window": f"{today}..{last}",
        "calendar": source,
        "package_last_day": f"{status.package_last} (exchange-calendars "
                            f"{status.package_version})",
        "closures_file": MetadataValue.path(str(status.closures_path)),
        "closures_file_years": ", ".join(map(str, status.file_years)) or "none",
    }
    if status.uncovered_years:
        meta["uncovered_years"] = ", ".join(map(str, status.uncovered_years))
    if status.error:
        meta["error"] = status.error
    if status.ignored:
        meta["ignored_lines"] = MetadataValue.md("\n".join(f"* {i}" for i in status.ignored))
    return AssetCheckResult(passed=status.covered, severity=AssetCheckSeverity.WARN,
                            metadata=meta)


@asset_check(
    asset=ONE_MIN,
    description="The XSHG calendar knows every day of the next 30 (Beijing): from "
    "exchange-calendars, or for years beyond it from the closures file (KLINE_XSHG_CLOSURES; "
    "the result then says `calendar: provisional`). Warns when a day lies in a year neither "
    "covers, or the file has a bad line: add the exchange's announced closures of that year "
    "to the file. Evaluated by the stocks_watch schedule and after every stock_monthly_job run.",
)
def calendar_covers_next_30_days(context: AssetCheckExecutionContext) -> AssetCheckResult:
    return calendar_coverage(datetime.now(UTC))
