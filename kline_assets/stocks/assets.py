"""The two stock assets: `stock_1min` (landing files → stock_1min_qfq) and `stock_monthly_kline`.

Assets only orchestrate and report: parsing lives in landing.py, SQL in monthly.py / sql/.
"""

import os
from pathlib import Path

from dagster import (
    AssetDep,
    AssetExecutionContext,
    BackfillPolicy,
    Config,
    Failure,
    IdentityPartitionMapping,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
)
from pydantic import Field

from kline_assets.resources.postgres import PostgresResource
from kline_assets.settings import DATA_DIR

from . import landing, monthly
from .partitions import STOCK_MONTHS, MonthWindow, month_label
from .plots import candlestick_markdown

GROUP = "stocks"
OWNERS = ["team:quant"]
KINDS = {"postgres", "timescaledb"}
BACKFILL = BackfillPolicy.multi_run(max_partitions_per_run=12)
"""A backfill runs a year per run: stock_1min loads it month by month (one transaction each),
stock_monthly_kline refreshes it in one go. Both assets share it, so one job holds both."""

_PRICE = "forward-adjusted (qfq) price; may be negative"

STOCK_1MIN_SCHEMA = TableSchema(
    columns=[
        TableColumn("time", "timestamp", description="bar end, Beijing wall clock (no time zone)"),
        TableColumn("code", "text", description="security code, e.g. 600000.SH"),
        TableColumn("name", "text", description="security name at that bar"),
        TableColumn("open", "double precision", description=_PRICE),
        TableColumn("high", "double precision", description=_PRICE),
        TableColumn("low", "double precision", description=_PRICE),
        TableColumn("close", "double precision", description=_PRICE),
        TableColumn("volume", "double precision", description="shares traded in the bar"),
        TableColumn("amount", "double precision", description="turnover in CNY"),
    ]
)

MONTHLY_SCHEMA = TableSchema(
    columns=[
        TableColumn("month", "timestamp", description="first instant of the month, Beijing"),
        TableColumn("code", "text"),
        TableColumn("name", "text", description="name at the month's last clean bar"),
        TableColumn("open", "double precision", description="open of the first clean bar"),
        TableColumn("high", "double precision", description="max high of clean bars"),
        TableColumn("low", "double precision", description="min low of clean bars"),
        TableColumn("close", "double precision", description="close of the last clean bar"),
        TableColumn("volume", "double precision", description="sum over clean bars"),
        TableColumn("amount", "double precision", description="sum over clean bars"),
    ]
)


def default_landing_dir() -> Path:
    """KLINE_STOCK_LANDING_DIR, else <repo>/.kline/landing/stock_1min (read at run time)."""
    env = os.environ.get("KLINE_STOCK_LANDING_DIR")
    return Path(env) if env else DATA_DIR / "landing" / "stock_1min"


class StockLandingConfig(Config):
    """Where the 1-minute files are and how the vendor wrote them."""

    landing_dir: str | None = Field(
        default=None,
        description="Directory of CSV/Parquet files; default $KLINE_STOCK_LANDING_DIR or "
        "<repo>/.kline/landing/stock_1min. Files are matched to months by a YYYY-MM, "
        "YYYY_MM, YYYY-MM-DD or YYYYMMDD token in their relative path; undated files are "
        "read for every month.",
    )
    column_map: dict[str, str] = Field(
        default={},
        description="Vendor header → landing column, e.g. {'trade_time': 'time', 'vol': 'volume'}",
    )
    encoding: str = Field(default="utf-8", description="CSV encoding, e.g. gbk")
    time_format: str | None = Field(
        default=None,
        description="strptime format of the time column; default ISO 8601. Times with an "
        "offset are converted to Beijing wall clock; naive times are taken as Beijing.",
    )
    workers: int = Field(default=0, description="files parsed at once; 0 = one per core")
    skip_bad_files: bool = Field(
        default=False,
        description="Load the month without the files that fail to parse (each reported by "
        "name and line) instead of failing it. Nothing of a bad file is ever loaded.",
    )


class MonthlyRefreshConfig(Config):
    force: bool = Field(
        default=False,
        description="TimescaleDB: recompute buckets even where no change was recorded "
        "(refresh_continuous_aggregate force => true). The plain path always recomputes.",
    )
    chart_code: str | None = Field(default=None, description="code to draw; default: the "
                                   "largest turnover in the last month refreshed")
    chart_months: int = Field(default=24, description="months in the candlestick picture")


def partition_window(context: AssetExecutionContext) -> MonthWindow:
    """The run's partition (or partition range) as naive Beijing wall-clock bounds."""
    tw = context.partition_time_window
    return MonthWindow(tw.start.replace(tzinfo=None), tw.end.replace(tzinfo=None))


def _table(records: list[dict[str, object]], columns: list[str]) -> MetadataValue:
    return MetadataValue.table(
        records=[TableRecord({c: _plain(r.get(c)) for c in columns}) for r in records],
        schema=TableSchema(columns=[TableColumn(c, "string") for c in columns]),
    )


def _plain(value: object) -> str | int | float | bool | None:
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


@asset(
    key="stock_1min",
    partitions_def=STOCK_MONTHS,
    backfill_policy=BACKFILL,
    group_name=GROUP,
    owners=OWNERS,
    kinds=KINDS,
    metadata={"dagster/column_schema": STOCK_1MIN_SCHEMA, "dagster/table_name": "stock_1min_qfq"},
    description="""1-minute A-share bars (forward-adjusted) in `stock_1min_qfq`, one month per
partition, loaded by COPY from the landing directory (CSV and Parquet; columns time, code,
name, open, high, low, close, volume, amount, renamed through `column_map`).

* A month is replaced in one transaction; a file that fails to parse fails the month by file
  name and line, and the previous month stays as it was (or, with `skip_bad_files`, the bad
  file is left out whole). With no file for a month, the month is left untouched.
* `time` is Beijing wall clock. Bars stamped outside 09:30–11:30 / 13:00–15:00 (inclusive, so
  start- and end-labelled files both fit) are rejected and counted per file.
* **Duplicates** — bars sharing (code, time), in one file or several: the copy that comes
  last in (relative file path, line) order wins, so a corrected file whose name sorts later
  replaces the earlier bar. Identical copies are counted as duplicates; copies with different
  values are counted as conflicts and listed with every file and line. Never summed twice.
* Dirty bars (negative volume, NULL amount, inconsistent high/low) are loaded as they are:
  `stock_monthly_kline` applies the cleaning rule. Negative qfq prices are kept.
* On TimescaleDB the table is made a hypertable (idempotent) before loading.""",
)
def stock_1min(
    context: AssetExecutionContext, config: StockLandingConfig, postgres: PostgresResource
) -> MaterializeResult:
    window = partition_window(context)
    root = Path(config.landing_dir) if config.landing_dir else default_landing_dir()
    postgres.require_tables([postgres.stock_table])
    with postgres.connect() as conn:
        path = monthly.storage_path(conn)
        if path is monthly.StoragePath.TIMESCALEDB and monthly.ensure_hypertable(
            conn, postgres.stock_table
        ):
            context.log.info(f"{postgres.stock_table} converted to a hypertable")
    options = landing.ReadOptions(
        column_map=dict(config.column_map), encoding=config.encoding,
        time_format=config.time_format,
    )
    reports: list[landing.LoadReport] = []
    failures: list[landing.LandingLoadError | landing.MonthWriteError] = []
    for month in window.split():  # one transaction per month: a bad month spoils no other
        try:
            reports.append(landing.load_month(
                postgres.connect, postgres.stock_table, root, month, options,
                workers=config.workers or landing.default_workers(),
                skip_bad_files=config.skip_bad_files,
            ))
        except (landing.LandingLoadError, landing.MonthWriteError) as exc:
            context.log.error(str(exc))
            failures.append(exc)
            continue
        _log_report(context, reports[-1], root)
    if failures:
        errors = [e for f in failures for e in getattr(f, "errors", [])]
        loaded = ", ".join(r.month for r in reports if r.replaced) or "none"
        raise Failure(
            description="\n".join(str(f) for f in failures) + f"\nmonths loaded: {loaded}",
            metadata={"failed files": _failed_table(errors), "landing dir": str(root)},
        )
    return MaterializeResult(metadata=_load_metadata(reports, root, path))


def _log_report(context: AssetExecutionContext, report: landing.LoadReport, root: Path) -> None:
    if not report.files:
        context.log.warning(f"no landing files for {report.month} under {root}; month unchanged")
    elif not report.replaced:
        context.log.warning(f"every file for {report.month} failed; month unchanged")
    for err in report.failed:
        context.log.warning(f"skipped {err}")
    if report.outside_session:
        context.log.warning(
            f"{report.month}: {report.outside_session} bar(s) outside trading sessions "
            "rejected: " + ", ".join(
                f"{f.file} ({f.outside_session})" for f in report.files if f.outside_session
            )
        )
    if report.conflicts:
        context.log.warning(
            f"{report.month}: {report.conflicts} (code, time) key(s) with conflicting copies; "
            "the copy from the file sorting last was kept (see 'conflicts (first 20)')"
        )


def _failed_table(errors: list[landing.LandingFileError]) -> MetadataValue:
    return _table(
        [{"file": e.path, "where": e.where, "reason": e.reason} for e in errors],
        ["file", "where", "reason"],
    )


def _load_metadata(
    reports: list[landing.LoadReport], root: Path, path: monthly.StoragePath
) -> dict[str, object]:
    files = [vars(f) for r in reports for f in r.files]
    failed = [e for r in reports for e in r.failed]
    rejected = [x for r in reports for x in r.outside_session_samples][:20]
    conflicts = [x for r in reports for x in r.conflict_samples][:20]
    loaded = sum(r.rows_loaded for r in reports)
    meta: dict[str, object] = {
        "dagster/row_count": loaded,
        "rows loaded": loaded,
        "rows replaced": sum(r.rows_deleted for r in reports),
        "months replaced": ", ".join(r.month for r in reports if r.replaced) or "none",
        "codes": max((r.codes for r in reports), default=0),
        "files": len(files),
        "files skipped": len(failed),
        "rejected outside sessions": sum(r.outside_session for r in reports),
        "rows outside the month": sum(r.outside_month for r in reports),
        "duplicates dropped": sum(r.duplicates for r in reports),
        "duplicate conflicts": sum(r.conflicts for r in reports),
        "path": path.value,
        "seconds": round(sum(r.seconds for r in reports), 3),
        "seconds writing": round(sum(r.write_seconds for r in reports), 3),
        "landing dir": MetadataValue.path(str(root)),
        "per file": _table(files, list(landing.FileStats.__dataclass_fields__)),
    }
    if failed:
        meta["skipped files"] = _failed_table(failed)
    if rejected:
        meta["rejected bars (first 20)"] = _table(rejected, ["file", "where", "code", "time"])
    if conflicts:
        meta["conflicts (first 20)"] = _table(conflicts, ["code", "time", "kept", "dropped"])
    return meta


@asset(
    key="stock_monthly_kline",
    partitions_def=STOCK_MONTHS,
    deps=[AssetDep("stock_1min", partition_mapping=IdentityPartitionMapping())],
    backfill_policy=BACKFILL,
    group_name=GROUP,
    owners=OWNERS,
    kinds=KINDS,
    metadata={"dagster/column_schema": MONTHLY_SCHEMA, "dagster/table_name": monthly.VIEW},
    description="""Monthly K-lines per code from the clean 1-minute bars: last(name),
first(open), max(high), min(low), last(close), sum(volume), sum(amount), over bars with
volume ≥ 0, amount ≥ 0, high ≥ GREATEST(open, close), low ≤ LEAST(open, close).

* TimescaleDB (extension installed in the database): the seed's continuous aggregate with the
  (code, month DESC) index and the 3 months / 1 hour / 30 minutes refresh policy; a partition
  is refreshed over [M, M+1 month) outside any transaction.
* Plain PostgreSQL: a table of the same name holding the same rows, replaced per window of
  months in one transaction.
* Current month: month-wide buckets are never refreshed by the policy before the month ends
  and real-time aggregation is off, so the `stock_current_month` schedule re-materializes the
  current month's partition on every trading day (both paths alike).
* A backfill runs up to 12 partitions per run, each run a single refresh of its months; the
  `monthly_kline_full_refresh` job and `kline stocks refresh` refresh any window in one go.""",
)
def stock_monthly_kline(
    context: AssetExecutionContext, config: MonthlyRefreshConfig, postgres: PostgresResource
) -> MaterializeResult:
    window = partition_window(context)
    report = monthly.refresh(postgres, window, force=config.force, announce=context.log.info)
    context.log.info(
        f"{monthly.VIEW} {window.label} on {report.path.label}: {report.rows} rows, "
        f"{report.codes} codes in {report.seconds:.2f}s"
    )
    meta: dict[str, object] = {
        "dagster/row_count": report.rows,
        "rows refreshed": report.rows,
        "codes": report.codes,
        "months": report.months,
        "window": window.label,
        "path": report.path.value,
        "seconds": round(report.seconds, 3),
    }
    with postgres.connect() as conn:
        code = config.chart_code or monthly.top_code(conn, window)
        if code is not None:
            bars = monthly.recent_months(conn, code, window.end, config.chart_months)
            title = f"{code} monthly K-line to {month_label(window.month_starts()[-1])}"
            meta["chart code"] = code
            meta["chart"] = MetadataValue.md(candlestick_markdown(bars, title))
    return MaterializeResult(metadata=meta)
