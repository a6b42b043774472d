"""Shared infrastructure: PostgreSQL (+ IO manager), ClickHouse (+ IO manager), Redis, torch
device."""

from kline_assets.resources.clickhouse import ClickHouseResource
from kline_assets.resources.clickhouse_io import ClickHouseIOManager
from kline_assets.resources.device import TorchDeviceResource, resolve_device
from kline_assets.resources.postgres import PostgresResource
from kline_assets.resources.postgres_io import ArrowStream, PostgresIOManager
from kline_assets.resources.redis import RedisResource

__all__ = [
    "ArrowStream",
    "ClickHouseIOManager",
    "ClickHouseResource",
    "PostgresIOManager",
    "PostgresResource",
    "RedisResource",
    "TorchDeviceResource",
    "resolve_device",
]
