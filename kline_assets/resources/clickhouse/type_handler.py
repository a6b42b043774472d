"""pandas ↔ ClickHouse for the IO manager: write by staged partition swap, read with FINAL."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

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


class FrameStream:
    """An asset's rows as a stream of frames, consumed once by the IO manager: each chunk goes
    to the staging table as it comes, so memory holds one chunk, and the partitions are
    swapped in at the end exactly as for one frame. `summary`, called once every chunk is
    written, adds what the producer learned on the way (counts, rejections) to the output's
    metadata. `written` holds the metadata of the write once it is done, for a producer that
    reports its partitions itself."""

    def __init__(self, frames: Iterable[pd.DataFrame],
                 summary: Callable[[], dict] | None = None) -> None:
        self.frames = frames
        self.summary = summary
        self.written: dict = {}


class ClickHousePandasTypeHandler(DbTypeHandler[pd.DataFrame]):
    def handle_output(self, context: OutputContext, table_slice: TableSlice,
                      obj: pd.DataFrame | FrameStream, connection: ClickHouseConnection) -> dict:
        started = time.perf_counter()
        table = connection.table(table_slice)
        known = {name for name, _ in describe_columns(connection.client, table)}

        def check(frame: pd.DataFrame) -> None:
            check_rows_in_slice(frame, table_slice)
            unknown = sorted(set(frame.columns) - known)
            if unknown:
                raise ValueError(f"columns {unknown} are not in ClickHouse table {table}")

        partitions = target_partitions(table_slice)
        frames = obj.frames if isinstance(obj, FrameStream) else obj
        rows = replace_partitions(connection.client, table, frames, partitions, each=check)
        summary = obj.summary() if isinstance(obj, FrameStream) and obj.summary else {}
        return {
            **summary,
            "dagster/row_count": rows,
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
        return [pd.DataFrame, FrameStream]
