"""Every statement the IO manager, the live refresh and the run workflow send in cluster mode
(KLINE_CLICKHOUSE_CLUSTER set), as text: recorded on their way to the embedded engine, which
runs their single-server form (support/clickhouse_cluster.py). No cluster runs here."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from dagster import materialize

from kline_assets.prices.compare import compare_runs
from kline_assets.prices.read import summarize_runs
from kline_assets.prices.runs import drop_run, promote_run
from kline_assets.resources.clickhouse.cluster import REPLICA_PATH
from kline_assets_tests.prices.test_incremental import ALL, COMPUTED, table, tick
from kline_assets_tests.support.clickhouse_cluster import CLUSTER, Sent, record_statements
from kline_assets_tests.support.prices import insert_records

ON = f" ON CLUSTER {CLUSTER}"
TABLES = ("price_aligned", "cross_shop_agg", "features_wide", "promote_journal")


def kind(sent: Sent) -> str:
    """What a statement does, for the rules below."""
    text = " ".join(sent.text.split()).upper()
    if sent.method == "insert_arrow":
        return "insert staging" if "__STAGING_" in text else "insert"
    for prefix, name in (("CREATE DATABASE", "create database"),
                         ("DROP DATABASE", "drop database"), ("DROP TABLE", "drop table"),
                         ("DELETE FROM", "delete"), ("SYSTEM SYNC REPLICA", "sync")):
        if text.startswith(prefix):
            return name
    if text.startswith("CREATE TABLE"):
        return "create staging" if "__STAGING_" in text else "create table"
    if text.startswith("ALTER TABLE"):
        for part in ("REPLACE PARTITION", "DROP PARTITION", "ADD COLUMN"):
            if part in text:
                return part.lower()
    if text.startswith("INSERT INTO"):
        return "insert select" if " SELECT " in text else "insert"
    if text.startswith("SELECT"):
        return "read"
    return "other"


def reads_a_table(sent: Sent, db: str) -> bool:
    """Whether it reads one of the project's tables (system tables are each server's own)."""
    return re.search(rf"\bFROM\s+{db}\.\w+", sent.text) is not None


def check_cluster_statement(sent: Sent, db: str) -> None:
    """The rules of cluster mode (resources/clickhouse/cluster.py), one statement."""
    what, settings = kind(sent), sent.settings or {}
    if what in ("create database", "drop database", "create table", "create staging",
                "drop table", "add column"):
        assert ON in sent.text, sent
    if what in ("create table", "create staging"):
        assert "ENGINE = Replicated" in sent.text and f"'{REPLICA_PATH}', '{{replica}}'" \
            in sent.text, sent
    if what in ("replace partition", "drop partition"):
        assert ON not in sent.text and settings.get("alter_sync") == 2, sent
    if what == "delete":
        assert ON not in sent.text and settings.get("mutations_sync") == 2, sent
    if what in ("insert", "insert staging", "insert select"):
        assert settings.get("insert_quorum") == "auto", sent
        assert settings.get("insert_quorum_parallel") == 0, sent
    if what in ("read", "insert select") and reads_a_table(sent, db):
        assert settings.get("select_sequential_consistency") == 1, sent


@pytest.mark.slow  # whole pipelines: a month, a refresh, two promotes
def test_every_statement_of_a_write_a_refresh_a_promote_and_a_drop_is_cluster_safe(
        price_resources, runs, monkeypatch):
    postgres, clickhouse = price_resources["postgres"], price_resources["clickhouse"]
    db = clickhouse.db
    insert_records(postgres, [
        (1, 1, 10, 100_000, None, None, "2025-11-05 11:35:00"),
        (2, 2, 10, 100_000, None, None, "2025-11-05 11:36:00"),
        (3, 1, 10, 100_000, None, None, "2025-11-05 11:50:00"),
        (4, 2, 10, 100_000, None, None, "2025-11-05 11:51:00"),
    ])
    with record_statements(monkeypatch) as log:
        clickhouse.ensure_schema()
        # The IO manager: a month of every price asset, with its checks.
        assert materialize(ALL, selection=COMPUTED, partition_key="2025-11-01|live",
                           resources=price_resources, instance=runs).success
        # The live refresh: two outlier shops make a bucket vanish (its row is DELETEd).
        insert_records(postgres, [
            (5, 3, 10, 200_000, None, None, "2025-11-05 11:52:00"),
            (6, 4, 10, 200_000, None, None, "2025-11-05 11:53:00"),
        ])
        tick(price_resources, runs, "4")
        # The run workflow: promote onto an empty run, back onto live with a backup, drop.
        promote_run(clickhouse, "live", "backfill_v3")
        promote_run(clickhouse, "backfill_v3", "live", backup="backup_20251122")
        dropped = drop_run(clickhouse, "backup_20251122")
        # The rest of the run workflow: list (rows per run) and compare.
        summarize_runs(clickhouse, runs)
        compare_runs(clickhouse, "live", "backfill_v3")

    # The paths ran to the end on their single-server form.
    agg = table(clickhouse, "cross_shop_agg")
    assert agg.bucket.tolist() == [pd.Timestamp("2025-11-05 11:30", tz="Asia/Tokyo")]
    assert sum(dropped.values()) > 0

    kinds = {kind(s) for s in log}
    assert {"create database", "create table", "add column", "create staging",
            "insert staging", "replace partition", "drop table", "insert", "delete",
            "insert select", "drop partition", "read"} <= kinds, kinds
    assert "other" not in kinds, [s for s in log if kind(s) == "other"]
    for sent in log:
        check_cluster_statement(sent, db)
    # Every table, staging tables included, is a replicated one of its own.
    created = [s.text for s in log if kind(s) == "create staging"]
    assert all("ENGINE = ReplicatedReplacingMergeTree" in t and "ORDER BY" in t
               for t in created)


@pytest.mark.slow
def test_without_a_cluster_the_same_paths_send_the_single_server_statements(
        price_resources, runs, monkeypatch):
    """The other half: unset, nothing of cluster mode reaches the engine (no ON CLUSTER, no
    Replicated engine, no replication setting), and the statement texts are the plain ones."""
    postgres, clickhouse = price_resources["postgres"], price_resources["clickhouse"]
    insert_records(postgres, [
        (1, 1, 10, 100_000, None, None, "2025-11-05 11:35:00"),
        (2, 2, 10, 100_000, None, None, "2025-11-05 11:36:00"),
    ])
    with record_statements(monkeypatch, cluster=None) as log:
        clickhouse.ensure_schema()
        assert materialize(ALL, selection=COMPUTED, partition_key="2025-11-01|live",
                           resources=price_resources, instance=runs).success
        promote_run(clickhouse, "live", "backfill_v3")
        drop_run(clickhouse, "backfill_v3")
    assert log
    for sent in log:
        assert "ON CLUSTER" not in sent.text and "Replicated" not in sent.text, sent
        assert not set(sent.settings or {}) - {"allow_replace_partition_from_empty_source"}, sent
    staging = [s.text for s in log if kind(s) == "create staging"]
    assert staging and all(t.startswith(f"CREATE TABLE {clickhouse.db}.") and
                           t.endswith(tuple(f" AS {clickhouse.db}.{n}" for n in TABLES))
                           for t in staging), staging
