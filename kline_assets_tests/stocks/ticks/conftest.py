"""Redis for the live-bar tests: a database number of their own, flushed before and after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from kline_assets.resources.redis import RedisResource

REDIS_URL = "redis://127.0.0.1:6379/12"


@pytest.fixture
def redis_url() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = RedisResource(url=redis_url).client()
    try:
        yield client
    finally:
        client.close()
