"""The stream consumer against a real Redis: whatever happens to the consumers — a kill -9
mid-stream, a redelivery, two of them sharing a group, malformed entries — the bars in Redis
equal the batch kernel's bars of the same ticks."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import redis
from click.testing import CliRunner

from kline_assets.cli import cli
from kline_assets.kernels.bars import Ticks
from kline_assets.stocks.tickfiles import read_ticks
from kline_assets.stocks.ticks.codec import encode
from kline_assets.stocks.ticks.consume import Consumer, ConsumerOptions
from kline_assets.stocks.ticks.keys import LiveKeys
from kline_assets.stocks.ticks.live import live_days, read_day
from kline_assets.stocks.ticks.live import status as live_status
from kline_assets.stocks.ticks.publish import publish_file, publish_lines
from kline_assets_tests.support.ticks import (
    CONSUME,
    DAY,
    assert_same_bars,
    clean_bars,
    kline_env,
    start_kline,
    write_tick_file,
)

KEYS = LiveKeys()
STREAM = "t:ticks"


def options(**kw: object) -> ConsumerOptions:
    base = dict(stream=STREAM, group="bars", consumer="c1", batch=200, until_idle=0.3,
                block_ms=50, claim_idle_ms=200, report_every=60.0, cumulative=True,
                volume_unit="lots")
    return ConsumerOptions(**{**base, **kw})


@pytest.fixture
def tick_file(tmp_path: Path) -> Path:
    return write_tick_file(tmp_path / "ticks.csv")


def acked(client: redis.Redis) -> int:
    """Entries the group has read and acknowledged."""
    group = client.xinfo_groups(STREAM)[0]
    return int(group["entries-read"] or 0) - int(group["pending"])


def test_publish_then_consume_equals_the_batch_kernel(redis_client, redis_url, tick_file):
    result = CliRunner(env={"KLINE_REDIS_URL": redis_url}).invoke(
        cli, ["ticks", "publish", str(tick_file), "--stream", STREAM])
    assert result.exit_code == 0, result.output
    n = len(read_ticks(tick_file))
    assert f"published {n} ticks to {STREAM}" in result.output
    assert redis_client.xlen(STREAM) == n

    stats = Consumer(redis_client, options()).run()

    assert stats.ticks == n and stats.malformed == 0
    assert live_days(redis_client, KEYS) == [DAY]
    assert_same_bars(read_day(redis_client, KEYS, DAY), clean_bars(tick_file))
    report = {k.decode(): int(v) for k, v in redis_client.hgetall(KEYS.report(DAY)).items()}
    assert report["received"] == n and report["duplicates"] == 1
    assert report["rejected:lunch"] == 1 and report["rejected:after_close"] == 1
    [status] = live_status(redis_client, KEYS)["consumers"]
    assert int(status["ticks"]) == n and int(status["pending"]) == 0
    assert int(status["lag_entries"]) == 0 and status["stream"] == STREAM


def test_cli_errors_name_the_store(tmp_path, tick_file):
    runner = CliRunner(env={"KLINE_REDIS_URL": "redis://:secret@127.0.0.1:1/12"})
    for args in (["publish", str(tick_file)], ["consume", "--until-idle", "1"]):
        result = runner.invoke(cli, ["ticks", *args])
        assert result.exit_code == 2
        assert "Redis unreachable at redis://:***@127.0.0.1:1/12" in result.output
        assert "secret" not in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_kill_9_mid_stream_then_restart_equals_a_clean_run(redis_client, redis_url, tick_file):
    publish_file(redis_client, tick_file, STREAM)
    total = redis_client.xlen(STREAM)
    env = kline_env(redis_url)
    args = ["ticks", "consume", "--stream", STREAM, "--batch", "20", "--claim-idle-ms", "300",
            *CONSUME]
    first = start_kline([*args, "--consumer", "doomed"], env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            groups = redis_client.xinfo_groups(STREAM) if redis_client.exists(STREAM) else []
            if groups and acked(redis_client) >= 1000:
                break
            time.sleep(0.005)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    done = acked(redis_client)
    assert 1000 <= done < total, "the kill must land mid-stream"

    second = start_kline([*args, "--consumer", "survivor", "--until-idle", "0.5"], env)
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 0, out

    assert acked(redis_client) == total
    assert redis_client.xpending(STREAM, "bars")["pending"] == 0
    assert_same_bars(read_day(redis_client, KEYS, DAY), clean_bars(tick_file))


class CrashBeforeAck(Consumer):
    """A consumer that dies between writing a batch and acknowledging it."""

    def acknowledge(self, ids: list[bytes]) -> None:
        raise KeyboardInterrupt("killed before XACK")


def test_redelivered_entries_do_not_double_count(redis_client, tick_file):
    publish_file(redis_client, tick_file, STREAM)
    with pytest.raises(KeyboardInterrupt):
        CrashBeforeAck(redis_client, options(consumer="crashing")).run()
    assert redis_client.xpending(STREAM, "bars")["pending"] == 200  # written, never acked
    partial = read_day(redis_client, KEYS, DAY)
    assert len(partial) > 0

    stats = Consumer(redis_client, options(consumer="heir")).run()

    assert stats.claimed >= 200  # the dead consumer's batch, delivered again
    assert_same_bars(read_day(redis_client, KEYS, DAY), clean_bars(tick_file))
    # Delivering everything once more changes nothing either: every tick is behind the cursor.
    entries = redis_client.xrange(STREAM)
    again = Consumer(redis_client, options(consumer="replayer"))
    for lo in range(0, len(entries), 500):
        again.process(entries[lo:lo + 500])
    assert_same_bars(read_day(redis_client, KEYS, DAY), clean_bars(tick_file))


@pytest.mark.slow
def test_two_consumers_split_the_work_and_agree_with_one(redis_client, redis_url, tick_file):
    env = kline_env(redis_url)
    args = ["ticks", "consume", "--stream", STREAM, "--batch", "50", "--until-idle", "4",
            *CONSUME]
    redis_client.xgroup_create(STREAM, "bars", id="0", mkstream=True)
    workers = [start_kline([*args, "--consumer", name], env) for name in ("left", "right")]
    try:
        deadline = time.monotonic() + 60  # both have joined the group before the feed starts
        while len(redis_client.xinfo_consumers(STREAM, "bars")) < 2:
            assert time.monotonic() < deadline, "the consumers did not start"
            time.sleep(0.05)
        publish_file(redis_client, tick_file, STREAM, rate=8000)
        outputs = [w.communicate(timeout=120)[0] for w in workers]
    finally:
        for w in workers:
            w.kill()
    assert [w.returncode for w in workers] == [0, 0], outputs
    ticks = [int(out.split("stopped: ")[1].split(" ticks")[0]) for out in outputs]
    assert all(n > 0 for n in ticks), ticks  # both did part of the work
    assert sum(ticks) == len(read_ticks(tick_file))
    assert_same_bars(read_day(redis_client, KEYS, DAY), clean_bars(tick_file))


def test_malformed_entries_are_dead_lettered_and_never_block(redis_client, tick_file):
    ticks = read_ticks(tick_file)
    lines = encode(ticks.take(np.argsort(ticks.time, kind="stable")))
    half = len(lines) // 2
    publish_lines(redis_client, lines[:half], STREAM)
    redis_client.xadd(STREAM, {"t": "garbage"})
    redis_client.xadd(STREAM, {"t": "600000.SH,1760000000000000,not-a-price,1,1,,,"})
    redis_client.xadd(STREAM, {"foo": "bar"})
    publish_lines(redis_client, lines[half:], STREAM)
    # Fields by name are accepted too (other tools publish that way); this one is beyond the
    # exchange calendar, so it is parked as well.
    redis_client.xadd(STREAM, {"symbol": "600000.SH", "time": "2099-01-05T10:00:00+08:00",
                               "price": "10", "volume": "1", "amount": "10"})

    stats = Consumer(redis_client, options()).run()

    assert stats.malformed == 4
    dead = redis_client.xrange(KEYS.dead(STREAM))
    reasons = [fields[b"reason"].decode() for _, fields in dead]
    assert len(dead) == 4 and any("calendar" in r for r in reasons), reasons
    assert dead[0][1][b"raw"] == b"t=garbage"
    assert int(redis_client.hget(KEYS.status(STREAM, "bars"), "malformed")) == 4
    assert redis_client.xpending(STREAM, "bars")["pending"] == 0
    assert_same_bars(read_day(redis_client, KEYS, DAY), clean_bars(tick_file))


def test_named_fields_are_ticks_too(redis_client):
    redis_client.xadd(STREAM, {"symbol": "600000.SH", "time": f"{DAY} 10:00:01",
                               "price": "10.5", "volume": "300", "amount": "3150"})
    redis_client.xadd(STREAM, {"symbol": "600000.SH", "time": f"{DAY}T10:00:02+08:00",
                               "price": "10.6", "volume": "100", "amount": "1060"})
    Consumer(redis_client, options(cumulative=False, volume_unit="shares")).run()
    bars = read_day(redis_client, KEYS, DAY)
    assert len(bars) == 1 and str(bars.frame[0]) == f"{DAY}T10:01:00"
    assert (bars.open[0], bars.close[0], bars.volume[0]) == (10.5, 10.6, 400.0)


def test_sigterm_stops_after_the_batch_in_hand(redis_client, redis_url, tick_file):
    publish_file(redis_client, tick_file, STREAM)
    proc = start_kline(["ticks", "consume", "--stream", STREAM, "--batch", "20", *CONSUME],
                       kline_env(redis_url))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if redis_client.exists(STREAM) and redis_client.xinfo_groups(STREAM) \
                    and acked(redis_client) >= 200:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired as exc:  # say how the process held its signals
            masks = [line.strip() for line in Path(f"/proc/{proc.pid}/status").read_text(
                ).splitlines() if line.startswith(("SigPnd", "ShdPnd", "SigBlk", "SigIgn",
                                                   "SigCgt"))]
            pytest.fail(f"SIGTERM not acted on in 30 s; {masks}; acked {acked(redis_client)}; "
                        f"output: {exc.output!r}")
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert "stopped:" in out
    assert redis_client.xpending(STREAM, "bars")["pending"] == 0  # the batch in hand was acked


def test_days_are_the_ticks_own(redis_client):
    """A replay of a past day builds that day's keys, whatever today is."""
    t = Ticks.from_arrays(np.array(["000001.SZ"] * 2),
                          np.array(["2025-09-30T10:00:00", "2025-10-09T10:00:00"],
                                   dtype="datetime64[us]"),
                          np.array([10.0, 11.0]), np.array([100.0, 100.0]),
                          np.array([1000.0, 1100.0]))
    publish_lines(redis_client, encode(t), STREAM)
    Consumer(redis_client, options(cumulative=False, volume_unit="shares")).run()
    assert live_days(redis_client, KEYS) == ["2025-09-30", "2025-10-09"]
    assert read_day(redis_client, KEYS, "2025-09-30").close.tolist() == [10.0]


def test_holiday_ticks_leave_no_day_behind(redis_client):
    t = Ticks.from_arrays(np.array(["000001.SZ"]),
                          np.array(["2025-10-01T10:00:00"], dtype="datetime64[us]"),
                          np.array([10.0]), np.array([100.0]), np.array([1000.0]))
    publish_lines(redis_client, encode(t), STREAM)
    Consumer(redis_client, options(cumulative=False, volume_unit="shares")).run()
    assert redis_client.keys(KEYS.day("2025-10-01") + "*") == []
    status = redis_client.hget(KEYS.status(STREAM, "bars"), "rejected:non_trading_day")
    assert int(status) == 1


def test_provisional_days_trade_and_a_year_added_to_the_closures_file_is_taken_up(
    redis_client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
):
    closures = tmp_path / "closures.csv"
    closures.write_text("year,2027\n2027-01-01,New Year's Day\n", encoding="utf-8")
    monkeypatch.setenv("KLINE_XSHG_CLOSURES", str(closures))

    def tick(stamp: str, price: float) -> list[bytes]:
        return encode(Ticks.from_arrays(
            np.array(["000001.SZ"]), np.array([stamp], dtype="datetime64[us]"),
            np.array([price]), np.array([100.0]), np.array([1000.0])))

    consumer = Consumer(redis_client, options(cumulative=False, volume_unit="shares"))
    publish_lines(redis_client, tick("2027-01-04T10:00:00", 10.0) + tick("2027-01-01T10:00:00", 9.0)
                  + tick("2028-01-03T10:00:00", 11.0), STREAM)
    consumer.run()
    assert live_days(redis_client, KEYS) == ["2027-01-04"]
    assert read_day(redis_client, KEYS, "2027-01-04").close.tolist() == [10.0]
    status = redis_client.hget(KEYS.status(STREAM, "bars"), "rejected:non_trading_day")
    assert int(status) == 1  # New Year's Day, from the file
    [(_, parked)] = redis_client.xrange(KEYS.dead(STREAM))
    assert str(closures) in parked[b"reason"].decode()
    assert "'year,2028'" in parked[b"reason"].decode()

    closures.write_text("year,2027\n2027-01-01,New Year's Day\nyear,2028\n", encoding="utf-8")
    publish_lines(redis_client, tick("2028-01-03T10:00:01", 11.5), STREAM)
    consumer.run()  # the same consumer, without a restart
    assert live_days(redis_client, KEYS) == ["2027-01-04", "2028-01-03"]


def test_a_time_no_calendar_could_hold_is_parked_and_the_ticks_behind_it_applied(
    redis_client, redis_url,
):
    good = encode(Ticks.from_arrays(
        np.array(["600001.SH"] * 2), np.array([f"{DAY}T10:00:01", f"{DAY}T10:00:02"],
                                              dtype="datetime64[us]"),
        np.array([10.0, 10.2]), np.array([100.0, 200.0]), np.array([1000.0, 2040.0])))
    publish_lines(redis_client, good[:1], STREAM)
    for us in ("-9223372036854775807", "9223372036854775807", "-100000000000000000"):
        redis_client.xadd(STREAM, {"t": f"600001.SH,{us},10.5,100,1000,,,"})
    publish_lines(redis_client, good[1:], STREAM)

    result = CliRunner(env={"KLINE_REDIS_URL": redis_url}).invoke(
        cli, ["ticks", "consume", "--stream", STREAM, "--group", "g", "--until-idle", "0.3"])

    assert result.exit_code == 0, result.output
    assert redis_client.xpending(STREAM, "g")["pending"] == 0
    dead = redis_client.xrange(KEYS.dead(STREAM))
    assert [f[b"raw"].split(b",")[1] for _, f in dead] == [
        b"-9223372036854775807", b"9223372036854775807", b"-100000000000000000"]
    assert all(b"is outside 2000-01-01" in f[b"reason"] for _, f in dead)
    bars = read_day(redis_client, KEYS, DAY)
    assert bars.close.tolist() == [10.2] and bars.volume.tolist() == [300.0]


def test_ticks_rejected_for_their_values_are_counted_and_parked_with_their_fields(
    redis_client,
):
    stamps = np.array([f"{DAY}T10:00:0{s}" for s in range(1, 6)], dtype="datetime64[us]")
    t = Ticks.from_arrays(np.array(["600001.SH"] * 5), stamps,
                          np.array([10.0, np.nan, 10.1, 10.2, -1.0]),
                          np.array([100.0, 100.0, -5.0, 100.0, 100.0]),
                          np.array([1000.0, 1000.0, 1000.0, np.inf, 1000.0]))
    publish_lines(redis_client, encode(t), STREAM)

    stats = Consumer(redis_client, options(cumulative=False, volume_unit="shares")).run()

    dead = redis_client.xrange(KEYS.dead(STREAM))
    reasons = [f[b"reason"].decode() for _, f in dead]
    assert reasons == ["bad_price: price nan is not a finite number above 0",
                       "bad_volume: volume -5.0 and amount 1000.0 must be finite and ≥ 0",
                       "bad_volume: volume 100.0 and amount inf must be finite and ≥ 0",
                       "bad_price: price -1.0 is not a finite number above 0"]
    raw = dead[0][1][b"raw"]
    assert raw.startswith(b"t=600001.SH,") and raw.split(b",")[2:5] == [b"nan", b"100", b"1000"]
    assert stats.malformed == 4 and redis_client.xpending(STREAM, "bars")["pending"] == 0
    report = redis_client.hgetall(KEYS.report(DAY))
    assert int(report[b"rejected:bad_price"]) == 2 and int(report[b"rejected:bad_volume"]) == 2
    bars = read_day(redis_client, KEYS, DAY)
    assert bars.close.tolist() == [10.0] and bars.volume.tolist() == [100.0]


def test_absurd_values_never_become_bars_or_day_extremes(redis_client):
    stamps = np.array([f"{DAY}T10:00:0{s}" for s in range(1, 4)], dtype="datetime64[us]")
    t = Ticks.from_arrays(np.array(["600001.SH"] * 3), stamps, np.array([10.0, 10.5, 10.6]),
                          np.array([100.0, 1e300, 100.0]), np.array([1000.0, 1e300, 1060.0]),
                          high=np.array([10.0, 10.5, -5.0]), low=np.array([10.0, 10.5, np.inf]))
    publish_lines(redis_client, encode(t), STREAM)

    Consumer(redis_client, options(cumulative=False, volume_unit="shares")).run()

    reasons = [f[b"reason"].decode() for _, f in redis_client.xrange(KEYS.dead(STREAM))]
    assert reasons == ["bad_volume: volume 1e+300 or amount 1e+300 is above 1e+15",
                       "bad_price: day high -5.0 is not a price in (0, 1e+06]"]
    bars = read_day(redis_client, KEYS, DAY)
    assert (bars.open.tolist(), bars.high.tolist(), bars.low.tolist()) == ([10.0], [10.0], [10.0])
    assert bars.volume.tolist() == [100.0]
    report = redis_client.hgetall(KEYS.report(DAY))
    assert int(report[b"rejected:bad_price"]) == 1 and int(report[b"rejected:bad_volume"]) == 1
