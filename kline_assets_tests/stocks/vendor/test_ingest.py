"""Vendor bars through a real Redis stream into a real PostgreSQL, exactly once: a clean run,
redelivery after a commit whose XACK never happened, identical re-sends and corrections, every
rejection reason, two consumers in one group, and a PostgreSQL that goes away mid-run."""

from __future__ import annotations

import json
import threading

import pandas as pd
import psycopg
import pytest
import redis

from kline_assets.lib.errors import ServiceUnavailableError
from kline_assets.resources.postgres import PostgresResource
from kline_assets.stocks.vendor import ingest as ingest_module
from kline_assets.stocks.vendor.codec import decode
from kline_assets.stocks.vendor.ingest import IngestOptions, Ingestor
from kline_assets.stocks.vendor.keys import VendorKeys
from kline_assets.stocks.vendor.publish import publish_file
from kline_assets.stocks.vendor.screen import REASONS, DayCache, screen
from kline_assets.stocks.vendor.store import Batch, group_totals, write_batch
from kline_assets_tests.support.vendor import DAY, assert_minutes_equal, read_vendor

STREAM = "t:vendor"
KEYS = VendorKeys("t")


def ingest(client: redis.Redis, postgres: PostgresResource, **options) -> Ingestor:
    options = {"stream": STREAM, "consumer": "c1", "until_idle": 0.1, "block_ms": 20,
               "report_every": 3600, **options}
    worker = Ingestor(client, postgres, IngestOptions(**options), KEYS)
    worker.run()
    return worker


def totals(postgres: PostgresResource, group: str = "history") -> dict:
    with postgres.connect() as conn:
        return group_totals(conn, STREAM, group)[0]


def test_a_day_lands_once_with_its_counters_and_status(vendor_pg, redis_client, day_file,
                                                       day_bars):
    n, _ = publish_file(redis_client, day_file, STREAM)
    assert n == len(day_bars) == 480 + 96
    worker = ingest(redis_client, vendor_pg)
    assert (worker.stats.inserted, worker.stats.duplicates, worker.stats.rejected) == (n, 0, 0)
    assert_minutes_equal(vendor_pg, day_bars)
    five = read_vendor(vendor_pg)
    assert len(five) == 96 and set(five["period"]) == {5}
    t = totals(vendor_pg)
    assert (t["entries"], t["inserted"], t["duplicates"], t["corrections"]) == (n, n, 0, 0)
    # Nothing pending, the status and the last frame per symbol are in Redis.
    assert redis_client.xpending(STREAM, "history")["pending"] == 0
    status = redis_client.hgetall(KEYS.status(STREAM, "history"))
    assert int(status[b"inserted"]) == n and int(status[b"backlog"]) == 0
    last = redis_client.hgetall(KEYS.last_frames(STREAM))
    assert last == {b"600000.SH": f"{DAY}T15:00:00".encode(),
                    b"000001.SZ": f"{DAY}T15:00:00".encode()}
    assert redis_client.lrange(KEYS.rate(STREAM, "history"), 0, -1)

    # The same file again: every bar an identical re-send, nothing changes.
    publish_file(redis_client, day_file, STREAM)
    again = ingest(redis_client, vendor_pg)
    assert (again.stats.inserted, again.stats.duplicates, again.stats.corrections) == (0, n, 0)
    assert_minutes_equal(vendor_pg, day_bars)
    assert totals(vendor_pg)["duplicates"] == n


def test_a_redelivery_after_commit_adds_nothing(vendor_pg, redis_client, day_file, day_bars):
    """A consumer killed between COMMIT and XACK: its entries come back and add nothing, and
    the counters are not counted twice."""
    n, _ = publish_file(redis_client, day_file, STREAM)
    redis_client.xgroup_create(STREAM, "history", id="0")
    raw = redis.Redis(connection_pool=redis_client.connection_pool)
    raw.set_response_callback("XREADGROUP", lambda reply, **_kw: reply)
    reply = raw.execute_command("XREADGROUP", "GROUP", "history", "c1", "COUNT", 10_000,
                                "STREAMS", STREAM, ">")
    entries = reply[0][1] if isinstance(reply, list) else next(iter(reply.values()))
    table = decode(entries)
    screened = screen(table, DayCache())
    ids = table.column("id").to_pylist()
    with vendor_pg.connect(autocommit=True) as conn:
        write_batch(conn, STREAM, "history", Batch(ids, screened.rows, screened.rejected))
    assert redis_client.xpending(STREAM, "history")["pending"] == n  # committed, not acked

    worker = ingest(redis_client, vendor_pg)  # the same consumer starts again
    assert worker.stats.redelivered == n and worker.stats.inserted == 0
    assert redis_client.xpending(STREAM, "history")["pending"] == 0
    assert_minutes_equal(vendor_pg, day_bars)
    assert totals(vendor_pg)["entries"] == n and totals(vendor_pg)["duplicates"] == 0


def _send(client: redis.Redis, **fields) -> None:
    base = {"symbol": "600000.SH", "period": "1", "frame": f"{DAY}T10:00:00+08:00",
            "open": "10", "high": "10.5", "low": "9.5", "close": "10.2", "volume": "100",
            "amount": "1020"}
    client.xadd(STREAM, {k: v for k, v in {**base, **fields}.items() if v is not None})


def test_a_correction_replaces_the_bar_and_is_listed(vendor_pg, redis_client):
    _send(redis_client)
    _send(redis_client, frame=f"{DAY} 10:01")
    ingest(redis_client, vendor_pg)
    _send(redis_client)                              # identical: a duplicate
    _send(redis_client, close="10.3", high="10.6")   # other values: a correction
    _send(redis_client, frame=f"{DAY} 10:01", volume="300")
    _send(redis_client, frame=f"{DAY} 10:01", volume="400")  # corrected again, same batch
    worker = ingest(redis_client, vendor_pg)
    assert (worker.stats.duplicates, worker.stats.corrections, worker.stats.inserted) == (1, 3, 0)
    with vendor_pg.connect() as conn:
        rows = conn.execute("SELECT time::text, close, high, volume FROM stock_1min_qfq "
                            "ORDER BY time").fetchall()
        listed = conn.execute("SELECT code, time::text, old_close, close, old_volume, volume "
                              "FROM stock_vendor_corrections ORDER BY time, entry_id").fetchall()
    assert rows == [(f"{DAY} 10:00:00", 10.3, 10.6, 100.0), (f"{DAY} 10:01:00", 10.2, 10.5, 400.0)]
    assert ("600000.SH", f"{DAY} 10:00:00", 10.2, 10.3, 100.0, 100.0) in listed
    # Two copies in one batch: each compared with the one before it.
    assert ("600000.SH", f"{DAY} 10:01:00", 10.2, 10.2, 100.0, 300.0) in listed
    assert ("600000.SH", f"{DAY} 10:01:00", 10.2, 10.2, 300.0, 400.0) in listed
    assert totals(vendor_pg)["corrections"] == 3


BAD = {
    "malformed": [{"open": None}, {"high": "ten"}, {"frame": "yesterday"}],
    "bad_symbol": [{"symbol": "600000.sh"}, {"symbol": "60\t0000.SH"}],
    "bad_period": [{"period": "2"}],
    "bad_time": [{"frame": "1999-12-31T10:00:00"}],
    "calendar": [{"frame": "2099-06-01T10:00:00"}],
    "non_trading_day": [{"frame": "2025-10-01T10:00:00"}, {"frame": "2025-10-11T10:00:00"}],
    "outside_session": [{"frame": f"{DAY}T12:00:00"}, {"frame": f"{DAY}T10:00:30"},
                        {"period": "5", "frame": f"{DAY}T10:02:00"}],
    "not_finite": [{"close": "nan"}, {"volume": "inf"}],
    "beyond_bound": [{"open": "2e6", "high": "2e6"}],
    "high_low": [{"high": "10.1"}, {"low": "10.1"}],
    "negative_volume": [{"volume": "-1"}, {"amount": "-5"}],
}


def test_each_rejection_reason_is_dead_lettered_and_counted(vendor_pg, redis_client):
    assert set(BAD) == set(REASONS)
    _send(redis_client)  # one good bar among them
    for cases in BAD.values():
        for fields in cases:
            _send(redis_client, **fields)
    _send(redis_client, period="5", frame=f"{DAY}T10:05:00")  # a good 5-minute bar
    worker = ingest(redis_client, vendor_pg)
    assert worker.stats.inserted == 2
    dead = redis_client.xrange(KEYS.dead(STREAM))
    got: dict[str, int] = {}
    for _, fields in dead:
        reason = fields[b"reason"].decode()
        got[reason] = got.get(reason, 0) + 1
        assert fields[b"detail"] and b"symbol=" in fields[b"raw"]
    want = {reason: len(cases) for reason, cases in BAD.items()}
    assert got == want
    assert totals(vendor_pg)["rejected"] == want
    assert json.loads(redis_client.hget(KEYS.status(STREAM, "history"), "rejected")) == want
    details = {f[b"reason"].decode(): f[b"detail"].decode() for _, f in dead}
    assert "closures file" in details["calendar"] or "KLINE_XSHG_CLOSURES" in details["calendar"]
    assert "2025-10-01 is not an XSHG trading day" in details["non_trading_day"] \
        or "2025-10-11" in details["non_trading_day"]
    # A redelivery parks nothing twice.
    assert redis_client.xlen(KEYS.dead(STREAM)) == sum(want.values())


def test_two_consumers_in_one_group_equal_one(vendor_pg, redis_client, day_file, day_bars):
    n, _ = publish_file(redis_client, day_file, STREAM)
    redis_client.xgroup_create(STREAM, "history", id="0")
    workers = [Ingestor(redis_client, vendor_pg,
                        IngestOptions(stream=STREAM, consumer=name, batch=40, until_idle=0.3,
                                      block_ms=20, report_every=3600), KEYS)
               for name in ("a", "b")]
    threads = [threading.Thread(target=w.run) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(w.stats.entries for w in workers) == n
    assert all(w.stats.entries > 0 for w in workers), [w.stats for w in workers]
    assert sum(w.stats.inserted for w in workers) == n
    assert_minutes_equal(vendor_pg, day_bars)
    assert totals(vendor_pg)["inserted"] == n


def test_postgres_going_away_leaves_the_batch_pending_and_the_next_start_writes_it(
        vendor_pg, redis_client, day_file, day_bars, monkeypatch):
    n, _ = publish_file(redis_client, day_file, STREAM)
    real = ingest_module.write_batch
    calls = []

    def cut_on_second(conn, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the server drops this consumer's connection
            with psycopg.connect(vendor_pg.dsn, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        return real(conn, *args, **kwargs)

    monkeypatch.setattr(ingest_module, "write_batch", cut_on_second)
    with pytest.raises(ServiceUnavailableError, match=r"PostgreSQL at .* stay pending"):
        ingest(redis_client, vendor_pg, batch=100)
    committed = totals(vendor_pg)["entries"]
    assert committed == 100
    assert redis_client.xpending(STREAM, "history")["pending"] >= 100
    monkeypatch.setattr(ingest_module, "write_batch", real)

    worker = ingest(redis_client, vendor_pg, batch=100)
    assert worker.stats.inserted == n - committed
    assert redis_client.xpending(STREAM, "history")["pending"] == 0
    assert_minutes_equal(vendor_pg, day_bars)


def test_postgres_down_at_start_is_one_line_and_the_stream_keeps_the_bars(
        redis_client, redis_url, day_file):
    from click.testing import CliRunner

    from kline_assets.cli import cli

    publish_file(redis_client, day_file, STREAM)
    result = CliRunner().invoke(cli, ["bars", "ingest", "--stream", STREAM, "--until-idle", "0",
                                      "--no-events"],
                                env={"KLINE_PG_DSN": "postgresql://postgres@127.0.0.1:1/x",
                                     "KLINE_REDIS_URL": redis_url})
    assert result.exit_code == 2, result.output
    assert "PostgreSQL unreachable at 127.0.0.1:1/x" in result.output
    info = {g["name"].decode(): g for g in redis_client.xinfo_groups(STREAM)}
    assert info["history"]["lag"] == redis_client.xlen(STREAM)  # nothing delivered, nothing lost


def test_named_fields_in_any_order_and_case_with_a_name_and_lots(vendor_pg, redis_client):
    redis_client.xadd(STREAM, {"Amount": "1020", "VOLUME": "1", "close": "10.2", "low": "9.5",
                               "high": "10.5", "open": "10", "frame": f"{DAY} 10:00:00",
                               "period": "1", "symbol": "600000.SH", "name": "浦发银行"})
    ingest(redis_client, vendor_pg, volume_unit="lots")
    with vendor_pg.connect() as conn:
        assert conn.execute("SELECT name, volume FROM stock_1min_qfq").fetchall() == [
            ("浦发银行", 100.0)]


def test_frames_as_utc_offsets_land_on_the_beijing_clock(vendor_pg, redis_client):
    _send(redis_client, frame=f"{DAY}T02:00:00Z")
    ingest(redis_client, vendor_pg)
    with vendor_pg.connect() as conn:
        assert conn.execute("SELECT time::text FROM stock_1min_qfq").fetchone() == (
            f"{DAY} 10:00:00",)
    assert pd.Timestamp(DAY).month == 10


def test_stop_finishes_the_batch_in_hand(vendor_pg, redis_client, day_file, day_bars):
    """What SIGTERM/SIGINT do (the CLI installs `stop` as their handler): the batch being
    committed is finished and acknowledged; a batch read ahead stays pending for the next
    start, nothing is lost."""
    n, _ = publish_file(redis_client, day_file, STREAM)
    worker = Ingestor(redis_client, vendor_pg, IngestOptions(
        stream=STREAM, consumer="c1", batch=40, block_ms=20, report_every=3600), KEYS)
    thread = threading.Thread(target=worker.run)
    thread.start()
    while worker.stats.entries < 80 and thread.is_alive():
        threading.Event().wait(0.005)
    worker.stop()
    thread.join(30)
    assert not thread.is_alive()
    done = totals(vendor_pg)["entries"]
    assert done == worker.stats.entries < n
    assert redis_client.xpending(STREAM, "history")["pending"] <= 40  # read ahead, not lost
    rest = ingest(redis_client, vendor_pg)
    assert worker.stats.inserted + rest.stats.inserted == n
    assert_minutes_equal(vendor_pg, day_bars)


def test_a_dead_consumers_entries_are_claimed(vendor_pg, redis_client, day_file, day_bars):
    n, _ = publish_file(redis_client, day_file, STREAM)
    redis_client.xgroup_create(STREAM, "history", id="0")
    redis_client.xreadgroup("history", "dead", {STREAM: ">"}, count=100)  # then it died
    worker = ingest(redis_client, vendor_pg, consumer="live", claim_idle_ms=50)
    assert worker.stats.claimed >= 100 and worker.stats.inserted == n
    assert redis_client.xpending(STREAM, "history")["pending"] == 0
    assert_minutes_equal(vendor_pg, day_bars)


def test_a_bad_vendor_file_names_its_line_and_publishes_nothing(redis_client, redis_url,
                                                                tmp_path, day_bars):
    from click.testing import CliRunner

    from kline_assets.cli import cli

    bad = day_bars.head(5).copy()
    bad.loc[bad.index[3], "period"] = 7
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    result = CliRunner().invoke(cli, ["bars", "publish-vendor", str(path), "--stream", STREAM],
                                env={"KLINE_REDIS_URL": redis_url})
    assert result.exit_code == 2, result.output
    assert "bad.csv: line 5: period '7' is not one of 1, 5, 15, 30, 60" in result.output
    assert redis_client.exists(STREAM) == 0
