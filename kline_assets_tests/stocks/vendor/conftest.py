"""Fixtures of the vendor-feed tests: one PostgreSQL database for the module (its tables
emptied before each test: creating a database per test costs more than the tests), and the
worker's own Redis database (root conftest), flushed before and after each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from kline_assets.resources.postgres import PostgresResource
from kline_assets.resources.redis import RedisResource
from kline_assets.stocks.vendor.store import ensure_schema
from kline_assets_tests.conftest import ADMIN_DSN
from kline_assets_tests.support.readapi import scratch_database
from kline_assets_tests.support.vendor import vendor_bars, write_vendor_csv

TABLES = ("stock_1min_qfq", "stock_bars_vendor", "stock_vendor_ingest",
          "stock_vendor_corrections")


@pytest.fixture(scope="module")
def vendor_db() -> Iterator[PostgresResource]:
    with scratch_database(ADMIN_DSN) as dsn:
        postgres = PostgresResource(dsn=dsn)
        ensure_schema(postgres)
        yield postgres


@pytest.fixture
def vendor_pg(vendor_db: PostgresResource) -> PostgresResource:
    with vendor_db.connect() as conn:
        conn.execute(f"TRUNCATE {', '.join(TABLES)}")
        conn.execute("DROP TABLE IF EXISTS stock_monthly_kline")
    return vendor_db


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = RedisResource(url=redis_url).client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def day_bars():
    """Two codes, one day: 480 one-minute and 96 five-minute bars."""
    return vendor_bars()


@pytest.fixture
def day_file(day_bars, tmp_path: Path) -> Path:
    return write_vendor_csv(day_bars, tmp_path / "vendor.csv")
