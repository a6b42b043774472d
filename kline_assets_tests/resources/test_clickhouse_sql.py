"""ClickHouse SQL of the IO manager and the run workflow: partition tuples and WHERE clauses
from a table slice (no database), and the staging tables a killed writer leaves (real chdb)."""

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from dagster._core.definitions.partitions.utils import TimeWindow
from dagster._core.storage.db_io_manager import TablePartitionDimension, TableSlice

from kline_assets.resources.clickhouse.engine import embedded_path, is_embedded
from kline_assets.resources.clickhouse.sql import (
    STAGING_MARK,
    months_in_window,
    partition_literal,
    staging_table,
    sweep_stale_staging,
    target_partitions,
    where_clause,
)
from kline_assets_tests.support.clickhouse_writer import write

ROOT = Path(__file__).resolve().parents[2]
TOKYO = ZoneInfo("Asia/Tokyo")


def window(first: tuple[int, int], last: tuple[int, int]) -> TimeWindow:
    return TimeWindow(datetime(*first, 1, tzinfo=TOKYO), datetime(*last, 1, tzinfo=TOKYO))


def price_slice(run_ids, time_window, extra=None) -> TableSlice:
    dims = [TablePartitionDimension("run_id", run_ids),
            TablePartitionDimension("bucket", time_window)]
    if extra:
        dims.append(TablePartitionDimension("splitByChar(':', scope)[1]", [extra]))
    return TableSlice(table="features_wide", schema="kline", database="kline",
                      partition_dimensions=dims)


def test_months_are_counted_in_the_partitions_own_zone():
    assert months_in_window(window((2025, 10), (2026, 1))) == [202510, 202511, 202512]


def test_target_partitions_follow_partition_by_order():
    table_slice = price_slice(["live"], window((2025, 10), (2025, 12)), extra="cohort")
    assert target_partitions(table_slice) == [("live", 202510, "cohort"),
                                              ("live", 202511, "cohort")]
    assert partition_literal(("live", 202510, "cohort")) == "('live', 202510, 'cohort')"


def test_where_clause_binds_time_as_epoch_and_quotes_values():
    clause = where_clause(price_slice(["it's"], window((2025, 10), (2025, 11))))
    start = int(datetime(2025, 10, 1, tzinfo=TOKYO).timestamp())
    end = int(datetime(2025, 11, 1, tzinfo=TOKYO).timestamp())
    assert clause == (f"run_id IN ('it\\'s') AND bucket >= toDateTime({start}) "
                      f"AND bucket < toDateTime({end})")


def _staging_tables(client, db):
    return sorted(r[0] for r in client.query(
        f"SELECT name FROM system.tables WHERE database = '{db}' "
        f"AND position(name, '{STAGING_MARK}') > 0").result_rows)


def test_a_dead_writers_staging_table_is_swept_and_a_live_ones_is_not(clickhouse):
    table = clickhouse.table("price_aligned")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with clickhouse.client() as client, staging_table(client, table) as live_staging:
        stale = live_staging.replace(f"_p{os.getpid()}_", f"_p{dead}_") + "x"
        client.command(f"CREATE TABLE {stale} AS {table}")
        swept = sweep_stale_staging(client, clickhouse.db)
        assert swept == [stale.split(".", 1)[1]]
        assert _staging_tables(client, clickhouse.db) == [live_staging.split(".", 1)[1]]
    with clickhouse.client() as client:
        assert _staging_tables(client, clickhouse.db) == []


def _wait_for_staging_file(data_path: Path, database: str, proc: subprocess.Popen,
                           timeout_s: float = 120.0) -> Path:
    """The staging table's metadata file appears when the writer has created it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = list((data_path / "metadata" / database).glob(f"*{STAGING_MARK}*.sql"))
        if found:
            return found[0]
        if proc.poll() is not None:
            raise AssertionError(f"writer exited ({proc.returncode}) before staging")
        time.sleep(0.005)
    raise AssertionError("the writer never created its staging table")


@pytest.mark.slow
@pytest.mark.skipif(not is_embedded(os.environ.get("KLINE_TEST_CLICKHOUSE_DSN", "chdb://")),
                    reason="watches the embedded engine's files to time the kill")
def test_a_writer_killed_mid_write_leaves_the_old_rows_and_its_staging_is_swept(clickhouse):
    """kill -9 during a partition write: the month keeps its previous rows, and the next
    write to that table removes the dead writer's staging table and converges."""
    write(clickhouse.dsn, clickhouse.db, 1_000, price=1)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kline_assets_tests.support.clickhouse_writer",
         clickhouse.dsn, clickhouse.db, "3000000", "2"], cwd=ROOT)
    try:
        _wait_for_staging_file(embedded_path(clickhouse.dsn), clickhouse.db, proc)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    table = clickhouse.table("price_aligned")
    with clickhouse.client() as client:
        stale = _staging_tables(client, clickhouse.db)
        assert len(stale) == 1 and f"_p{proc.pid}_" in stale[0]
        kept = client.query(f"SELECT count(), max(price_new) FROM {table} FINAL").result_rows
        assert kept == [(1_000, 1)]
    write(clickhouse.dsn, clickhouse.db, 2_000, price=3)
    with clickhouse.client() as client:
        assert _staging_tables(client, clickhouse.db) == []
        rows = client.query(f"SELECT count(), max(price_new) FROM {table} FINAL").result_rows
        assert rows == [(2_000, 3)]


def test_dropped_tables_leave_the_embedded_store_at_once(tmp_path):
    """A staging table or database dropped by a short-lived engine is gone from disk, not
    queued for the engine's grace period: queued drops are reloaded by every later open."""
    from kline_assets.resources import ClickHouseResource

    store = ClickHouseResource(dsn=f"chdb://{tmp_path / 'store'}", database="gone")
    store.ensure_schema()
    with store.client() as client, staging_table(client, store.table("price_aligned")):
        pass
    store.drop_database()
    dropped = tmp_path / "store" / "metadata_dropped"
    assert not dropped.exists() or not any(dropped.iterdir())
