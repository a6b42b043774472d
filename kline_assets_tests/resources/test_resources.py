"""Resources fail with errors that say which service, where, and what to do."""

import multiprocessing as mp

import pandas as pd
import pytest

from kline_assets.lib.errors import ServiceUnavailableError
from kline_assets.resources import ClickHouseResource, RedisResource, resolve_device
from kline_assets.resources.clickhouse.sql import partition_literal, replace_partitions


def test_unreachable_clickhouse_server_names_the_address():
    ch = ClickHouseResource(dsn="http://default:@127.0.0.1:1/kline")
    expected = r"ClickHouse unreachable at http://127\.0\.0\.1:1"
    with pytest.raises(ServiceUnavailableError, match=expected), ch.client():
        pass


def test_server_dsn_path_selects_the_database():
    assert ClickHouseResource(dsn="http://h:8123/prices_db").db == "prices_db"
    assert ClickHouseResource(dsn="chdb:///tmp/x", database="kline").db == "kline"
    with pytest.raises(ValueError, match="invalid ClickHouse database"):
        _ = ClickHouseResource(dsn="chdb:///tmp/x", database="bad-name;drop").db


def test_unreachable_redis_names_the_address():
    with pytest.raises(ServiceUnavailableError, match=r"Redis unreachable at redis://127\.0\.0\.1:1/0"):
        RedisResource(url="redis://127.0.0.1:1/0").client()


def test_reachable_redis():
    assert RedisResource().client().ping()


def test_device_specs():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in {"cpu", "cuda"}
    with pytest.raises(ValueError, match="not one of auto, cpu, cuda"):
        resolve_device("gpu0")


def test_cuda_without_cuda_is_an_error_not_a_fallback():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        resolve_device("cuda:0")


def test_nested_clients_share_one_engine(clickhouse):
    with clickhouse.client() as outer, clickhouse.client() as inner:
        assert outer is inner


def _hold_lock(dsn: str, ready, release) -> None:
    ch = ClickHouseResource(dsn=dsn, database="default")
    with ch.client():
        ready.set()
        release.wait(30)


def test_a_second_process_waits_for_the_embedded_engine(clickhouse_dsn):
    if not clickhouse_dsn.startswith("chdb://"):
        pytest.skip("embedded engine only")
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(clickhouse_dsn, ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        waiting = ClickHouseResource(dsn=clickhouse_dsn, database="default", lock_timeout_s=1)
        with pytest.raises(ServiceUnavailableError, match="stayed locked"), waiting.client():
            pass
    finally:
        release.set()
        holder.join(30)
    with ClickHouseResource(dsn=clickhouse_dsn, database="default").client() as client:
        assert client.command("SELECT 1") == 1


def test_replacing_with_an_empty_frame_clears_only_that_partition(clickhouse):
    table = clickhouse.table("cross_shop_agg")
    rows = pd.DataFrame({
        "run_id": ["a", "a", "b"],
        "bucket": pd.to_datetime(["2025-10-01 00:00", "2025-11-01 00:00", "2025-10-01 00:00"])
        .tz_localize("Asia/Tokyo"),
        "iphone_id": [1, 1, 1], "shop_count": [1, 1, 1], "quorum_met": [0, 0, 0],
    })
    with clickhouse.client() as client:
        replace_partitions(client, table, rows,
                           [("a", 202510), ("a", 202511), ("b", 202510)])
        replace_partitions(client, table, rows.iloc[:0], [("a", 202510)])
        left = client.query(f"SELECT run_id, toYYYYMM(bucket) FROM {table} ORDER BY 1, 2")
    assert left.result_rows == [("a", 202511), ("b", 202510)]
    assert partition_literal(("live", 202510, "iphone")) == "('live', 202510, 'iphone')"
