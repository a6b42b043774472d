"""Looking at the embedded engine's lock from outside, as another process would."""

from __future__ import annotations

from filelock import FileLock, Timeout

from kline_assets.resources.clickhouse import ClickHouseResource
from kline_assets.resources.clickhouse.engine import embedded_path, lock_path


def lock_is_free(ch: ClickHouseResource) -> bool:
    other = FileLock(str(lock_path(embedded_path(ch.dsn))))
    try:
        other.acquire(timeout=0)
    except Timeout:
        return False
    other.release()
    return True
