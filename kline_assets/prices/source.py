"""Reading the price domain's PostgreSQL tables: raw records (screened) and cohorts.

Bad rows are never dropped silently: every rejection is counted by reason and a sample is
kept for the materialization's metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
from psycopg import sql

from kline_assets.resources.postgres import PostgresResource, table_ident

RECORD_COLUMNS = {
    "id": pa.int64(),
    "shop_id": pa.int64(),
    "iphone_id": pa.int64(),
    "price_new": pa.int64(),
    "price_grade_a": pa.int64(),
    "price_grade_b": pa.int64(),
    "recorded_at": pa.timestamp("us", tz="UTC"),
}
UINT32_MAX = 2**32 - 1

# The source tables, written by the scrapers and the catalogue outside this project.
PRICE_TABLE = "purchasing_shop_price_record"
IPHONE_TABLE = "iphone"
SHOP_TABLE = "shop"
COHORT_TABLE = "cohort"
COHORT_MEMBER_TABLE = "cohort_member"
SOURCE_TABLES = (PRICE_TABLE, IPHONE_TABLE, SHOP_TABLE, COHORT_TABLE, COHORT_MEMBER_TABLE)


def records_query(
    postgres: PostgresResource,
    start: datetime,
    end: datetime,
    iphone_ids: list[int] | None = None,
    shop_ids: list[int] | None = None,
) -> sql.Composed:
    """Records with recorded_at in [start, end).

    recorded_at travels as UTC text (copy_out pins the session zone) that Arrow parses; that
    is cheaper than PostgreSQL's numeric `extract(epoch …)`.
    """
    conditions = [
        sql.SQL("recorded_at >= {}").format(sql.Literal(start)),
        sql.SQL("recorded_at < {}").format(sql.Literal(end)),
    ]
    if iphone_ids:
        conditions.append(sql.SQL("iphone_id = ANY({})").format(sql.Literal(list(iphone_ids))))
    if shop_ids:
        conditions.append(sql.SQL("shop_id = ANY({})").format(sql.Literal(list(shop_ids))))
    return sql.SQL(
        "SELECT id, shop_id, iphone_id, price_new, price_grade_a, price_grade_b, "
        "recorded_at "
        "FROM {} WHERE {}"
    ).format(
        table_ident(PRICE_TABLE), sql.SQL(" AND ").join(conditions)
    )


def read_records(
    postgres: PostgresResource,
    start: datetime,
    end: datetime,
    iphone_ids: list[int] | None = None,
    shop_ids: list[int] | None = None,
) -> pa.Table:
    postgres.require_tables([PRICE_TABLE, SHOP_TABLE, IPHONE_TABLE])
    return postgres.copy_out(
        records_query(postgres, start, end, iphone_ids, shop_ids), column_types=RECORD_COLUMNS
    )


def has_records(postgres: PostgresResource, start: datetime, end: datetime) -> bool:
    """Whether any raw record has recorded_at in [start, end)."""
    with postgres.connect() as conn:
        return bool(conn.execute(
            sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE recorded_at >= %s "
                    "AND recorded_at < %s)").format(table_ident(PRICE_TABLE)), (start, end),
        ).fetchone()[0])


def known_ids(postgres: PostgresResource, table: str) -> np.ndarray:
    with postgres.connect() as conn:
        query = sql.SQL("SELECT id FROM {}").format(table_ident(table))
        rows = conn.execute(query).fetchall()
    return np.array(sorted(r[0] for r in rows), dtype=np.int64)


@dataclass
class Screened:
    """Arrays of the rows that passed, with rejection counts and a sample of rejected rows."""

    columns: dict[str, np.ndarray]
    rejected: dict[str, int] = field(default_factory=dict)
    grade_nulled: int = 0
    sample: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


def _column(table: pa.Table, name: str) -> np.ndarray:
    """int64 values with nulls as -1 (prices are screened positive, ids are non-negative)."""
    return table.column(name).fill_null(-1).to_numpy().astype(np.int64, copy=False)


def screen_records(
    table: pa.Table, shops: np.ndarray, iphones: np.ndarray, sample_size: int = 20
) -> Screened:
    """Reject rows with NULL/non-positive/oversized prices or unknown shop/iPhone ids.

    A non-positive grade A/B price is not a reason to lose the row's new price: it becomes
    NULL and is counted.
    """
    cols = {name: _column(table, name) for name in RECORD_COLUMNS if name != "recorded_at"}
    cols["recorded_us"] = table.column("recorded_at").cast(pa.int64()).to_numpy()
    price = cols["price_new"]
    reasons = {
        "price_new is NULL": table.column("price_new").is_null().to_numpy(zero_copy_only=False),
        "price_new <= 0": (price <= 0) & table.column("price_new").is_valid().to_numpy(
            zero_copy_only=False
        ),
        "price_new > UInt32 max": price > UINT32_MAX,
        "unknown shop_id": ~np.isin(cols["shop_id"], shops),
        "unknown iphone_id": ~np.isin(cols["iphone_id"], iphones),
    }
    bad = np.zeros(len(price), dtype=bool)
    rejected: dict[str, int] = {}
    for reason, mask in reasons.items():
        fresh = mask & ~bad  # a row is counted under its first reason only
        if fresh.any():
            rejected[reason] = int(fresh.sum())
        bad |= mask
    sample = pd.DataFrame()
    if bad.any():
        idx = np.flatnonzero(bad)[:sample_size]
        sample = table.take(pa.array(idx)).to_pandas()
    keep = ~bad
    out = {name: values[keep] for name, values in cols.items()}
    grade_nulled = 0
    for grade in ("price_grade_a", "price_grade_b"):
        present = table.column(grade).is_valid().to_numpy(zero_copy_only=False)[keep]
        g = out[grade]
        invalid = present & ((g <= 0) | (g > UINT32_MAX))
        grade_nulled += int(invalid.sum())
        g[invalid | ~present] = -1  # -1 marks NULL from here on
    return Screened(columns=out, rejected=rejected, grade_nulled=grade_nulled, sample=sample)


def read_cohorts(postgres: PostgresResource) -> pd.DataFrame:
    """(slug, iphone_id, weight, known): every member of every cohort, valid or not."""
    query = sql.SQL(
        "SELECT c.slug, m.iphone_id, m.weight, (i.id IS NOT NULL) AS known "
        "FROM {cohort} c LEFT JOIN {member} m ON m.cohort_id = c.id "
        "LEFT JOIN {iphone} i ON i.id = m.iphone_id ORDER BY c.slug, m.iphone_id"
    ).format(cohort=table_ident(COHORT_TABLE), member=table_ident(COHORT_MEMBER_TABLE),
             iphone=table_ident(IPHONE_TABLE))
    postgres.require_tables([COHORT_TABLE, COHORT_MEMBER_TABLE])
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
