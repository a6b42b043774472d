"""Fixtures for real services: a fresh PostgreSQL database and ClickHouse database per test.

chdb opens one data path per process, so each pytest process (each xdist worker) shares one
embedded path and isolates tests by ClickHouse database. Set KLINE_TEST_CLICKHOUSE_DSN to run
against a server. Under xdist every worker has its own embedded path, Redis database number,
DAGSTER_HOME and PostgreSQL databases, so no test sees another worker's state.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from dagster import DagsterInstance, instance_for_test

from kline_assets.lib.settings import SQL_DIR
from kline_assets.resources import ClickHouseResource, PostgresResource
from kline_assets_tests.support.databases import ADMIN_DSN
from kline_assets_tests.support.imports import import_anyio_eagerly

import_anyio_eagerly()  # before any test serves from a thread: see support/imports.py

REDIS_TEST_URL = os.environ.get("KLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379")
# Databases 0–7 stay clear for the product's default (0) and whatever else a user runs. A
# second checkout testing on the same machine at the same time sets another first database.
REDIS_FIRST_TEST_DB = int(os.environ.get("KLINE_TEST_REDIS_FIRST_DB", "8"))
REDIS_DATABASES = 16


def worker_index() -> int:
    """0 without xdist, n for xdist's worker gw<n>."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(name.removeprefix("gw") or 0)


def worker_redis_url() -> str:
    """This worker's own Redis database, flushed by the fixtures that use it."""
    db = REDIS_FIRST_TEST_DB + worker_index()
    if db >= REDIS_DATABASES:
        raise pytest.UsageError(
            f"xdist worker {worker_index()} has no Redis database of its own "
            f"({REDIS_FIRST_TEST_DB}…{REDIS_DATABASES - 1}): run at most "
            f"{REDIS_DATABASES - REDIS_FIRST_TEST_DB} workers")
    return f"{REDIS_TEST_URL}/{db}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs CUDA; skipped without it")
    config.addinivalue_line("markers", "timescale: needs KLINE_TIMESCALE_DSN with the extension")
    config.addinivalue_line(
        "markers", "slow: end to end (kill -9, Chromium, whole pipelines); `make test-fast` "
        "leaves these out")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Say loudly when the TimescaleDB path went untested: a skip line is easy to miss, and
    only a real TimescaleDB (KLINE_TIMESCALE_DSN) exercises the continuous aggregate."""
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if "timescale" in getattr(r, "keywords", {})]
    if skipped:
        terminalreporter.write_sep(
            "!", f"{len(skipped)} TimescaleDB tests were SKIPPED: KLINE_TIMESCALE_DSN is not "
            "set, so the continuous aggregate and hypertable paths are untested in "
            "this run", yellow=True, bold=True)


def _with_dbname(dsn: str, dbname: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**info)


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """DSN of a new, empty PostgreSQL database, dropped after the test."""
    name = f"kline_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_dbname(ADMIN_DSN, name)
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url() -> Iterator[str]:
    """This worker's Redis database, empty at the start and flushed after the test."""
    import redis

    url = worker_redis_url()
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@pytest.fixture(scope="session", autouse=True)
def worker_environment(tmp_path_factory: pytest.TempPathFactory, clickhouse_dsn: str
                       ) -> Iterator[None]:
    """Commands a test starts without naming their stores (`kline`, `dagster`) find this
    worker's: its DAGSTER_HOME, embedded ClickHouse path and Redis database, never the
    repository's `.kline/` or another worker's."""
    from kline_assets.lib.instance import ensure_home

    saved = {k: os.environ.get(k) for k in
             ("DAGSTER_HOME", "KLINE_CLICKHOUSE_DSN", "KLINE_REDIS_URL")}
    os.environ["DAGSTER_HOME"] = str(tmp_path_factory.mktemp("dagster_home"))
    ensure_home()
    os.environ["KLINE_CLICKHOUSE_DSN"] = clickhouse_dsn
    os.environ["KLINE_REDIS_URL"] = worker_redis_url()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def postgres(pg_dsn: str) -> PostgresResource:
    """A PostgresResource on a fresh database holding the source schema."""
    resource = PostgresResource(dsn=pg_dsn)
    resource.execute_file(SQL_DIR / "postgres" / "source.sql")
    return resource


@pytest.fixture(scope="session")
def clickhouse_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    server = os.environ.get("KLINE_TEST_CLICKHOUSE_DSN")
    if server:
        return server
    return f"chdb://{tmp_path_factory.mktemp('chdb') / 'store'}"


@pytest.fixture
def clickhouse(clickhouse_dsn: str) -> Iterator[ClickHouseResource]:
    """A ClickHouseResource on its own database with the tables of init.sql, dropped after."""
    resource = ClickHouseResource(dsn=clickhouse_dsn, database=f"t_{uuid.uuid4().hex[:10]}")
    resource.ensure_schema()
    try:
        yield resource
    finally:
        resource.drop_database()


@pytest.fixture
def instance() -> DagsterInstance:
    """An in-memory instance: sqlite storage costs ~3 s per test to create."""
    return DagsterInstance.ephemeral()


@pytest.fixture
def persistent_instance() -> Iterator[DagsterInstance]:
    """A sqlite-backed instance in a temporary DAGSTER_HOME, for tests across processes."""
    with instance_for_test() as inst:
        yield inst


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def read_store(clickhouse_dsn: str):
    """The read side's store (support/readapi.py): demo prices of one month materialized for
    `live` and copied to `backfill_v3`, on a session database of each kind."""
    from kline_assets_tests.support.readapi import build_read_store, scratch_database

    with scratch_database(ADMIN_DSN) as dsn:
        store = build_read_store(dsn, clickhouse_dsn)
        try:
            yield store
        finally:
            store.clickhouse.drop_database()
