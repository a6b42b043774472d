"""Reads of the price tables that are not an asset's input: carries across the warm-up edge,
the last bucket holding source records, and cohort definitions."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
from psycopg import sql

from kline_assets.resources import ClickHouseResource, PostgresResource


def last_means_before(
    clickhouse: ClickHouseResource, run_id: str, before: datetime
) -> pd.DataFrame:
    """Per iPhone, its last non-NULL cross-shop mean before `before`: (iphone_id, bucket, mean).

    Seeds the forward fill at the warm-up edge, so a month computed alone carries a price set
    long before its warm-up month exactly as one long computation would.
    """
    with clickhouse.client() as client:
        df = client.query_df(
            "SELECT iphone_id, toUnixTimestamp(max(bucket)) AS ts, "
            "argMax(mean, bucket) AS last_mean "
            f"FROM {clickhouse.table('cross_shop_agg')} FINAL "
            f"WHERE run_id = {{run:String}} AND bucket < toDateTime({int(before.timestamp())}) "
            f"AND mean IS NOT NULL GROUP BY iphone_id",
            parameters={"run": run_id},
        )
    return pd.DataFrame({
        "iphone_id": df["iphone_id"].astype(np.int64) if len(df) else pd.Series(dtype=np.int64),
        "ts": df["ts"].astype(np.int64) if len(df) else pd.Series(dtype=np.int64),
        "mean": df["last_mean"].astype(np.float64) if len(df) else pd.Series(dtype=np.float64),
    })


def cohort_seeds(last: pd.DataFrame, members: pd.DataFrame) -> pd.Series:
    """slug → weighted mean of the members whose data is at the cohort's last bucket."""
    joined = members.merge(last, on="iphone_id")
    if joined.empty:
        return pd.Series(dtype=np.float64)
    at_last = joined[joined["ts"] == joined.groupby("slug")["ts"].transform("max")]
    weighted = (at_last["mean"] * at_last["weight"]).groupby(at_last["slug"]).sum()
    return weighted / at_last.groupby("slug")["weight"].sum()


def last_bucket_with_source(
    clickhouse: ClickHouseResource, run_id: str, start: datetime, end: datetime
) -> pd.Timestamp | None:
    """The last bucket in [start, end) that holds any price_aligned record of the run."""
    with clickhouse.client() as client:
        count, ts = client.query(
            f"SELECT count(), toUnixTimestamp(max(bucket)) FROM "
            f"{clickhouse.table('price_aligned')} WHERE run_id = {{run:String}} "
            f"AND bucket >= toDateTime({int(start.timestamp())}) "
            f"AND bucket < toDateTime({int(end.timestamp())})",
            parameters={"run": run_id},
        ).result_rows[0]
    return pd.Timestamp(ts, unit="s", tz="UTC").tz_convert("Asia/Tokyo") if count else None


def read_cohorts(postgres: PostgresResource) -> pd.DataFrame:
    """(slug, iphone_id, weight, known): every member of every cohort, valid or not."""
    query = sql.SQL(
        "SELECT c.slug, m.iphone_id, m.weight, (i.id IS NOT NULL) AS known "
        "FROM {cohort} c LEFT JOIN {member} m ON m.cohort_id = c.id "
        "LEFT JOIN {iphone} i ON i.id = m.iphone_id ORDER BY c.slug, m.iphone_id"
    ).format(cohort=sql.Identifier(*postgres.cohort_table.split(".")),
             member=sql.Identifier(*postgres.cohort_member_table.split(".")),
             iphone=sql.Identifier(*postgres.iphone_table.split(".")))
    postgres.require_tables([postgres.cohort_table, postgres.cohort_member_table])
    with postgres.connect() as conn:
        rows = conn.execute(query).fetchall()
    return pd.DataFrame(rows, columns=["slug", "iphone_id", "weight", "known"])


def screen_cohorts(cohorts: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(valid members, rejected members with a reason): unknown iPhones, weights ≤ 0 or NULL,
    cohorts without members."""
    reason = pd.Series("", index=cohorts.index)
    reason[cohorts["iphone_id"].isna()] = "cohort has no members"
    reason[(reason == "") & ~cohorts["known"].fillna(False).astype(bool)] = "unknown iphone_id"
    weight = pd.to_numeric(cohorts["weight"], errors="coerce")
    reason[(reason == "") & ~(weight > 0)] = "weight is not positive"
    bad = cohorts[reason != ""].assign(reason=reason[reason != ""])
    good = cohorts[reason == ""].assign(iphone_id=lambda d: d["iphone_id"].astype(np.int64),
                                        weight=weight[reason == ""].astype(np.float64))
    return good[["slug", "iphone_id", "weight"]], bad
