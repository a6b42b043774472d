"""Live refresh, incremental and exact: new source records → only the buckets they can change.

A record in bucket b changes price_aligned and cross_shop_agg at b (and the lookback after
it), and every feature from b on (the forward fill and the EMA carry it to the newest
bucket). So the refresh recomputes the window [p + 15 min, end of the newest record's month),
where p is the last bucket of `live` holding any price_aligned row before the earliest new
record: starting right after p also creates the rows of the buckets that had no source
before (a scraper pause) and guarantees a stored features_wide row at p for every scope that
has observed anything, whose EMA the window continues. The rolling windows (SMA, WMA,
Bollinger) need the last w−1 inputs: the grid starts w−1 buckets before the window, with
cross_shop_agg read back from ClickHouse and the forward fill seeded with the last mean before
it, exactly as a month partition reads its warm-up (see `warmup`). Only the window's buckets
are written, by INSERT: ReplacingMergeTree keeps the newest version and readers use FINAL.

The computation is the month partitions' own (`aligned.align_month`, `compute.cross_shop`,
`series_from_rows`, `cohort_series`, `features_frame`), called on a shorter grid. A window
that would be long (more than MAX_SPAN before the newest record: an old late record, a long
pause, a past month) or that has no stored state to continue from falls back to whole-month
materializations of the price assets.
"""


import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from psycopg import sql

from kline_assets.kernels.feature_names import WINDOWS_MINUTES_TO_BUCKETS
from kline_assets.lib.errors import KlineError
from kline_assets.lib.months import add_months, month_key, month_of, months_between, zoned
from kline_assets.lib.settings import PRICE_TZ
from kline_assets.prices.aligned import align_month
from kline_assets.prices.partitions import LIVE, month_partitions
from kline_assets.prices.source import PRICE_TABLE, read_cohorts, screen_cohorts
from kline_assets.prices.warmup import cohort_seeds, last_bucket_with_source, last_means_before
from kline_assets.resources import ClickHouseResource, PostgresResource
from kline_assets.resources.clickhouse import cluster as cl
from kline_assets.resources.clickhouse.sql import (
    insert_frame,
    quote_literal,
    read_frame,
    time_range_where,
)
from kline_assets.resources.postgres import table_ident

BUCKET = timedelta(minutes=15)
MAX_SPAN = timedelta(days=3)
"""Longest incremental window (earliest affected bucket → newest record); beyond it whole
months are recomputed. Three days is a tenth of a month: still ≥ 10× cheaper."""
ROLLING_WARMUP = (max(WINDOWS_MINUTES_TO_BUCKETS.values()) - 1) * BUCKET
EMA_COLUMNS = [f"ema_{m}" for m in WINDOWS_MINUTES_TO_BUCKETS]
LOOKBACK_BUCKETS = 1  # the sensor's runs use the assets' default config (lookback 15 min)


def floor_bucket(instant: datetime) -> datetime:
    """The start of the 15-minute bucket holding `instant`, in Asia/Tokyo."""
    return pd.Timestamp(instant).tz_convert(PRICE_TZ).floor("15min").to_pydatetime()


def month_end(instant: datetime) -> datetime:
    """The end of the Tokyo month holding `instant` (tz-aware)."""
    return add_months(zoned(month_of(instant, PRICE_TZ), PRICE_TZ), 1)


# --------------------------------------------------------------------------- what is new


@dataclass(frozen=True)
class NewRecords:
    """Source records with id > the cursor: where they fall, and where the source ends."""

    max_id: int
    months: dict[str, int] = field(default_factory=dict)  # price partitions → rows
    outside: dict[str, int] = field(default_factory=dict)  # other months → rows
    earliest: datetime | None = None  # min recorded_at of the new rows inside the partitions
    newest: datetime | None = None  # max recorded_at of the source inside the partitions


def new_records(postgres: PostgresResource, after_id: int, now: datetime | None = None
                ) -> NewRecords:
    """What arrived after `after_id`, per Tokyo month, split into price partitions and not."""
    known = set(month_partitions.get_partition_keys(
        current_time=now or datetime.now(ZoneInfo(PRICE_TZ))))
    table = table_ident(PRICE_TABLE)
    with postgres.connect() as conn:
        max_id = int(conn.execute(
            sql.SQL("SELECT coalesce(max(id), 0) FROM {}").format(table)).fetchone()[0])
        if max_id <= after_id:
            return NewRecords(max_id)
        rows = conn.execute(
            sql.SQL(
                "SELECT to_char(date_trunc('month', recorded_at AT TIME ZONE {tz}), "
                "'YYYY-MM-DD'), count(*), min(recorded_at), max(recorded_at) FROM {t} "
                "WHERE id > %s AND id <= %s GROUP BY 1 ORDER BY 1"
            ).format(tz=sql.Literal(PRICE_TZ), t=table),
            (after_id, max_id),
        ).fetchall()
        inside = [r for r in rows if r[0] in known]
        if not inside:
            return NewRecords(max_id, outside={r[0]: int(r[1]) for r in rows if r[0]})
        # The live edge: the newest record of the source up to the end of the newest month
        # that received records (a typo'd year beyond the partitions is not the edge).
        edge = add_months(zoned(datetime.fromisoformat(max(r[0] for r in inside)), PRICE_TZ), 1)
        newest = conn.execute(
            sql.SQL("SELECT max(recorded_at) FROM {} WHERE recorded_at < %s").format(table),
            (edge,)).fetchone()[0]
    return NewRecords(
        max_id,
        months={r[0]: int(r[1]) for r in inside},
        outside={r[0]: int(r[1]) for r in rows if r[0] not in known and r[0]},
        earliest=min(r[2] for r in inside),
        newest=newest,
    )


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class RefreshPlan:
    """Either an incremental window [start, end) or whole months (partition keys, in order)."""

    reason: str
    start: datetime | None = None
    end: datetime | None = None
    months: list[str] = field(default_factory=list)

    @property
    def incremental(self) -> bool:
        return self.start is not None


def _last_state_bucket(clickhouse: ClickHouseResource, run_id: str, before: datetime,
                       since: datetime) -> tuple[datetime | None, int]:
    """(the last bucket in [since, before) with price_aligned rows of the run, the number of
    features_wide rows stored at that bucket)."""
    with clickhouse.client() as client:
        tables = set(clickhouse.tables(client))
        if not {"price_aligned", "features_wide"} <= tables:
            return None, 0
        count, ts = client.query(
            f"SELECT count(), toUnixTimestamp(max(bucket)) FROM "
            f"{clickhouse.table('price_aligned')} WHERE run_id = {{run:String}} AND "
            f"{time_range_where('bucket', since, before)}", parameters={"run": run_id},
            settings=cl.reads(),
        ).result_rows[0]
        if not count:
            return None, 0
        state = client.query(
            f"SELECT count() FROM {clickhouse.table('features_wide')} "
            f"WHERE run_id = {{run:String}} AND bucket = toDateTime({int(ts)})",
            parameters={"run": run_id},
            settings=cl.reads()).result_rows[0][0]
    bucket = pd.Timestamp(int(ts), unit="s", tz="UTC").tz_convert(PRICE_TZ).to_pydatetime()
    return bucket, int(state)


def plan_refresh(clickhouse: ClickHouseResource, new: NewRecords, run_id: str = LIVE,
                 max_span: timedelta = MAX_SPAN) -> RefreshPlan:
    """The cheapest exact refresh for `new` (which must hold records inside the partitions)."""
    assert new.earliest is not None and new.newest is not None
    first, newest = floor_bucket(new.earliest), floor_bucket(new.newest)
    span = f"{max_span / timedelta(hours=1):g} h"
    months = [month_key(m) for m in _months(first, newest)]
    p, states = _last_state_bucket(clickhouse, run_id, first, first - max_span)
    if p is None:
        return RefreshPlan(f"{run_id} holds no price_aligned rows in the {span} before "
                           f"{first:%Y-%m-%d %H:%M}: whole months", months=months)
    if not states:
        return RefreshPlan(f"features_wide of {run_id} has no row at {p:%Y-%m-%d %H:%M} to "
                           "continue from: whole months", months=months)
    start = p + BUCKET
    if newest - start > max_span:
        return RefreshPlan(f"window {start:%Y-%m-%d %H:%M} → {newest:%Y-%m-%d %H:%M} is longer "
                           f"than {span}: whole months", months=months)
    return RefreshPlan(f"incremental from {start:%Y-%m-%d %H:%M} to {newest:%Y-%m-%d %H:%M}",
                       start=start, end=month_end(newest))


def _months(first: datetime, last: datetime) -> list[datetime]:
    """Naive Tokyo month starts from the month of `first` to the month of `last`, inclusive."""
    return months_between(month_of(first, PRICE_TZ), add_months(month_of(last, PRICE_TZ), 1))


# --------------------------------------------------------------------------- the refresh


class StaleLiveStateError(KlineError):
    """The stored state the window continues from is missing."""


@dataclass
class RefreshReport:
    rows: dict[str, int]
    seconds: dict[str, float]
    months: list[str]
    deleted: int = 0


def _read(clickhouse: ClickHouseResource, table: str, run_id: str, start: datetime,
          end: datetime, columns: list[str] | None = None) -> pd.DataFrame:
    with clickhouse.client() as client:
        return read_frame(client, clickhouse.table(table),
                          f"run_id = {quote_literal(run_id)} AND "
                          f"{time_range_where('bucket', start, end)}", columns=columns)


def _ema_state(clickhouse: ClickHouseResource, run_id: str, bucket: datetime,
               scopes: list[str]) -> dict[int, object]:
    """minutes → (S,) EMA stored at `bucket` for `scopes` (NaN where a scope has no row)."""
    stored = _read(clickhouse, "features_wide", run_id, bucket, bucket + BUCKET,
                   columns=["scope", *EMA_COLUMNS]).set_index("scope")
    stored = stored.reindex(scopes)
    return {m: stored[f"ema_{m}"].to_numpy(dtype="float64", na_value=float("nan"))
            for m in WINDOWS_MINUTES_TO_BUCKETS}


def _month_segments(clickhouse: ClickHouseResource, run_id: str, start: datetime,
                    end: datetime) -> list[tuple[datetime, datetime, pd.Timestamp | None]]:
    """(segment start, segment end, its last bucket with source) per month of the window:
    features_wide rows of a month end at that month's last source bucket."""
    out = []
    for m in _months(start, end - BUCKET):
        m_start = zoned(m, PRICE_TZ)
        seg = (max(start, m_start), min(end, add_months(m_start, 1)))
        out.append((*seg, last_bucket_with_source(clickhouse, run_id, *seg)))
    return out


def _trim(frame: pd.DataFrame, segments) -> pd.DataFrame:
    """Drop feature rows after their month's last source bucket."""
    if frame.empty:
        return frame
    keep = pd.Series(False, index=frame.index)
    for seg_start, _, last in segments:
        if last is not None:
            keep |= (frame["bucket"] >= pd.Timestamp(seg_start)) & (frame["bucket"] <= last)
    return frame[keep]


def _delete_vanished(clickhouse: ClickHouseResource, run_id: str, old: pd.DataFrame,
                     new: pd.DataFrame) -> int:
    """Delete cross_shop_agg rows of the window that the recomputation no longer has (every
    shop of a bucket dropped as an outlier after a new price): an INSERT cannot remove them."""
    if old.empty:
        return 0
    keys = ["iphone_id", "bucket"]
    merged = old[keys].merge(new[keys] if len(new) else old[keys].iloc[:0], how="left",
                             on=keys, indicator=True)
    gone = merged[merged["_merge"] == "left_only"]
    if gone.empty:
        return 0
    pairs = ", ".join(f"({int(r.iphone_id)}, toDateTime({int(r.bucket.timestamp())}))"
                      for r in gone.itertuples())
    with clickhouse.client() as client:
        client.command(f"DELETE FROM {clickhouse.table('cross_shop_agg')} WHERE run_id = "
                       f"{quote_literal(run_id)} AND (iphone_id, bucket) IN ({pairs})",
                       settings=cl.delete_settings(cl.cluster_name()))
    return len(gone)


def refresh_window(postgres: PostgresResource, clickhouse: ClickHouseResource, device,
                   run_id: str, start: datetime, end: datetime) -> RefreshReport:
    """Recompute and write every price table of `run_id` for the buckets in [start, end)."""
    with clickhouse.writing():  # a run's write: the dozen reads and writes below share it
        return _refresh_window(postgres, clickhouse, device, run_id, start, end)


def _refresh_window(postgres: PostgresResource, clickhouse: ClickHouseResource, device,
                    run_id: str, start: datetime, end: datetime) -> RefreshReport:
    from kline_assets.prices.compute import (
        cohort_series,
        cross_shop,
        features_frame,
        series_from_rows,
    )

    seconds: dict[str, float] = {}
    rows: dict[str, int] = {}
    t0 = time.perf_counter()
    version = _next_version(clickhouse, run_id, start)
    aligned = align_month(postgres, run_id, start, end)
    with clickhouse.client() as client:
        insert_frame(client, clickhouse.table("price_aligned"), aligned.frame.assign(
            inserted_at=version))
    rows["price_aligned"] = len(aligned.frame)
    t0 = _lap(seconds, "price_aligned", t0)

    agg_start = start - (LOOKBACK_BUCKETS - 1) * BUCKET
    computed = cross_shop(_read(clickhouse, "price_aligned", run_id, agg_start, end),
                          run_id, agg_start, start, end, device,
                          lookback_buckets=LOOKBACK_BUCKETS)
    old = _read(clickhouse, "cross_shop_agg", run_id, start, end,
                columns=["iphone_id", "bucket"])
    deleted = _delete_vanished(clickhouse, run_id, old, computed.frame)
    with clickhouse.client() as client:
        insert_frame(client, clickhouse.table("cross_shop_agg"), computed.frame.assign(
            inserted_at=version))
    rows["cross_shop_agg"] = len(computed.frame)
    t0 = _lap(seconds, "cross_shop_agg", t0)

    grid_start = start - ROLLING_WARMUP
    agg = _read(clickhouse, "cross_shop_agg", run_id, grid_start, end)
    last = last_means_before(clickhouse, run_id, grid_start)
    ids, iphone = series_from_rows(agg, last.set_index("iphone_id")["mean"], grid_start, end,
                                   device)
    segments = _month_segments(clickhouse, run_id, start, end)
    lasts = [s[2] for s in segments if s[2] is not None]
    newest = max(lasts) if lasts else None
    members, _ = screen_cohorts(read_cohorts(postgres))
    cohort = cohort_series(iphone, ids, members, cohort_seeds(last, members), device)
    for asset, series in (("features_wide", iphone), ("cohorts", cohort)):
        state = _ema_state(clickhouse, run_id, start - BUCKET, series.scopes)
        _check_state(series, state, grid_start, start, run_id)
        frame = _trim(features_frame(series, run_id, grid_start, start, end, newest, device,
                                     ema_state=state).frame, segments).assign(inserted_at=version)
        with clickhouse.client() as client:
            insert_frame(client, clickhouse.table("features_wide"), frame)
        rows[asset] = len(frame)
        t0 = _lap(seconds, asset, t0)
    return RefreshReport(rows, seconds, [month_key(s[0]) for s in segments], deleted)


def _next_version(clickhouse: ClickHouseResource, run_id: str, since: datetime
                  ) -> pd.Timestamp:
    """The `inserted_at` of the rows a refresh writes (all from `since`, the window's start):
    now, or one second past the newest stored version it may rewrite (the column counts
    seconds). A write in the same second as
    the month's materialization or the refresh before it would otherwise tie, leaving
    ReplacingMergeTree to pick by part order and the uniqueness check to see one version
    stored twice."""
    where = f"run_id = {quote_literal(run_id)} AND bucket >= toDateTime({int(since.timestamp())})"
    newest = " UNION ALL ".join(
        f"SELECT max(toUnixTimestamp(inserted_at)) AS v FROM {clickhouse.table(t)} WHERE {where}"
        for t in ("price_aligned", "cross_shop_agg", "features_wide"))
    with clickhouse.client() as client:
        stored = int(client.query(f"SELECT max(v) FROM ({newest})",
                                  settings=cl.reads()).result_rows[0][0] or 0)
    return pd.Timestamp(max(int(time.time()), stored + 1), unit="s", tz="UTC")


def _check_state(series, state: dict[int, object], grid_start: datetime, start: datetime,
                 run_id: str) -> None:
    """A scope with an input before the window but no stored EMA would restart its EMA: the
    month it belongs to was never materialized (or a refresh failed half-way)."""
    import torch

    from kline_assets.prices.compute import to_numpy

    before = int((start - grid_start) / BUCKET)  # grid columns before the window
    seeded = torch.cat([series.seed[:, None], series.mean[:, :before]], dim=1)
    observed = ~np.isnan(to_numpy(seeded)).all(axis=1)
    missing = observed & np.isnan(next(iter(state.values())))
    if missing.any():
        scopes = [s for s, m in zip(series.scopes, missing, strict=True) if m][:5]
        month = month_key(month_of(start - BUCKET, PRICE_TZ))
        raise StaleLiveStateError(
            f"features_wide of {run_id!r} has no row at {start - BUCKET:%Y-%m-%d %H:%M} for "
            f"{scopes}: materialize partition '{month}|{run_id}' (whole month) first")


def _lap(seconds: dict[str, float], name: str, t0: float) -> float:
    now = time.perf_counter()
    seconds[f"{name}_seconds"] = round(now - t0, 4)
    return now
