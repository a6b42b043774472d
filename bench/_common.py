"""Shared bench plumbing: a throwaway PostgreSQL database and an embedded ClickHouse store."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from kline_assets.resources import ClickHouseResource, PostgresResource
from kline_assets.resources.build import store_resources
from kline_assets.settings import DATA_DIR, SQL_DIR

ADMIN_DSN = os.environ.get("KLINE_BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def bench_postgres(name: str) -> Iterator[PostgresResource]:
    """A fresh database `name` with the source schema, dropped afterwards."""
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN)
    info["dbname"] = name
    pg = store_resources(pg_dsn=psycopg.conninfo.make_conninfo(**info))["postgres"]
    pg.execute_file(SQL_DIR / "postgres" / "source.sql")
    try:
        yield pg
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def bench_clickhouse(database: str) -> Iterator[ClickHouseResource]:
    dsn = os.environ.get("KLINE_CLICKHOUSE_DSN", f"chdb://{DATA_DIR / 'bench' / 'clickhouse'}")
    ch = store_resources(clickhouse_dsn=dsn, clickhouse_database=database)["clickhouse"]
    ch.drop_database()
    ch.ensure_schema()
    try:
        yield ch
    finally:
        ch.drop_database()


@contextmanager
def timed(results: dict[str, float], name: str) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    results[name] = time.perf_counter() - t0


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
