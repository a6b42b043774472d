"""The two stock assets: `stock_1min` (landing files → stock_1min_qfq) and `stock_monthly_kline`.

Assets only orchestrate and report: parsing lives in landing/, writing in the PostgreSQL IO
manager (resources/postgres_io.py), SQL in monthly.py / sql/.
"""

from collections.abc import Iterator
from itertools import chain
from pathlib import Path

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetRecordsFilter,
    BackfillPolicy,
    Config,
    Failure,
    IdentityPartitionMapping,
    MaterializeResult,
    MetadataValue,
    Output,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
)
from pydantic import Field

from kline_assets.lib.settings import load_settings
from kline_assets.resources.ddl import ddl_schema
from kline_assets.resources.postgres import PostgresResource
from kline_assets.resources.postgres_io import ArrowStream
from kline_assets.stocks import SOURCE_SQL, STOCK_TABLE

from . import checks, landing, monthly
from .partitions import STOCK_MONTHS, MonthWindow
from .refresh_events import chart_metadata
from .sessions import calendar_metadata

GROUP = "stocks"
TABLE = "stock_1min_qfq"
IO_MANAGER = "postgres_io_manager"
CONFLICTS_BY_MONTH = checks.CONFLICTS_BY_MONTH
OWNERS = ["team:quant"]
KINDS = {"postgres"}
"""Kinds are static, the storage path is the database's: plain PostgreSQL or TimescaleDB
(hypertable, continuous aggregate). Each materialization says which in its `path` entry."""
BACKFILL = BackfillPolicy.multi_run(max_partitions_per_run=12)
"""A backfill runs a year per run: stock_1min reads it month by month and writes it in one
transaction, stock_monthly_kline refreshes it in one go. Both assets share it, so one job
holds both."""

_PRICE = "forward-adjusted (qfq) price; may be negative"

STOCK_1MIN_SCHEMA = ddl_schema(SOURCE_SQL, TABLE, {
    "time": "bar end, Beijing wall clock (no time zone)",
    "code": "security code, e.g. 600000.SH",
    "name": "security name at that bar",
    **dict.fromkeys(("open", "high", "low", "close"), _PRICE),
    "volume": "shares traded in the bar",
    "amount": "turnover in CNY",
})

MONTHLY_SCHEMA = ddl_schema(monthly.PLAIN_SQL, "{view}", {
    "month": "first instant of the month, Beijing",
    "code": "security code, e.g. 600000.SH",
    "name": "name at the month's last clean bar",
    "open": "open of the first clean bar",
    "high": "max high of clean bars",
    "low": "min low of clean bars",
    "close": "close of the last clean bar",
    "volume": "sum over clean bars",
    "amount": "sum over clean bars",
})
"""The plain path's table; the continuous aggregate has the same columns (its SELECT)."""


def default_landing_dir() -> Path:
    """Settings' stock_landing_dir (KLINE_STOCK_LANDING_DIR), read at run time."""
    return load_settings().stock_landing_dir


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
    io_manager_key=IO_MANAGER,
    metadata={
        "dagster/column_schema": STOCK_1MIN_SCHEMA,
        "dagster/table_name": TABLE,
        "table": TABLE,
        "partition_expr": "time",
    },
    description="""1-minute A-share bars (forward-adjusted) in `stock_1min_qfq`, one month per
partition, from the landing directory (CSV and Parquet; columns time, code, name, open, high,
low, close, volume, amount, renamed through `column_map`), written by the PostgreSQL IO manager.

* The run's months are replaced in one transaction (DELETE, binary COPY), streamed file by
  file so memory stays bounded. A file that fails to parse — a non-numeric or non-finite
  number, a Parquet column of the wrong type, bytes not in `encoding` — fails the run by file
  name and line, and the previous months stay as they were (or, with `skip_bad_files`, the bad
  file is left out whole). A month without any file is left untouched.
* `time` is Beijing wall clock. Bars on a day that is not an XSHG trading day are rejected as
  `non_trading_day`; bars outside 09:30–11:30 / 13:00–15:00 (inclusive, so start- and
  end-labelled files both fit) as `outside_session`; both are counted per file. Trading
  days after the last day exchange-calendars knows come from the closures file
  (`KLINE_XSHG_CLOSURES`); a month of such days says `calendar: provisional (closures file …)`
  in its metadata, and the `calendar_covers_next_30_days` check warns before one is unknown.
* **Duplicates** — bars sharing (code, time), in one file or several: the copy that comes
  last in (relative file path, line) order wins, so a corrected file whose name sorts later
  replaces the earlier bar. Identical copies are counted as duplicates; copies with different
  values are conflicts, listed with every copy's file, line and values, and the
  `no_conflicting_duplicates` check warns about them. Never summed twice.
* Dirty bars (negative volume, NULL amount, inconsistent high/low) are loaded as they are:
  `stock_monthly_kline` applies the cleaning rule. Negative qfq prices are kept.
* On TimescaleDB the table is made a hypertable (idempotent) before writing.""",
)
def stock_1min(
    context: AssetExecutionContext, config: StockLandingConfig, postgres: PostgresResource
) -> Output[ArrowStream]:
    window = partition_window(context)
    root = Path(config.landing_dir) if config.landing_dir else default_landing_dir()
    postgres.require_tables([STOCK_TABLE])
    with postgres.connect() as conn:
        path = monthly.storage_path(conn)
    options = landing.ReadOptions(
        column_map=dict(config.column_map), encoding=config.encoding,
        time_format=config.time_format,
    )
    months: list[landing.MonthBars] = []
    failures: list[landing.LandingLoadError] = []
    for month in window.split():  # one month in memory at a time
        try:
            months.append(landing.prepare_month(
                root, month, options, workers=config.workers or landing.default_workers(),
                skip_bad_files=config.skip_bad_files,
            ))
        except landing.LandingLoadError as exc:
            context.log.error(str(exc))
            failures.append(exc)
            continue
        _log_report(context, months[-1], root)
    if failures:
        errors = [e for f in failures for e in f.errors]
        raise Failure(
            description="\n".join(str(f) for f in failures) + "\nnothing was written",
            metadata={"failed_files": _failed_table(errors), "landing_dir": str(root)},
        )
    written = [m for m in months if m.replaces]
    stream = ArrowStream(
        chain.from_iterable(m.tables() for m in written),
        replace=[(m.window.start, m.window.end) for m in written],
    )
    return Output(stream, metadata={**_load_metadata(months, root, path),
                                    **calendar_metadata(window.start, window.end)})


def _log_report(context: AssetExecutionContext, month: landing.MonthBars, root: Path) -> None:
    if not month.files:
        context.log.warning(f"no landing files for {month.month} under {root}; month unchanged")
    elif not month.replaces:
        context.log.warning(f"every file for {month.month} failed; month unchanged")
    for err in month.failed:
        context.log.warning(f"skipped {err}")
    for reason in (landing.NON_TRADING_DAY, landing.OUTSIDE_SESSION):
        counted = [(s.file, getattr(s, reason)) for s in month.stats if getattr(s, reason)]
        if counted:
            context.log.warning(
                f"{month.month}: {sum(n for _, n in counted)} bar(s) rejected as {reason}: "
                + ", ".join(f"{f} ({n})" for f, n in counted)
            )
    if month.conflicts:
        context.log.warning(
            f"{month.month}: {month.conflicts} (code, time) key(s) with conflicting copies; "
            "the copy from the file sorting last was kept (see 'conflicting duplicates')"
        )


def _failed_table(errors: list[landing.LandingFileError]) -> MetadataValue:
    return _table(
        [{"file": e.path, "where": e.where, "reason": e.reason} for e in errors],
        ["file", "where", "reason"],
    )


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, bool):
        return "**kept**" if value else "dropped"
    return str(value).replace("|", "\\|")


def conflicts_markdown(rows: list[dict[str, object]]) -> str:
    """Every copy of the conflicting bars shown (first 20 keys), the kept one marked."""
    columns = ["code", "time", "copy", "kept", "name", *landing.NUMERIC]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _load_metadata(
    months: list[landing.MonthBars], root: Path, path: monthly.StoragePath
) -> dict[str, object]:
    files = [vars(s) for m in months for s in m.stats]
    failed = [e for m in months for e in m.failed]
    rejected = [x for m in months for x in m.rejected][:20]
    conflict_rows = [x for m in months for x in m.conflict_rows]
    loaded = sum(m.rows for m in months if m.replaces)
    meta: dict[str, object] = {
        "dagster/row_count": loaded,
        "rows_loaded": loaded,
        "months_replaced": ", ".join(m.month for m in months if m.replaces) or "none",
        "codes": max((m.codes for m in months), default=0),
        "files": len(files),
        "files_skipped": len(failed),
        "rejected_non_trading_day": sum(m.non_trading_day for m in months),
        "rejected_outside_session": sum(m.outside_session for m in months),
        "rows_outside_month": sum(m.outside_month for m in months),
        "duplicates_dropped": sum(m.duplicates for m in months),
        "duplicate_conflicts": sum(m.conflicts for m in months),
        CONFLICTS_BY_MONTH: MetadataValue.json({m.month: m.conflicts for m in months}),
        "path": path.value,
        "seconds_reading": round(sum(m.seconds for m in months), 3),
        "landing_dir": MetadataValue.path(str(root)),
        "per_file": _table(files, list(landing.FileStats.__dataclass_fields__)),
    }
    if failed:
        meta["skipped_files"] = _failed_table(failed)
    if rejected:
        meta["rejected_bars_sample"] = _table(
            rejected, ["file", "where", "code", "time", "reason"])
    if conflict_rows:
        meta["conflicting_duplicates"] = MetadataValue.md(conflicts_markdown(conflict_rows))
    return meta


@asset(
    key="stock_monthly_kline",
    partitions_def=STOCK_MONTHS,
    output_required=False,
    deps=[AssetDep("stock_1min", partition_mapping=IdentityPartitionMapping())],
    backfill_policy=BACKFILL,
    group_name=GROUP,
    owners=OWNERS,
    kinds=KINDS,
    metadata={"dagster/column_schema": MONTHLY_SCHEMA, "dagster/table_name": monthly.VIEW},
    description="""Monthly K-lines per code from the clean 1-minute bars: last(name),
first(open), max(high), min(low), last(close), sum(volume), sum(amount), over bars with
volume ≥ 0, amount ≥ 0, high ≥ GREATEST(open, close), low ≤ LEAST(open, close).

* TimescaleDB (extension installed in the database): the continuous aggregate with the
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
) -> Iterator[MaterializeResult]:
    window = partition_window(context)
    report = monthly.refresh(postgres, window, force=config.force, announce=context.log.info)
    context.log.info(
        f"{monthly.VIEW} {window.label} on {report.path.label}: {report.rows} rows, "
        f"{report.codes} codes in {report.seconds:.2f}s"
    )
    if report.rows == 0 and window.months == 1 and not _held_rows(context):
        context.log.info(f"{monthly.VIEW} {window.label} holds no rows: nothing is materialized "
                         "(the partition stays missing until stock_1min has bars for it)")
        return
    with postgres.connect() as conn:
        state = monthly.refresh_state(conn, report.path, window)
    yield MaterializeResult(metadata={
        "dagster/row_count": report.rows,
        "rows_refreshed": report.rows,
        "codes": report.codes,
        "months": report.months,
        "window": window.label,
        "path": report.path.value,
        "seconds": round(report.seconds, 3),
        **state,
        **calendar_metadata(window.start, window.end),
        **chart_metadata(postgres, window, config.chart_code, config.chart_months),
    })


def _held_rows(context: AssetExecutionContext) -> bool:
    """Whether the partition's last materialization recorded rows (an empty refresh then is a
    real change and is recorded)."""
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=context.asset_key, asset_partitions=[context.partition_key]),
        limit=1).records
    if not records:
        return False
    rows = records[0].asset_materialization.metadata.get("dagster/row_count")
    return bool(rows is not None and rows.value)
