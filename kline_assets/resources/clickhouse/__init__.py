"""ClickHouse: the resource, the SQL it shares with the run workflow, and the IO manager."""

from kline_assets.resources.clickhouse.io_manager import ClickHouseIOManager
from kline_assets.resources.clickhouse.resource import ClickHouseResource
from kline_assets.resources.clickhouse.type_handler import FrameStream

__all__ = ["ClickHouseIOManager", "ClickHouseResource", "FrameStream"]
