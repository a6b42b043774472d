"""Landing files (CSV / Parquet 1-minute bars) → one month of `stock_1min_qfq`.

discover  which files belong to a month (a date token in the path)
parse     one file → typed landing columns, or an error naming file and line
validate  month window, XSHG trading days and session hours; rejections counted per reason
dedupe    the duplicate rule on (code, time) keys: the last copy in (path, line) order wins
load      thread pool, spill, two-pass streaming of a month (what the IO manager writes)

Dirty bars (negative volume, NULL amount, inconsistent high/low) are loaded as they are: the
monthly aggregate applies the cleaning rule. Negative forward-adjusted prices are data.
"""

from .dedupe import Dedupe, dedupe
from .discover import CSV_SUFFIXES, PARQUET_SUFFIXES, LandingFile, discover, month_of_path
from .load import LandingLoadError, MonthBars, default_workers, load_month, prepare_month
from .parse import COLUMNS, NUMERIC, LandingFileError, ReadOptions, check_schema, read_file
from .validate import NON_TRADING_DAY, OUTSIDE_SESSION, FileStats, screen

__all__ = [
    "COLUMNS",
    "CSV_SUFFIXES",
    "NON_TRADING_DAY",
    "NUMERIC",
    "OUTSIDE_SESSION",
    "PARQUET_SUFFIXES",
    "Dedupe",
    "FileStats",
    "LandingFile",
    "LandingFileError",
    "LandingLoadError",
    "MonthBars",
    "ReadOptions",
    "check_schema",
    "dedupe",
    "default_workers",
    "discover",
    "load_month",
    "month_of_path",
    "prepare_month",
    "read_file",
    "screen",
]
