"""The ClickHouse resource's schema path and its held engine: a table created before a column
existed gets it from `ensure_schema`, and a long-lived reader can keep the embedded engine
open between operations and let it go."""

from __future__ import annotations

import threading
from contextlib import ExitStack

import pytest

from kline_assets.resources.clickhouse import ClickHouseResource
from kline_assets.resources.clickhouse.engine import is_embedded
from kline_assets_tests.support.engine import lock_is_free

OLD_FEATURES_WIDE = """
CREATE TABLE {table} (run_id String, bucket DateTime('Asia/Tokyo'), scope String,
    mean Nullable(Float64), median Nullable(Float64), std Nullable(Float64), shop_count UInt16,
    dispersion Nullable(Float64), ema_120 Nullable(Float64), inserted_at DateTime DEFAULT now())
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY (run_id, toYYYYMM(bucket), splitByChar(':', scope)[1])
ORDER BY (run_id, scope, bucket)"""


def columns(client, ch: ClickHouseResource, table: str) -> list[str]:
    return [r[0] for r in client.query(
        "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String} "
        "ORDER BY position", parameters={"db": ch.db, "t": table}).result_rows]


def test_an_existing_features_wide_gets_n_models_in_place(clickhouse):
    table = clickhouse.table("features_wide")
    with clickhouse.client() as client:
        client.command(f"DROP TABLE {table}")
        client.command(OLD_FEATURES_WIDE.format(table=table))
        client.command(f"INSERT INTO {table} (run_id, bucket, scope, shop_count) "
                       "VALUES ('live', '2025-10-01 00:00:00', 'cohort:x', 3)")
        assert "n_models" not in columns(client, clickhouse, "features_wide")
        clickhouse.ensure_schema(client)
        clickhouse.ensure_schema(client)  # idempotent
        cols = columns(client, clickhouse, "features_wide")
        assert cols[cols.index("dispersion") + 1] == "n_models"
        rows = client.query(f"SELECT scope, shop_count, n_models FROM {table}").result_rows
    assert rows == [("cohort:x", 3, None)]


def test_a_new_features_wide_has_n_models_after_dispersion(clickhouse):
    with clickhouse.client() as client:
        cols = columns(client, clickhouse, "features_wide")
    assert cols[cols.index("dispersion") + 1] == "n_models"


def test_held_engine_stays_open_between_operations_and_is_released(clickhouse):
    if not is_embedded(clickhouse.dsn):
        pytest.skip("holding applies to the embedded engine")
    assert lock_is_free(clickhouse)
    hold = ExitStack()
    hold.enter_context(clickhouse.held())
    with clickhouse.client() as first:
        pass
    assert not lock_is_free(clickhouse)  # still open: other processes wait their turn
    with clickhouse.client() as second:
        assert second is first  # no reopen

    answers = []

    def read() -> None:
        with clickhouse.client() as client:
            answers.append(client.query("SELECT 41 + 1").result_rows[0][0])

    worker = threading.Thread(target=read)  # another request thread uses the held engine
    worker.start()
    worker.join(10)
    assert answers == [42]
    releaser = threading.Thread(target=hold.close)  # an idle timer lets go from its thread
    releaser.start()
    releaser.join(10)
    assert lock_is_free(clickhouse)
