"""DbClient of the ClickHouse IO manager: connections and schema, never an up-front delete."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client
from dagster._core.storage.db_io_manager import DbClient, TableSlice

from kline_assets.resources.clickhouse.resource import ClickHouseResource
from kline_assets.resources.clickhouse.sql import where_clause


@dataclass
class ClickHouseConnection:
    resource: ClickHouseResource
    client: Client

    def table(self, table_slice: TableSlice) -> str:
        return self.resource.table(table_slice.table)


class ClickHouseDbClient(DbClient[ClickHouseConnection]):
    def __init__(self, resource: ClickHouseResource) -> None:
        self.resource = resource

    def delete_table_slice(self, context, table_slice: TableSlice, connection) -> None:
        """Nothing is deleted up front: the type handler swaps partitions in atomically."""

    def ensure_schema_exists(self, context, table_slice: TableSlice, connection) -> None:
        self.resource.ensure_schema(connection.client)

    def get_select_statement(self, table_slice: TableSlice) -> str:
        """What reads the slice back (shown as `query` in the materialization metadata)."""
        return (f"SELECT * FROM {self.resource.table(table_slice.table)} FINAL "
                f"WHERE {where_clause(table_slice)}")

    def get_table_name(self, table_slice: TableSlice) -> str:
        return self.resource.table(table_slice.table)

    @contextmanager
    def connect(self, context, table_slice: TableSlice) -> Iterator[ClickHouseConnection]:
        with self.resource.client() as client:
            yield ClickHouseConnection(self.resource, client)
