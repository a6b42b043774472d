"""Tick streams sharded by symbol, on a real Redis: the publisher routes each symbol to one
shard stream, a consumer per shard keeps that shard's bars under its hash tag, and the readers
(the merged query, the hand-over, the status) see all shards as one feed — equal to the batch
kernel's bars of the same ticks."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from redis.crc import key_slot

from kline_assets.cli import cli
from kline_assets.lib.errors import KlineError
from kline_assets.resources.redis import RedisResource
from kline_assets.stocks import STOCK_SYNTH_TABLE
from kline_assets.stocks.history import minute_bars
from kline_assets.stocks.read import bars
from kline_assets.stocks.ticks.consume import Consumer, ConsumerOptions
from kline_assets.stocks.ticks.handover import handover
from kline_assets.stocks.ticks.keys import LiveKeys, parse_shard, shard_of, shard_stream
from kline_assets.stocks.ticks.live import day_keys, day_symbols, live_days, read_day
from kline_assets.stocks.ticks.live import status as live_status
from kline_assets.stocks.ticks.publish import publish_file, register_shards
from kline_assets_tests.support.ticks import DAY, assert_same_bars, clean_bars, write_tick_file

KEYS = LiveKeys()
STREAM = "t:ticks"


@pytest.fixture
def tick_file(tmp_path: Path) -> Path:
    return write_tick_file(tmp_path / "ticks.csv")


def consume_shard(client, s: int) -> int:
    stats = Consumer(client, ConsumerOptions(
        stream=shard_stream(STREAM, s), group="bars", consumer=f"c{s}", batch=500,
        until_idle=0.2, block_ms=50, claim_idle_ms=200, report_every=60.0, cumulative=True,
        volume_unit="lots"), KEYS.shard(s)).run()
    return stats.ticks


def test_the_shard_of_a_symbol_is_stable_and_its_names_carry_the_hash_tag():
    # crc32, not Python's salted hash(): the same shard in every process and machine.
    assert shard_of(["600000.SH", "000001.SZ", "830799.BJ"], 2) == [0, 1, 0]
    assert shard_of(["600000.SH", "000001.SZ", "830799.BJ"], 7) == [2, 1, 2]
    assert shard_stream("kline:ticks", 3) == "kline:ticks:{3}"
    shard = LiveKeys().shard(3)
    assert shard.bars(DAY, "600000.SH") == f"kline:{{3}}:live:{DAY}:bars:600000.SH"
    # A shard's stream and every key its consumer writes hash to one Redis Cluster slot.
    slot = key_slot(b"kline:ticks:{3}")
    for key in (shard.days, shard.closed, shard.symbols(DAY), shard.state(DAY),
                shard.report(DAY), shard.bars(DAY, "000001.SZ"),
                shard.status("kline:ticks:{3}", "bars"), LiveKeys.dead("kline:ticks:{3}")):
        assert key_slot(key.encode()) == slot, key
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "-1/2", "x", "1/0"):
        with pytest.raises(KlineError, match="--shard"):
            parse_shard(bad)


def test_two_shards_consumed_apart_equal_one_stream(redis_client, redis_url, tick_file,
                                                    postgres):
    n, _ = publish_file(redis_client, tick_file, STREAM, shards=2, keys=KEYS)
    lengths = [redis_client.xlen(shard_stream(STREAM, s)) for s in range(2)]
    assert sum(lengths) == n and all(lengths) and not redis_client.exists(STREAM)
    assert redis_client.get(KEYS.shards) == b"2"
    # Each shard's consumer (in turn here; in parallel they need not wait for each other).
    assert sum(consume_shard(redis_client, s) for s in range(2)) == n
    want = clean_bars(tick_file)
    symbols = sorted(set(want.symbol.astype(str)))
    for s, symbol in zip(shard_of(symbols, 2), symbols, strict=True):
        assert redis_client.sismember(KEYS.shard(s).symbols(DAY), symbol)
        assert not redis_client.sismember(KEYS.shard(1 - s).symbols(DAY), symbol)
    # Every reader sees the shards as one feed.
    assert live_days(redis_client, KEYS) == [DAY]
    assert day_symbols(redis_client, KEYS, DAY) == symbols
    assert_same_bars(read_day(redis_client, KEYS, DAY), want)
    assert {c["stream"] for c in live_status(redis_client, KEYS)["consumers"]} == {
        shard_stream(STREAM, 0), shard_stream(STREAM, 1)}
    symbol = symbols[0]
    rows = bars(symbol, 1, f"{DAY} 09:30", f"{DAY} 15:00", postgres=postgres,
                redis=RedisResource(url=redis_url))
    mine = want.take(np.flatnonzero(want.symbol.astype(str) == symbol))
    assert len(rows) == len(mine) and {r["source"] for r in rows} == {"live"}
    assert [r["close"] for r in rows] == mine.close.tolist()

    # The hand-over archives every shard's bars and clears every shard.
    report = handover(postgres, redis_client, KEYS, DAY)
    assert report.archived == len(want)
    assert_same_bars(minute_bars(postgres, STOCK_SYNTH_TABLE, date(2025, 10, 9),
                                 date(2025, 10, 9)), want)
    assert day_keys(redis_client, KEYS, DAY) == [] and live_days(redis_client, KEYS) == []
    for s in range(2):  # a late tick of the day is refused in every shard
        assert redis_client.hexists(KEYS.shard(s).closed, DAY)


def test_another_split_is_refused_while_a_day_is_live(redis_client, tick_file):
    publish_file(redis_client, tick_file, STREAM, shards=2, keys=KEYS)
    consume_shard(redis_client, 0)
    with pytest.raises(KlineError, match="split into 2 shards"):
        register_shards(redis_client, KEYS, 3)
    register_shards(redis_client, KEYS, 2)  # the same split goes on


def test_cli_publish_and_consume_by_shard(redis_client, redis_url, tick_file):
    runner = CliRunner(env={"KLINE_REDIS_URL": redis_url})
    published = runner.invoke(cli, ["ticks", "publish", str(tick_file), "--stream", STREAM,
                                    "--shards", "2"])
    assert published.exit_code == 0, published.output
    assert f"to 2 shards {STREAM}:{{0..1}}" in published.output
    wrong = runner.invoke(cli, ["ticks", "consume", "--stream", STREAM, "--shard", "0/3",
                                "--until-idle", "0.2"])
    assert wrong.exit_code == 2 and "split into 2 shards" in wrong.output
    total = 0
    for s in range(2):
        result = runner.invoke(cli, ["ticks", "consume", "--stream", STREAM, "--shard",
                                     f"{s}/2", "--until-idle", "0.3", "--cumulative",
                                     "--volume-unit", "lots", "--report-every", "60"])
        assert result.exit_code == 0, result.output
        total += int(result.output.split("stopped: ")[1].split(" ticks")[0])
        assert f"{STREAM}:{{{s}}}:dead" in result.output
    assert total == redis_client.xlen(shard_stream(STREAM, 0)) + redis_client.xlen(
        shard_stream(STREAM, 1))
    assert_same_bars(read_day(redis_client, KEYS, DAY), clean_bars(tick_file))
