"""Load the demo into PostgreSQL, touching only rows the demo itself created.

The database may hold somebody else's rows: a scraper's price records, a real catalogue, real
bars. The demo therefore books what it inserts in `kline_demo_load` (id ranges per table, and
per stock code a span of bar times) and a reload deletes exactly those rows. Foreign rows that
would collide with the demo's catalogue ids or bars stop the load before anything changes.
Price record ids come from a block of their own: the previous load's block when it is still
free (so reloading keeps the ids), else a new block above every id and the id sequence.
Everything goes through the shared binary COPY encoder, in one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import psycopg
import pyarrow as pa
from psycopg import sql

from kline_assets.demo.catalog import STOCK_CODES, DemoConfig, DemoError, generate_catalog
from kline_assets.demo.prices import generate_price_records
from kline_assets.demo.stocks import generate_stock_bars
from kline_assets.lib.settings import PRICE_TZ, SQL_DIR
from kline_assets.prices.source import (
    COHORT_MEMBER_TABLE,
    COHORT_TABLE,
    IPHONE_TABLE,
    PRICE_TABLE,
    SHOP_TABLE,
)
from kline_assets.resources.pgcopy import copy_table, table_types
from kline_assets.resources.postgres import PostgresResource, table_ident
from kline_assets.stocks import STOCK_TABLE

LOAD_TABLE = "kline_demo_load"
_LOAD_DDL = f"""
CREATE TABLE IF NOT EXISTS {LOAD_TABLE} (
    table_name text NOT NULL,   -- a table the demo inserted rows into
    first_id   bigint,          -- id tables: the demo owns key values first_id..last_id
    last_id    bigint,
    code       text,            -- stock bars: the demo owns this code's bars in
    first_time timestamp,       -- [first_time, last_time]
    last_time  timestamp,
    loaded_at  timestamptz NOT NULL DEFAULT now()
)"""

Progress = Callable[[str], None]


@dataclass(frozen=True)
class _Owned:
    """How a table's demo rows are recognised: a key column within booked id ranges, or
    (stock bars) a code and a time within booked spans."""

    table: str
    key: str | None  # None: stock bars

    def condition(self) -> sql.Composable:
        booked = sql.SQL("b.table_name = {}").format(sql.Literal(self.table))
        if self.key is None:
            match = sql.SQL("t.code = b.code AND t.time BETWEEN b.first_time AND b.last_time")
        else:
            match = sql.SQL("t.{} BETWEEN b.first_id AND b.last_id").format(
                sql.Identifier(self.key))
        return sql.SQL("EXISTS (SELECT 1 FROM {} b WHERE {} AND {})").format(
            sql.Identifier(LOAD_TABLE), booked, match)


def _exists(conn: psycopg.Connection, table: str, where: sql.Composable,
            params: tuple = ()) -> bool:
    query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {} t WHERE {})").format(table_ident(table), where)
    return bool(conn.execute(query, params).fetchone()[0])


def _conflicts(conn: psycopg.Connection, postgres: PostgresResource, cfg: DemoConfig,
               catalog: dict[str, pd.DataFrame]) -> list[str]:
    """Foreign rows on the keys the demo needs: catalogue ids and slugs, and bars of the demo
    codes inside the stock window."""
    found = []
    for table, key, frame in (
        (IPHONE_TABLE, "id", catalog["iphone"]),
        (SHOP_TABLE, "id", catalog["shop"]),
        (COHORT_TABLE, "id", catalog["cohort"]),
        (COHORT_MEMBER_TABLE, "cohort_id", catalog["cohort"]),
    ):
        ids = frame["id"].tolist()
        foreign = sql.SQL("t.{} = ANY(%s) AND NOT {}").format(
            sql.Identifier(key), _Owned(table, key).condition())
        if ids and _exists(conn, table, foreign, (ids,)):
            found.append(f"{table} ({key} {min(ids)}..{max(ids)})")
    slugs = catalog["cohort"]["slug"].tolist()
    foreign = sql.SQL("t.slug = ANY(%s) AND NOT {}").format(
        _Owned(COHORT_TABLE, "id").condition())
    if slugs and _exists(conn, COHORT_TABLE, foreign, (slugs,)):
        found.append(f"{COHORT_TABLE} (slugs {', '.join(slugs)})")
    codes = [c for c, _ in STOCK_CODES[: cfg.stock_codes]]
    s_start, s_end = cfg.stock_window
    foreign = sql.SQL("t.code = ANY(%s) AND t.time >= %s AND t.time < %s AND NOT {}").format(
        _Owned(STOCK_TABLE, None).condition())
    if codes and s_end > s_start and _exists(
        conn, STOCK_TABLE, foreign,
        (codes, s_start.to_pydatetime(), s_end.to_pydatetime()),
    ):
        found.append(f"{STOCK_TABLE} (demo codes in {s_start:%Y-%m}..{s_end:%Y-%m})")
    return found


def _delete_owned(conn: psycopg.Connection, owned: _Owned) -> None:
    """Delete the demo's rows of a table; TRUNCATE instead when every row is the demo's (the
    usual demo database: same result, and the following COPY needs no uniqueness checks
    against millions of dead index entries). Both are transactional."""
    t = table_ident(owned.table)
    if _exists(conn, owned.table, sql.SQL("NOT {}").format(owned.condition())):
        conn.execute(sql.SQL("DELETE FROM {} t WHERE {}").format(t, owned.condition()))
    else:
        conn.execute(sql.SQL("TRUNCATE {}").format(t))


def _id_block(conn: psycopg.Connection, table: str, n: int, previous: int | None
              ) -> tuple[int, str]:
    """The offset of the price record ids (ids are offset+1..offset+n) and the id sequence.

    Called with the demo's old rows already deleted and the table locked against inserts.
    """
    seq = conn.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table,)).fetchone()[0]
    t = table_ident(table)
    if previous is not None:
        base = previous - 1
        taken = conn.execute(
            sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE id BETWEEN %s AND %s)").format(t),
            (base + 1, base + n),
        ).fetchone()[0]
        if not taken:
            return base, seq
    last_value, is_called = conn.execute(
        sql.SQL("SELECT last_value, is_called FROM {}").format(sql.SQL(seq))
    ).fetchone()
    top = conn.execute(sql.SQL("SELECT coalesce(max(id), 0) FROM {}").format(t)).fetchone()[0]
    return max(top, last_value if is_called else 0), seq


def _per_month(cfg: DemoConfig, records: pd.DataFrame) -> dict[str, int]:
    """Price records per Tokyo month ('YYYY-MM'); records are in recorded_at order."""
    edges = [pd.Timestamp(key, tz=PRICE_TZ) for key in cfg.price_months] + [cfg.window[1]]
    at = records["recorded_at"].searchsorted(edges)
    return {
        key[:7]: int(hi - lo) for key, lo, hi in zip(cfg.price_months, at[:-1], at[1:], strict=True)
    }


COPY_SLICE = 1 << 16


def _copy(conn: psycopg.Connection, table: str, frame: pd.DataFrame) -> int:
    """COPY a frame in slices: the encoder groups a slice's rows by NULL layout, and short
    slices keep the ids nearly ascending, so PostgreSQL mostly appends to the indexes."""
    data = pa.Table.from_pandas(frame, preserve_index=False)
    types = table_types(conn, table)
    return sum(copy_table(conn, table, data.slice(lo, COPY_SLICE), types)
               for lo in range(0, data.num_rows, COPY_SLICE))


def load_demo(postgres: PostgresResource, cfg: DemoConfig = DemoConfig(),
              progress: Progress | None = None) -> dict[str, int]:
    """Create the source schema and replace the demo's own rows in one transaction.

    Loading twice leaves the same rows with the same ids; rows the demo did not create are
    never deleted, and foreign rows on the demo's catalogue ids or bars raise DemoError before
    anything changes. Returns rows per table.
    """
    say = progress or (lambda _: None)
    t0 = time.perf_counter()
    catalog = generate_catalog(cfg)
    records = generate_price_records(cfg)
    bars = generate_stock_bars(cfg)
    say("generated price records " + ", ".join(
        f"{m}: {n:,}" for m, n in _per_month(cfg, records).items()
    ) + f"; {len(bars):,} stock bars ({time.perf_counter() - t0:.1f}s)")

    pt = PRICE_TABLE
    owned = [
        _Owned(COHORT_MEMBER_TABLE, "cohort_id"),
        _Owned(COHORT_TABLE, "id"),
        _Owned(IPHONE_TABLE, "id"),
        _Owned(SHOP_TABLE, "id"),
        _Owned(pt, "id"),
        _Owned(STOCK_TABLE, None),
    ]
    with postgres.connect() as conn:
        postgres.execute_file(SQL_DIR / "postgres" / "source.sql", conn)
        conn.execute(_LOAD_DDL)
        # Scrapers' inserts wait until the demo's id block is booked and committed.
        conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(table_ident(pt)))
        conflicts = _conflicts(conn, postgres, cfg, catalog)
        if conflicts:
            raise DemoError(
                "rows the demo did not create hold its keys: " + "; ".join(conflicts)
                + " — load the demo into a database of its own (KLINE_PG_DSN)"
            )
        previous = conn.execute(
            sql.SQL("SELECT min(first_id) FROM {} WHERE table_name = %s").format(
                sql.Identifier(LOAD_TABLE)), (pt,),
        ).fetchone()[0]
        t0 = time.perf_counter()
        for o in owned:
            _delete_owned(conn, o)
        conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(LOAD_TABLE)))
        say(f"removed the previous demo rows ({time.perf_counter() - t0:.1f}s)")

        base, seq = _id_block(conn, pt, len(records), previous)
        records = records.assign(id=records["id"] + base)
        counts: dict[str, int] = {}
        for table, frame in (
            (IPHONE_TABLE, catalog["iphone"]),
            (SHOP_TABLE, catalog["shop"]),
            (COHORT_TABLE, catalog["cohort"]),
            (COHORT_MEMBER_TABLE, catalog["cohort_member"]),
            (pt, records),
            (STOCK_TABLE, bars),
        ):
            t0 = time.perf_counter()
            counts[table] = _copy(conn, table, frame)
            if len(frame) > 1000:
                say(f"COPY {table}: {counts[table]:,} rows ({time.perf_counter() - t0:.1f}s)")
        conn.execute(
            sql.SQL("SELECT setval(%s, GREATEST(%s, (SELECT coalesce(max(id), 0) FROM {}), "
                    "(SELECT last_value FROM {})))").format(table_ident(pt), sql.SQL(seq)),
            (seq, base + max(len(records), 1)),
        )
        _book(conn, postgres, catalog, records, bars)
    return counts


def _book(conn: psycopg.Connection, postgres: PostgresResource,
          catalog: dict[str, pd.DataFrame], records: pd.DataFrame, bars: pd.DataFrame) -> None:
    """Record which rows this load created, so the next load deletes exactly those."""
    ranges = [
        (IPHONE_TABLE, catalog["iphone"]["id"]),
        (SHOP_TABLE, catalog["shop"]["id"]),
        (COHORT_TABLE, catalog["cohort"]["id"]),
        (COHORT_MEMBER_TABLE, catalog["cohort"]["id"]),
        (PRICE_TABLE, records["id"]),
    ]
    insert = sql.SQL(
        "INSERT INTO {} (table_name, first_id, last_id, code, first_time, last_time) "
        "VALUES (%s, %s, %s, %s, %s, %s)"
    ).format(sql.Identifier(LOAD_TABLE))
    with conn.cursor() as cur:
        rows = [(t, int(ids.min()), int(ids.max()), None, None, None)
                for t, ids in ranges if len(ids)]
        if len(bars):
            span = bars.groupby("code", sort=False)["time"].agg(["min", "max"])
            rows += [(STOCK_TABLE, None, None, code, lo.to_pydatetime(),
                      hi.to_pydatetime()) for code, lo, hi in span.itertuples()]
        cur.executemany(insert, rows)
