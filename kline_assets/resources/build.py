"""The one place resources are built: Dagster definitions, the CLI, the demo, benchmarks and
tests all call `build_resources`, so every entry point agrees on where data lives."""

from __future__ import annotations

import os
from typing import Any

from dagster import EnvVar

from kline_assets.lib.settings import load_settings
from kline_assets.resources.clickhouse import ClickHouseIOManager, ClickHouseResource
from kline_assets.resources.device import TorchDeviceResource
from kline_assets.resources.postgres import PostgresResource
from kline_assets.resources.postgres_io import PostgresIOManager
from kline_assets.resources.redis import RedisResource


def build_resources(
    *,
    pg_dsn: str | None = None,
    clickhouse_dsn: str | None = None,
    clickhouse_database: str | None = None,
    redis_url: str | None = None,
    device: str | None = None,
    plain: bool = False,
) -> dict[str, Any]:
    """Every resource key the definitions use; keyword overrides win over the environment.

    `plain=True` resolves environment variables now: for the CLI, the demo, benchmarks and
    tests, which use the resources directly rather than through Dagster.
    """
    s = load_settings()

    def pick(name: str, override: str | None, default: str) -> Any:
        """An explicit override; else the variable when set — as an EnvVar, so the UI shows
        where the value came from, or its value when `plain`; else the embedded default."""
        if override is not None:
            return override
        if os.environ.get(name):
            return os.environ[name] if plain else EnvVar(name)
        return default

    clickhouse = ClickHouseResource(
        dsn=pick("KLINE_CLICKHOUSE_DSN", clickhouse_dsn, s.clickhouse_dsn),
        database=pick("KLINE_CLICKHOUSE_DATABASE", clickhouse_database,
                      s.clickhouse_database),
    )
    postgres = PostgresResource(dsn=pick("KLINE_PG_DSN", pg_dsn, s.pg_dsn))
    return {
        "postgres": postgres,
        "postgres_io_manager": PostgresIOManager(postgres=postgres),
        "clickhouse": clickhouse,
        "clickhouse_io_manager": ClickHouseIOManager(clickhouse=clickhouse),
        "redis": RedisResource(url=pick("KLINE_REDIS_URL", redis_url, s.redis_url)),
        "torch_device": TorchDeviceResource(device=pick("KLINE_DEVICE", device, s.device)),
    }


def store_resources(**overrides: str | None) -> dict[str, Any]:
    """The resources with environment values resolved, for use outside Dagster."""
    return build_resources(plain=True, **overrides)
