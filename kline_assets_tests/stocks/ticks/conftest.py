"""Redis for the live-bar tests: the worker's database (root conftest), flushed before and
after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from kline_assets.resources.redis import RedisResource


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = RedisResource(url=redis_url).client()
    try:
        yield client
    finally:
        client.close()
