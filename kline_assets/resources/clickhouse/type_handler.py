"""pandas ↔ ClickHouse for the IO manager: write by staged partition swap, read with FINAL."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pandas as pd
from dagster import InputContext, OutputContext
from dagster._core.storage.db_io_manager import DbTypeHandler, TableSlice

from kline_assets.resources.clickhouse.db_client import ClickHouseConnection
from kline_assets.resources.clickhouse.sql import (
    check_rows_in_slice,
    describe_columns,
    read_frame,
    replace_partitions,
    target_partitions,
    where_clause,
)


class ClickHousePandasTypeHandler(DbTypeHandler[pd.DataFrame]):
    def handle_output(self, context: OutputContext, table_slice: TableSlice,
                      obj: pd.DataFrame, connection: ClickHouseConnection) -> dict:
        started = time.perf_counter()
        table = connection.table(table_slice)
        check_rows_in_slice(obj, table_slice)
        known = {name for name, _ in describe_columns(connection.client, table)}
        unknown = sorted(set(obj.columns) - known)
        if unknown:
            raise ValueError(f"columns {unknown} are not in ClickHouse table {table}")
        partitions = target_partitions(table_slice)
        replace_partitions(connection.client, table, obj, partitions)
        return {
            "dagster/row_count": len(obj),
            "clickhouse_table": table,
            "partitions_replaced": ", ".join("/".join(str(v) for v in p) for p in partitions),
            "write_seconds": round(time.perf_counter() - started, 3),
        }

    def load_input(self, context: InputContext, table_slice: TableSlice,
                   connection: ClickHouseConnection) -> pd.DataFrame:
        return read_frame(connection.client, connection.table(table_slice),
                          where_clause(table_slice), columns=table_slice.columns)

    @property
    def supported_types(self) -> Sequence[type]:
        return [pd.DataFrame]
