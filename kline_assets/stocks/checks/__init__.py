"""Asset checks of the stock domain: validation queries on stock_monthly_kline (`monthly`),
the integrity of stock_1min (`bars`: conflicting duplicates, bars off the XSHG calendar,
non-finite values), the freshness of the last month and whether the trading calendar reaches far
enough ahead (`freshness`).

One op per asset runs its checks on one connection. The checks are partitioned like their
assets, so the UI shows a result per month: a run of one partition yields Dagster's usual check
results; a backfill run over a range of months evaluates each month that holds a
materialization and records one evaluation per month partition. Run without a partition, they
look at the whole table. Each result carries the number of offending rows, up to 20 of them,
and the query it ran.
"""

from .bars import CONFLICTS_BY_MONTH, ONE_MIN, stock_1min_checks
from .freshness import (
    CALENDAR_COVERAGE,
    calendar_coverage,
    calendar_covers_next_30_days,
    last_month_freshness,
    last_month_loaded,
)
from .monthly import MONTHLY, monthly_kline_evaluations, stock_monthly_kline_checks

__all__ = [
    "CALENDAR_COVERAGE",
    "CONFLICTS_BY_MONTH",
    "MONTHLY",
    "ONE_MIN",
    "calendar_coverage",
    "calendar_covers_next_30_days",
    "last_month_freshness",
    "last_month_loaded",
    "monthly_kline_evaluations",
    "stock_1min_checks",
    "stock_monthly_kline_checks",
]
