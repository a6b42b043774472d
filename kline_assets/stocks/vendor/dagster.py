"""The vendor feed in Dagster: the monthly K-lines follow the history that arrives, the stream
is trimmed once its entries are safely in PostgreSQL, and the vendor is checked against itself.

* `vendor_history_sensor` (every minute, running by default): reads the observations of
  `stock_1min` that `kline bars ingest` reports (events.py) after its cursor and launches
  `vendor_monthly_refresh` — `stock_monthly_kline` and the consistency check — for each month
  that received new or corrected bars, one run per month and observation batch. The asset
  refreshes the month on whichever path the database has (plain SQL, or the continuous
  aggregate, whose month-wide buckets its policy never refreshes while the month runs), so
  the month's K-line reflects the bars without anyone starting a run.
* `vendor_stream_trim` (job; schedule `vendor_stream_trim_nightly`, 02:00 Beijing, beside the
  hand-over, for the trading day that just ended): XTRIM MINID of the vendor stream's entries
  older than that day, after confirming that every consumer group acknowledged them and every
  ingest group's committed position in PostgreSQL lies beyond them. Otherwise it trims nothing
  and fails, saying which group lags.
* `vendor_bars_match_kernel` (asset check of `stock_1min`, per month, warning): where the
  vendor sent both, its 5/15/30/60-minute bars must equal the N-minute bars the project's
  kernel (`kernels.bars.resample_bars`) builds from the vendor's own 1-minute bars; mismatches
  are listed per symbol and frame.
"""

# No `from __future__ import annotations`: Dagster reads the ops' and checks' annotations.

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import redis as redislib
from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    AssetRecordsFilter,
    AssetSelection,
    Config,
    DefaultSensorStatus,
    Failure,
    MetadataValue,
    OpExecutionContext,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    job,
    op,
    schedule,
    sensor,
)
from psycopg import sql
from pydantic import Field

from kline_assets.kernels.bars import Bars, resample_bars
from kline_assets.lib.partitioned_checks import partitioned_check
from kline_assets.lib.settings import STOCK_TZ
from kline_assets.resources.postgres import PostgresResource
from kline_assets.resources.redis import RedisResource

from .. import STOCK_TABLE
from ..assets import stock_1min
from ..partitions import STOCK_MONTHS, window_for_keys
from ..sessions import is_trading_day
from . import INGEST_TABLE, VENDOR_TABLE
from .events import ASSET, SOURCE
from .keys import VendorKeys
from .store import entry_key

CHECK = "vendor_bars_match_kernel"
SHOWN = 20
TOLERANCE = 1e-9
"""Relative tolerance of the comparison: prices and sums the vendor computed in decimal may
differ from ours in the last bits of a double, never more."""

# --------------------------------------------------------------------------- the check


def _read(postgres: PostgresResource, table: str, start: datetime, end: datetime,
          codes: list[str] | None = None) -> pd.DataFrame:
    period = "period" if table == VENDOR_TABLE else "1::int2 AS period"
    where = sql.SQL("time >= %s AND time < %s")
    params: list[object] = [start, end]
    if codes is not None:
        where += sql.SQL(" AND code = ANY(%s)")
        params.append(codes)
    query = sql.SQL("SELECT code, {}, time, open, high, low, close, volume, amount FROM {} "
                    "WHERE {} ORDER BY code, time").format(sql.SQL(period),
                                                          sql.Identifier(table), where)
    with postgres.connect() as conn:
        if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
            return pd.DataFrame(columns=["code", "period", "time", *Bars.COLUMNS])
        rows = conn.execute(query, params).fetchall()
    return pd.DataFrame(rows, columns=["code", "period", "time", *Bars.COLUMNS])


def _kernel_bars(minutes: pd.DataFrame, periods: list[int]) -> pd.DataFrame:
    """The project's N-minute bars of the vendor's 1-minute bars (the one kernel)."""
    bars = Bars(1, minutes["code"].to_numpy(dtype=object),
                pd.to_datetime(minutes["time"]).to_numpy().astype("datetime64[s]"),
                *(minutes[c].to_numpy(dtype=np.float64) for c in Bars.COLUMNS))
    parts = []
    for p in periods:
        made = resample_bars(bars, p)
        parts.append(pd.DataFrame({"code": made.symbol.astype(str), "period": p,
                                   "time": made.frame.astype("datetime64[us]"),
                                   **{c: getattr(made, c) for c in Bars.COLUMNS}}))
    return pd.concat(parts, ignore_index=True)


def compare_month(postgres: PostgresResource, partition_key: str) -> tuple[int, pd.DataFrame]:
    """(bars compared, mismatches): the vendor's N-minute bars of the month's (code, day)s
    that also have 1-minute bars, against the kernel's; a mismatch is `values` (some column
    differs), `missing` (the kernel has no such bar: no 1-minute bar in its block) or `extra`
    (the kernel has a bar the vendor did not send)."""
    window = window_for_keys(partition_key, partition_key)
    vendor = _read(postgres, VENDOR_TABLE, window.start, window.end)
    if vendor.empty:
        return 0, pd.DataFrame()
    vendor["time"] = pd.to_datetime(vendor["time"])
    minutes = _read(postgres, STOCK_TABLE, window.start, window.end,
                    sorted(vendor["code"].unique().tolist()))
    if minutes.empty:
        return 0, pd.DataFrame()
    minutes["time"] = pd.to_datetime(minutes["time"])
    ours = _kernel_bars(minutes, sorted(int(p) for p in vendor["period"].unique()))
    both_days = (set(zip(vendor["code"], vendor["time"].dt.date, strict=True))
                 & set(zip(minutes["code"], minutes["time"].dt.date, strict=True)))

    def keep(frame: pd.DataFrame) -> pd.DataFrame:
        pairs = pd.Series(list(zip(frame["code"], frame["time"].dt.date, strict=True)),
                          index=frame.index)
        return frame[pairs.isin(both_days)]

    vendor, ours = keep(vendor), keep(ours)
    vendor["period"] = vendor["period"].astype(int)
    merged = vendor.merge(ours, on=["code", "period", "time"], how="outer",
                          suffixes=("_vendor", "_ours"), indicator=True)
    differs = np.zeros(len(merged), dtype=bool)
    for c in Bars.COLUMNS:
        a, b = merged[f"{c}_vendor"].to_numpy(float), merged[f"{c}_ours"].to_numpy(float)
        differs |= ~np.isclose(a, b, rtol=TOLERANCE, atol=0, equal_nan=False)
    kind = np.where(merged["_merge"] == "left_only", "missing",
                    np.where(merged["_merge"] == "right_only", "extra",
                             np.where(differs, "values", "")))
    merged["kind"] = kind
    compared = int((merged["_merge"] != "right_only").sum())
    bad = merged[merged["kind"] != ""].drop(columns="_merge")
    return compared, bad.sort_values(["code", "period", "time"]).reset_index(drop=True)


def _mismatch_markdown(bad: pd.DataFrame) -> str:
    lines = ["| symbol | period | frame | kind | vendor o/h/l/c/v | kernel o/h/l/c/v |",
             "|---|---:|---|---|---|---|"]

    def cell(row, side: str) -> str:
        vals = [row[f"{c}_{side}"] for c in ("open", "high", "low", "close", "volume")]
        return "—" if pd.isna(vals[0]) else " / ".join(f"{v:.6g}" for v in vals)

    for _, r in bad.head(SHOWN).iterrows():
        frame = pd.Timestamp(r["time"]).strftime("%Y-%m-%d %H:%M")
        lines.append(f"| {r['code']} | {int(r['period'])} | {frame} | {r['kind']} | "
                     f"{cell(r, 'vendor')} | {cell(r, 'ours')} |")
    if len(bad) > SHOWN:
        lines.append(f"| … {len(bad) - SHOWN} more | | | | | |")
    return "\n".join(lines)


def consistency_result(postgres: PostgresResource, partition_key: str) -> AssetCheckResult:
    compared, bad = compare_month(postgres, partition_key)
    meta: dict[str, object] = {"compared_bars": compared, "mismatches": len(bad)}
    if compared == 0:
        meta["note"] = ("no (symbol, day) of the month has both vendor N-minute and 1-minute "
                        "bars: nothing to compare")
    if len(bad):
        per_symbol = bad.groupby("code").size().sort_values(ascending=False)
        meta["mismatches_by_symbol"] = MetadataValue.json(
            {str(k): int(v) for k, v in per_symbol.head(100).items()})
        meta["by_kind"] = MetadataValue.json(
            {str(k): int(v) for k, v in bad.groupby("kind").size().items()})
        meta["sample"] = MetadataValue.md(_mismatch_markdown(bad))
    return AssetCheckResult(check_name=CHECK, passed=len(bad) == 0, metadata=meta,
                            severity=AssetCheckSeverity.WARN)


@partitioned_check(
    asset=stock_1min, partitions_def=STOCK_MONTHS, resources={"postgres"},
    description="Where the vendor sent both, its 5/15/30/60-minute bars (stock_bars_vendor) "
    "equal the N-minute bars the project's kernel builds from its 1-minute bars "
    "(stock_1min_qfq); mismatches listed per symbol and frame (warning)")
def vendor_bars_match_kernel(partition_key: str, postgres: PostgresResource
                             ) -> AssetCheckResult:
    return consistency_result(postgres, partition_key)


# --------------------------------------------------------------------------- automation

vendor_monthly_refresh = define_asset_job(
    "vendor_monthly_refresh",
    selection=AssetSelection.assets("stock_monthly_kline")
    | AssetSelection.checks(AssetCheckKey(AssetKey(ASSET), CHECK)),
    description="Refresh stock_monthly_kline for a month that received vendor bars through "
    "the stream (launched by vendor_history_sensor), and check the vendor's N-minute bars "
    "against its 1-minute bars.",
)


def touched_months(instance, after: int, limit: int = 1000) -> tuple[dict[str, int], int]:
    """Months (partition keys) whose vendor observations after storage id `after` report new
    or corrected bars → their newest storage id; and the newest storage id seen."""
    records = instance.fetch_observations(
        AssetRecordsFilter(asset_key=AssetKey(ASSET), after_storage_id=after), limit=limit,
        ascending=True).records
    months: dict[str, int] = {}
    newest = after
    for record in records:
        newest = max(newest, record.storage_id)
        obs = record.asset_observation
        meta = obs.metadata if obs is not None else {}
        source = meta.get("source")
        rows = meta.get("rows")
        if source is None or source.value != SOURCE or rows is None or not rows.value:
            continue
        months[record.partition_key] = record.storage_id
    return months, newest


@sensor(name="vendor_history_sensor", job=vendor_monthly_refresh, minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING,
        description="New vendor history from the stream (observations of stock_1min by "
        "`kline bars ingest`) → refresh stock_monthly_kline for the months it touched.")
def vendor_history_sensor(context: SensorEvaluationContext) -> Iterator[RunRequest | SkipReason]:
    after = int(context.cursor or 0)
    months, newest = touched_months(context.instance, after)
    if newest != after:
        context.update_cursor(str(newest))
    if not months:
        yield SkipReason("no new vendor bars since the last evaluation")
        return
    for month, storage_id in sorted(months.items()):
        yield RunRequest(run_key=f"vendor:{month}:{storage_id}", partition_key=month,
                         tags={"kline/trigger": "vendor_history"})


# --------------------------------------------------------------------------- the nightly trim


def day_start_ms(day: date) -> int:
    """Stream id milliseconds of `day` 00:00 Beijing."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(STOCK_TZ))
    return int(start.timestamp() * 1000)


def trim_stream(postgres: PostgresResource, client: redislib.Redis, stream: str, day: date
                ) -> dict[str, object]:
    """XTRIM MINID of entries before `day` 00:00 Beijing, once every group acknowledged them
    and every ingest group committed past them; raises Failure otherwise (nothing trimmed)."""
    minid = f"{day_start_ms(day)}-0"
    before = client.xrevrange(stream, max=f"({minid}", min="-", count=1)
    if not before:
        return {"trimmed": 0, "minid": minid, "note": "no entries before the day"}
    newest = before[0][0].decode()
    newest_key = entry_key(newest)
    problems = []
    groups = client.xinfo_groups(stream)
    for g in groups:
        name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
        older = client.xpending_range(stream, name, min="-", max=f"({minid}", count=1)
        delivered = g["last-delivered-id"]
        delivered = delivered.decode() if isinstance(delivered, bytes) else delivered
        if older:
            problems.append(f"group {name} has unacknowledged entries before {day}")
        elif entry_key(delivered) < newest_key:
            problems.append(f"group {name} has not read the entries before {day} yet "
                            f"(delivered up to {delivered}, newest before the day {newest})")
    with postgres.connect() as conn:
        committed = {}
        if conn.execute("SELECT to_regclass(%s)", (INGEST_TABLE,)).fetchone()[0] is not None:
            committed = {grp: (ms, seq) for grp, ms, seq in conn.execute(
                sql.SQL("SELECT grp, last_ms, last_seq FROM {} WHERE stream = %s").format(
                    sql.Identifier(INGEST_TABLE)), (stream,)).fetchall()}
    if not committed:
        problems.append(f"no ingest group has committed entries of {stream} in PostgreSQL "
                        f"at {postgres.address}")
    for grp, position in committed.items():
        if position < newest_key:
            problems.append(f"group {grp} committed up to {position[0]}-{position[1]} in "
                            f"PostgreSQL, before the newest entry before {day} ({newest})")
    if problems:
        raise Failure(description=f"{stream} not trimmed: " + "; ".join(problems),
                      metadata={"minid": minid, "stream": stream})
    trimmed = int(client.xtrim(stream, minid=minid, approximate=False))
    return {"trimmed": trimmed, "minid": minid, "stream": stream,
            "groups": ", ".join(sorted(committed)), "left": int(client.xlen(stream))}


class TrimConfig(Config):
    day: str = Field(description="YYYY-MM-DD: entries before this Beijing day are trimmed")
    stream: str | None = Field(default=None, description="default: <prefix>:vendor:bars")


@op(out={}, description="XTRIM MINID the vendor stream's entries before the day, once they "
    "are acknowledged and committed in PostgreSQL")
def trim_vendor_stream(context: OpExecutionContext, config: TrimConfig,
                       postgres: PostgresResource, redis: RedisResource):
    stream = config.stream or VendorKeys(redis.key_prefix).stream
    result = trim_stream(postgres, redis.client(), stream, date.fromisoformat(config.day))
    context.log.info(f"{stream}: trimmed {result['trimmed']} entries before {config.day} "
                     f"({result})")


@job(name="vendor_stream_trim", description="Trim the vendor stream of entries older than the "
     "day just archived, after confirming they are in PostgreSQL.")
def vendor_stream_trim() -> None:
    trim_vendor_stream()


@schedule(name="vendor_stream_trim_nightly", job=vendor_stream_trim, cron_schedule="0 2 * * *",
          execution_timezone=STOCK_TZ,
          description="02:00 Beijing, beside the hand-over: trim the vendor stream of entries "
          "older than the trading day that just ended.")
def vendor_stream_trim_nightly(context: ScheduleEvaluationContext
                               ) -> Iterator[RunRequest | SkipReason]:
    day = (context.scheduled_execution_time - timedelta(days=1)).date()
    if not is_trading_day(day):
        yield SkipReason(f"{day} is not an XSHG trading day: nothing archived, nothing trimmed")
        return
    yield RunRequest(run_key=f"vendor-trim@{day}", run_config={
        "ops": {"trim_vendor_stream": {"config": {"day": day.isoformat()}}}})
