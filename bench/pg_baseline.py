"""The baseline the pricing frontend knew before this project: the same /api/overall-bars/
page served from a PostgreSQL table by one plain SQL query through psycopg (the seed's
original design read its bars from PostgreSQL), on the same FastAPI/uvicorn stack, so the
bench compares the read paths and nothing else.

    python bench/pg_baseline.py DSN PORT   # the baseline service (the bench starts it)
"""

from __future__ import annotations

import sys
import threading
from datetime import datetime

from fastapi import FastAPI, Request

TABLE = "features_wide_pg"
PAGE_SQL = (
    f"SELECT bucket, scope, mean, median, std, shop_count, dispersion, inserted_at, "
    f"count(*) OVER () FROM {TABLE} WHERE scope = %s AND bucket >= %s AND bucket <= %s "
    "ORDER BY bucket DESC LIMIT %s OFFSET %s")


def fill(conn, scopes: int, start_epoch: int, buckets: int) -> int:
    """Rows of the same shape and count as the ClickHouse table (one version each, as a
    PostgreSQL upsert would keep them), keyed (scope, bucket) like its sorting key."""
    conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
    conn.execute(f"CREATE UNLOGGED TABLE {TABLE} (scope text, bucket timestamptz, "
                 "mean float8, median float8, std float8, shop_count int, dispersion float8, "
                 "inserted_at timestamptz)")
    conn.execute(
        f"INSERT INTO {TABLE} SELECT 'iphone:' || (s + 1), to_timestamp(%s + b * 900), m, m, "
        "10 + (s * %s + b) %% 13, (s * %s + b) %% 20 + 1, 0.01, '2025-12-01 00:00:00+09' "
        "FROM generate_series(0, %s - 1) s, generate_series(0, %s - 1) b, "
        "LATERAL (SELECT 100000 + 5000 * sin((s * %s + b) / 500.0) + s * 10 AS m) v",
        (start_epoch, buckets, buckets, scopes, buckets, buckets))
    conn.execute(f"ALTER TABLE {TABLE} ADD PRIMARY KEY (scope, bucket)")
    conn.execute(f"ANALYZE {TABLE}")
    return int(conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0])


def create_app(dsn: str):
    """The baseline service: one psycopg connection per worker thread, the page's dicts
    built per row, as a plain FastAPI + psycopg service would. (FastAPI reads the handler's
    annotations from this module's globals, hence its imports at the top.)"""
    import psycopg

    from kline_assets.api.pagination import page
    from kline_assets.prices.read import is_final, iso
    from kline_assets.prices.read.args import TZ

    app = FastAPI()
    local = threading.local()
    names: dict[int, str] = {}

    def conn() -> psycopg.Connection:
        if getattr(local, "conn", None) is None:
            local.conn = psycopg.connect(dsn, autocommit=True)
            names.update(local.conn.execute("SELECT id, name FROM iphone").fetchall())
        return local.conn

    def bound(text: str) -> datetime:
        value = datetime.fromisoformat(text)
        return value if value.tzinfo else value.replace(tzinfo=TZ)

    @app.get("/api/overall-bars/")
    def overall_bars(request: Request, iphone: int, bucket__gte: str, bucket__lte: str,
                     limit: int = 100, offset: int = 0) -> dict:
        rows = conn().execute(PAGE_SQL, (f"iphone:{iphone}", bound(bucket__gte),
                                         bound(bucket__lte), limit, offset)).fetchall()
        now = datetime.now(TZ)
        results = [{
            "bucket": iso(int(r[0].timestamp())), "iphone": iphone,
            "iphone_name": names.get(iphone), "mean": r[2], "median": r[3], "std": r[4],
            "shop_count": r[5], "dispersion": r[6],
            "is_final": is_final(r[0], now), "updated_at": iso(int(r[7].timestamp()))}
            for r in rows]
        return page(request, rows[0][8] if rows else 0, results, limit, offset)

    @app.get("/healthz")
    def healthz() -> dict:
        conn().execute("SELECT 1")
        return {"status": "ok", "cache": {"hits": 0, "misses": 0}}

    return app


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(create_app(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]),
                log_level="warning", access_log=False)
