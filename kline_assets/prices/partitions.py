"""run_id × month partitions of every price asset.

Key strings list dimension values in alphabetical order of dimension name:
"2025-10-01|live" is month 2025-10 of run `live`.
"""

from __future__ import annotations

from dagster import (
    DimensionPartitionMapping,
    DynamicPartitionsDefinition,
    IdentityPartitionMapping,
    MonthlyPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionMapping,
    MultiPartitionsDefinition,
    TimeWindowPartitionMapping,
)

from kline_assets.settings import PRICE_TZ

RUN_ID_DIMENSION = "run_id"
MONTH_DIMENSION = "month"
PRICE_START = "2025-01-01"

run_id_partitions = DynamicPartitionsDefinition(name=RUN_ID_DIMENSION)
# end_offset=1: the month in progress is a partition too, so `live` can stay current.
month_partitions = MonthlyPartitionsDefinition(
    start_date=PRICE_START, timezone=PRICE_TZ, end_offset=1
)
price_partitions = MultiPartitionsDefinition(
    {RUN_ID_DIMENSION: run_id_partitions, MONTH_DIMENSION: month_partitions}
)

# The partition expression of every price table: which column holds each dimension.
PARTITION_EXPR = {RUN_ID_DIMENSION: "run_id", MONTH_DIMENSION: "bucket"}

# Same run, this month and the one before: the previous month is the warm-up of features.
with_previous_month = MultiPartitionMapping(
    {
        RUN_ID_DIMENSION: DimensionPartitionMapping(RUN_ID_DIMENSION, IdentityPartitionMapping()),
        MONTH_DIMENSION: DimensionPartitionMapping(
            MONTH_DIMENSION, TimeWindowPartitionMapping(start_offset=-1, end_offset=0)
        ),
    }
)


def price_partition_key(run_id: str, month: str) -> MultiPartitionKey:
    """`month` as YYYY-MM or YYYY-MM-01."""
    day = month if len(month) == 10 else f"{month}-01"
    return MultiPartitionKey({RUN_ID_DIMENSION: run_id, MONTH_DIMENSION: day})
