"""The resource set every domain uses, configured from the environment (EnvVar)."""

from __future__ import annotations

from typing import Any

from dagster import EnvVar

from kline_assets.resources import (
    ClickHouseIOManager,
    ClickHouseResource,
    PostgresResource,
    RedisResource,
    TorchDeviceResource,
)
from kline_assets.settings import load_settings


def _env_or_default(name: str, default: str) -> Any:
    """EnvVar when set, so the UI shows where the value came from; the default otherwise."""
    import os

    return EnvVar(name) if os.environ.get(name) else default


def build_resources() -> dict[str, Any]:
    s = load_settings()
    clickhouse = ClickHouseResource(
        dsn=_env_or_default("KLINE_CLICKHOUSE_DSN", s.clickhouse_dsn),
        database=_env_or_default("KLINE_CLICKHOUSE_DATABASE", s.clickhouse_database),
    )
    return {
        "postgres": PostgresResource(dsn=_env_or_default("KLINE_PG_DSN", s.pg_dsn)),
        "clickhouse": clickhouse,
        "clickhouse_io_manager": ClickHouseIOManager(clickhouse=clickhouse),
        "redis": RedisResource(url=_env_or_default("KLINE_REDIS_URL", s.redis_url)),
        "torch_device": TorchDeviceResource(device=_env_or_default("KLINE_DEVICE", s.device)),
    }
