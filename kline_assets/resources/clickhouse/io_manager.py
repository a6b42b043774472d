"""The ClickHouse IO manager, in the DbIOManager / DbClient / DbTypeHandler shape of Dagster's
own database integrations, on clickhouse-connect (embedded chdb or a server).

No `from __future__ import annotations` here: pydantic must see ResourceDependency itself.

Dagster 1.13's DbIOManager cannot resolve dynamic × time multi-partitions outside a partition
loading context ("The instance is not available to load partitions"); both entry points run
inside `partition_loading_context(dynamic_partitions_store=instance)`.
"""


import pandas as pd
from dagster import (
    ConfigurableIOManagerFactory,
    DagsterInvariantViolationError,
    InputContext,
    MetadataValue,
    OutputContext,
    ResourceDependency,
    partition_loading_context,
)
from dagster._core.storage.db_io_manager import DbIOManager, TablePartitionDimension, TableSlice

from kline_assets.resources.clickhouse.db_client import ClickHouseDbClient
from kline_assets.resources.clickhouse.resource import ClickHouseResource
from kline_assets.resources.clickhouse.type_handler import (
    ClickHousePandasTypeHandler,
    FrameStream,
)


class _ClickHouseDbIOManager(DbIOManager):
    """DbIOManager inside a partition loading context, honouring a `table` metadata entry."""

    def handle_output(self, context: OutputContext, obj: object) -> None:
        """DbIOManager.handle_output with the metadata keys in one style: `query` (Dagster's
        own writes `Query`) beside the type handler's snake_case keys."""
        with partition_loading_context(dynamic_partitions_store=context.step_context.instance):
            if obj is None:
                raise DagsterInvariantViolationError(
                    f"{context.asset_key.to_user_string()} returned None, not a DataFrame")
            self._check_supported_type(type(obj))
            table_slice = self._get_table_slice(context, context)
            with self._db_client.connect(context, table_slice) as conn:
                self._db_client.ensure_schema_exists(context, table_slice, conn)
                handler = self._resolve_handler(type(obj))
                metadata = handler.handle_output(context, table_slice, obj, conn) or {}
            metadata = {
                **metadata,
                "query": MetadataValue.md(
                    f"```sql\n{self._db_client.get_select_statement(table_slice)}\n```"),
                "dagster/table_name": self._db_client.get_table_name(table_slice),
            }
            if isinstance(obj, FrameStream):
                obj.written = metadata
            context.add_output_metadata(metadata)

    def load_input(self, context: InputContext) -> object:
        with partition_loading_context(dynamic_partitions_store=context.instance):
            return super().load_input(context)

    def _get_table_slice(self, context, output_context) -> TableSlice:
        table_slice = super()._get_table_slice(context, output_context)
        metadata = output_context.definition_metadata or {}
        if metadata.get("table"):
            table_slice = table_slice._replace(table=str(metadata["table"]))
        extra = metadata.get("extra_partition")
        if extra:
            dims = [*(table_slice.partition_dimensions or []),
                    TablePartitionDimension(extra["expr"], [extra["value"]])]
            table_slice = table_slice._replace(partition_dimensions=dims)
        return table_slice


class ClickHouseIOManager(ConfigurableIOManagerFactory):
    """Stores pandas DataFrames in ClickHouse tables partitioned by (run_id, month).

    Assets declare `metadata={"partition_expr": {"run_id": "run_id", "month": "bucket"}}`
    and, optionally, `"table"` when the table name differs from the asset name and
    `"extra_partition": {"expr": …, "value": …}` for a third PARTITION BY element that the
    asset owns alone (features_wide's scope kind).
    """

    clickhouse: ResourceDependency[ClickHouseResource]

    def create_io_manager(self, context) -> DbIOManager:
        return _ClickHouseDbIOManager(
            type_handlers=[ClickHousePandasTypeHandler()],
            db_client=ClickHouseDbClient(self.clickhouse),
            database=self.clickhouse.db,
            schema=self.clickhouse.db,
            io_manager_name="ClickHouseIOManager",
            default_load_type=pd.DataFrame,
        )


