"""The price tables in ClickHouse as sets of partitions: the one reading of `system.parts`
that the run workflow (drop, promote) and the read side (run listings) share.

Every price table is partitioned by (run_id, month[, scope kind]); `system.parts` answers
from metadata, so knowing which runs and months hold data costs no read of the rows. Its
`partition` column holds the partition tuple as a ClickHouse literal, e.g.
`('live',202510,'iphone')`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from kline_assets.resources.clickhouse.sql import quote_literal

PRICE_TABLES = ("price_aligned", "cross_shop_agg", "features_wide")
PRICE_ASSETS = ("price_aligned", "cross_shop_agg", "features_wide", "cohorts")
"""The computed price assets; `cohorts` shares the features_wide table (its cohort scopes)."""


@dataclass(frozen=True)
class Partition:
    table: str
    id: str
    values: tuple
    rows: int

    @property
    def run_id(self) -> str:
        return str(self.values[0])


def parse_partition(text: str) -> tuple:
    """`('live',202510,'iphone')` → ('live', 202510, 'iphone') (ClickHouse literal syntax)."""
    value = ast.literal_eval(text)
    return value if isinstance(value, tuple) else (value,)


def all_partitions(client: Client, db: str, tables: Iterable[str] = PRICE_TABLES
                   ) -> list[Partition]:
    names = ", ".join(quote_literal(t) for t in tables)
    rows = client.query(
        "SELECT table, partition_id, any(partition), sum(rows) FROM system.parts "
        f"WHERE database = {quote_literal(db)} AND table IN ({names}) AND active "
        "GROUP BY table, partition_id ORDER BY table, any(partition)"
    ).result_rows
    return [Partition(t, pid, parse_partition(text), int(n)) for t, pid, text, n in rows]


def run_ids_present(client: Client, db: str) -> list[str]:
    """Run ids with at least one partition in a price table, sorted."""
    return sorted({p.run_id for p in all_partitions(client, db)})
