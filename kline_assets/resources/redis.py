"""Redis for today's intraday bars."""

from __future__ import annotations

import redis
from dagster import ConfigurableResource
from pydantic import Field

from kline_assets.errors import ServiceUnavailableError
from kline_assets.resources.dsn import redact
from kline_assets.settings import DEFAULT_REDIS_URL


class RedisResource(ConfigurableResource):
    url: str = Field(default=DEFAULT_REDIS_URL, description="redis://host:port/db")
    key_prefix: str = "kline"

    def client(self) -> redis.Redis:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=3)
        try:
            client.ping()
        except redis.RedisError as exc:
            raise ServiceUnavailableError(
                f"Redis unreachable at {redact(self.url)} (KLINE_REDIS_URL): {redact(str(exc))}",
                store="Redis", address=redact(self.url),
            ) from exc
        return client
