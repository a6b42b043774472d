"""The column schemas Dagster shows are read from the DDL; the tables the stores create from
that DDL have exactly those columns, in that order, with those types."""

from __future__ import annotations

import pytest

from kline_assets.prices.schemas import (
    CROSS_SHOP_AGG_SCHEMA,
    FEATURES_WIDE_SCHEMA,
    PRICE_ALIGNED_SCHEMA,
)
from kline_assets.stocks import SYNTH_SQL
from kline_assets.stocks.assets import STOCK_1MIN_SCHEMA
from kline_assets.stocks.ticks.assets import SYNTH_SCHEMA

PG_TYPES = {"timestamp without time zone": "timestamp", "timestamp with time zone": "timestamptz"}


@pytest.mark.parametrize("table, schema", [("price_aligned", PRICE_ALIGNED_SCHEMA),
                                           ("cross_shop_agg", CROSS_SHOP_AGG_SCHEMA),
                                           ("features_wide", FEATURES_WIDE_SCHEMA)])
def test_clickhouse_tables_have_the_columns_their_schema_shows(clickhouse, table, schema):
    with clickhouse.client() as client:
        stored = client.query(
            "SELECT name, type FROM system.columns WHERE database = {db:String} "
            "AND table = {t:String} ORDER BY position",
            parameters={"db": clickhouse.db, "t": table}).result_rows
    assert [(c.name, c.type) for c in schema.columns] == [tuple(r) for r in stored]


def test_postgres_tables_have_the_columns_their_schema_shows(postgres):
    postgres.execute_file(SYNTH_SQL)
    for table, schema in (("stock_1min_qfq", STOCK_1MIN_SCHEMA),
                          ("stock_1min_synth", SYNTH_SCHEMA)):
        with postgres.connect() as conn:
            stored = conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = %s ORDER BY ordinal_position", (table,)).fetchall()
        assert [(c.name, c.type) for c in schema.columns] == [
            (name, PG_TYPES.get(kind, kind)) for name, kind in stored], table
