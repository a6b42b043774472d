"""Fixtures of the stock tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from dagster import DagsterInstance, instance_for_test

from kline_assets.resources.postgres import PostgresResource
from kline_assets.stocks import SOURCE_SQL
from kline_assets_tests.support.stocks import TIMESCALE_DSN, dirty_bars, with_dbname, write_csv


@pytest.fixture(scope="module")
def instance() -> Iterator[DagsterInstance]:
    """One Dagster instance per module (overrides the root conftest's per-test one): creating
    one costs ~2 s of SQLite migrations, and each test only reads the results of its own runs."""
    with instance_for_test() as inst:
        yield inst


@pytest.fixture
def landed(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """Landing files, one per trading day, as a vendor delivers them."""
    bars = dirty_bars()
    for day, frame in bars.groupby(bars["time"].dt.strftime("%Y-%m-%d")):
        write_csv(frame, tmp_path / day[:7] / f"{day}.csv")
    return tmp_path, bars


@pytest.fixture
def timescale() -> Iterator[PostgresResource]:
    """A fresh database with the timescaledb extension and the source schema."""
    if not TIMESCALE_DSN:
        pytest.skip("KLINE_TIMESCALE_DSN is not set (a PostgreSQL server with TimescaleDB)")
    try:
        admin = psycopg.connect(TIMESCALE_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"KLINE_TIMESCALE_DSN unreachable: {exc}")
    with admin:
        available = admin.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
        if available is None:
            pytest.skip("the server at KLINE_TIMESCALE_DSN has no timescaledb extension")
        name = f"kline_ts_{uuid.uuid4().hex[:10]}"
        admin.execute(f'CREATE DATABASE "{name}"')
    resource = PostgresResource(dsn=with_dbname(TIMESCALE_DSN, name))
    try:
        with resource.connect() as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        resource.execute_file(SOURCE_SQL)
        yield resource
    finally:
        with psycopg.connect(TIMESCALE_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
