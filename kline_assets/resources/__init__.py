"""Shared infrastructure with no domain knowledge: PostgreSQL (+ binary COPY, IO manager),
ClickHouse (+ IO manager), Redis, the torch device. Build them with `build.build_resources`."""

from kline_assets.resources.clickhouse import ClickHouseIOManager, ClickHouseResource
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
