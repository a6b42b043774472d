"""Cluster mode of the ClickHouse SQL as text (no server): the schema, staging tables, swaps,
and the settings of reads and writes; and that without KLINE_CLICKHOUSE_CLUSTER every
statement is the single-server one."""

from __future__ import annotations

import pytest

from kline_assets.lib.errors import KlineError
from kline_assets.resources.clickhouse import ClickHouseResource
from kline_assets.resources.clickhouse import cluster as cl
from kline_assets.resources.clickhouse.resource import _CREATE, INIT_SQL, split_statements
from kline_assets.resources.clickhouse.sql import create_staging, drop_table, swap_in

PATH = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"


class FakeClient:
    """Records commands; the version is the deployment's LTS line."""

    server_version = "26.8.2.1"

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict | None]] = []

    def command(self, cmd: str, settings: dict | None = None, **_):
        self.sent.append((cmd, settings))

    def min_version(self, version: str) -> bool:
        return tuple(map(int, version.split("."))) <= (26, 8)


def server(monkeypatch, cluster: str | None) -> ClickHouseResource:
    if cluster:
        monkeypatch.setenv(cl.CLUSTER_ENV, cluster)
    else:
        monkeypatch.delenv(cl.CLUSTER_ENV, raising=False)
    return ClickHouseResource(dsn="http://default:@ch-1:8123/kline")


def test_the_schema_on_a_cluster_is_replicated_on_every_replica(monkeypatch):
    client = FakeClient()
    server(monkeypatch, "kline_cluster").ensure_schema(client)
    sent = [" ".join(c.split()) for c, _ in client.sent]
    assert sent[0] == "CREATE DATABASE IF NOT EXISTS kline ON CLUSTER kline_cluster"
    assert sent[1].startswith(
        "CREATE TABLE IF NOT EXISTS kline.price_aligned ON CLUSTER kline_cluster ( run_id ")
    assert sent[1].endswith(
        f"ENGINE = ReplicatedReplacingMergeTree({PATH}, inserted_at) "
        "PARTITION BY (run_id, toYYYYMM(bucket)) ORDER BY (run_id, iphone_id, shop_id, bucket)")
    assert sent[2].endswith(
        f"ENGINE = ReplicatedReplacingMergeTree({PATH}, inserted_at) "
        "PARTITION BY (run_id, toYYYYMM(bucket)) ORDER BY (run_id, iphone_id, bucket)")
    assert sent[3].endswith(
        f"ENGINE = ReplicatedReplacingMergeTree({PATH}, inserted_at) PARTITION BY "
        "(run_id, toYYYYMM(bucket), splitByChar(':', scope)[1]) ORDER BY (run_id, scope, bucket)")
    assert sent[4] == ("ALTER TABLE kline.features_wide ON CLUSTER kline_cluster ADD COLUMN "
                       "IF NOT EXISTS n_models Nullable(UInt16) AFTER dispersion")
    assert sent[5].endswith(
        f"ENGINE = ReplicatedMergeTree({PATH}) ORDER BY (source, target, id, at)")
    assert len(sent) == 6


def test_without_a_cluster_the_schema_is_init_sql_as_it_is(monkeypatch):
    client = FakeClient()
    server(monkeypatch, None).ensure_schema(client)
    expected = ["CREATE DATABASE IF NOT EXISTS kline"] + [
        _CREATE.sub(lambda m: f"{m.group(1)}kline.{m.group(2)}", s)
        for s in split_statements(INIT_SQL.read_text())]
    assert [c for c, _ in client.sent] == expected
    assert all(s is None for _, s in client.sent)


def test_staging_swap_and_drop_on_a_cluster(monkeypatch):
    server(monkeypatch, "kline_cluster")
    client = FakeClient()
    staging = create_staging(client, "kline.features_wide", "promote")
    swap_in(client, "kline.features_wide", staging, [("live", 202511, "iphone")])
    drop_table(client, staging)
    (create, _), (swap, swap_settings), (drop, _) = client.sent
    assert create == (
        f"CREATE TABLE {staging} ON CLUSTER kline_cluster AS kline.features_wide "
        f"ENGINE = ReplicatedReplacingMergeTree({PATH}, inserted_at) PARTITION BY "
        "(run_id, toYYYYMM(bucket), splitByChar(':', scope)[1]) ORDER BY (run_id, scope, bucket)")
    # Issued once: the replicated table carries it to every replica and waits for them all.
    assert swap == (f"ALTER TABLE kline.features_wide REPLACE PARTITION ('live', 202511, "
                    f"'iphone') FROM {staging}")
    assert swap_settings == {"allow_replace_partition_from_empty_source": 1, "alter_sync": 2}
    assert drop == f"DROP TABLE IF EXISTS {staging} ON CLUSTER kline_cluster SYNC"


def test_staging_swap_and_drop_on_one_server_are_unchanged(monkeypatch):
    server(monkeypatch, None)
    client = FakeClient()
    staging = create_staging(client, "kline.price_aligned")
    swap_in(client, "kline.price_aligned", staging, [("live", 202511)])
    drop_table(client, staging)
    assert client.sent == [
        (f"CREATE TABLE {staging} AS kline.price_aligned", None),
        (f"ALTER TABLE kline.price_aligned REPLACE PARTITION ('live', 202511) FROM {staging}",
         {"allow_replace_partition_from_empty_source": 1}),
        (f"DROP TABLE IF EXISTS {staging} SYNC", None),
    ]


def test_read_and_write_settings_exist_only_on_a_cluster():
    assert cl.read_settings("c") == {"select_sequential_consistency": 1}
    assert cl.write_settings("c") == {"insert_quorum": "auto", "insert_quorum_parallel": 0}
    assert cl.insert_select_settings("c") == {"select_sequential_consistency": 1,
                                              "insert_quorum": "auto",
                                              "insert_quorum_parallel": 0}
    assert cl.alter_settings("c") == {"alter_sync": 2}
    assert cl.delete_settings("c") == {"mutations_sync": 2}
    for settings in (cl.read_settings, cl.write_settings, cl.insert_select_settings,
                     cl.alter_settings, cl.delete_settings):
        assert settings(None) is None


def test_the_cluster_name_is_checked_and_the_embedded_engine_refuses_it(monkeypatch):
    assert cl.cluster_name({}) is None
    assert cl.cluster_name({cl.CLUSTER_ENV: " kline_cluster "}) == "kline_cluster"
    with pytest.raises(KlineError, match="not a ClickHouse cluster name"):
        cl.cluster_name({cl.CLUSTER_ENV: "a;DROP"})
    monkeypatch.setenv(cl.CLUSTER_ENV, "kline_cluster")
    with pytest.raises(KlineError, match="needs ClickHouse servers"):
        ClickHouseResource(dsn="chdb:///tmp/nowhere").ensure_schema(FakeClient())


def test_every_engine_of_init_sql_has_a_replicated_form():
    for name in ("price_aligned", "cross_shop_agg", "features_wide", "promote_journal"):
        assert cl.replicated_engine(cl.engine_clause(name)).startswith(
            "ENGINE = Replicated")
    with pytest.raises(ValueError, match="is not in sql/clickhouse"):
        cl.engine_clause("kline.nope")
