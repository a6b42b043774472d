"""Redis for today's intraday bars."""

from __future__ import annotations

import redis
from dagster import ConfigurableResource
from pydantic import Field

from kline_assets.lib.errors import ServiceUnavailableError
from kline_assets.lib.settings import DEFAULT_REDIS_URL
from kline_assets.resources.dsn import check_redis_url, redact


class RedisResource(ConfigurableResource):
    """Today's bars and the tick stream live here; `url` names the database number."""

    url: str = Field(default=DEFAULT_REDIS_URL, description="redis://host:port/db")
    key_prefix: str = "kline"

    def client(self) -> redis.Redis:
        """A connected client; a malformed URL is refused before redis-py parses it."""
        check_redis_url(self.url)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=3)
        try:
            client.ping()
        except redis.RedisError as exc:
            raise ServiceUnavailableError(
                f"Redis unreachable at {redact(self.url)} (KLINE_REDIS_URL): {redact(str(exc))}",
                store="Redis", address=redact(self.url),
            ) from exc
        return client
