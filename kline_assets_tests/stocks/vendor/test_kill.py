"""kill -9 of a real `kline bars ingest` process mid-stream, then a restart: the tables
equal a clean run's and the committed counters count every entry once."""

from __future__ import annotations

import os
import signal
import time

import pytest

from kline_assets.stocks.vendor.publish import publish_file
from kline_assets.stocks.vendor.store import group_totals
from kline_assets_tests.support.ticks import kline_env, start_kline
from kline_assets_tests.support.vendor import (
    assert_minutes_equal,
    read_vendor,
    vendor_bars,
    write_vendor_csv,
)

STREAM = "t:vendor"
ARGS = ["bars", "ingest", "--stream", STREAM, "--consumer", "k1", "--batch", "40",
        "--report-every", "0.2", "--no-events"]


def committed(postgres) -> int:
    with postgres.connect() as conn:
        rows = group_totals(conn, STREAM, "history")
    return int(rows[0]["entries"]) if rows else 0


@pytest.mark.slow
def test_kill_9_mid_stream_then_restart_equals_a_clean_run(vendor_pg, redis_client, redis_url,
                                                           tmp_path):
    bars = vendor_bars(codes=["600000.SH", "000001.SZ", "300750.SZ"],
                       days=["2025-10-09", "2025-10-10"])
    n, _ = publish_file(redis_client, write_vendor_csv(bars, tmp_path / "v.csv"), STREAM)
    env = kline_env(redis_url, vendor_pg.dsn)
    for fraction in (0.4,):
        proc = start_kline(ARGS, env)
        deadline = time.monotonic() + 60
        while committed(vendor_pg) < fraction * n and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert committed(vendor_pg) < n, "the consumer finished before it was killed"
    assert redis_client.xpending(STREAM, "history")["pending"] > 0  # the batch in hand

    done = start_kline([*ARGS, "--until-idle", "0.3"], env)
    out, _ = done.communicate(timeout=120)
    assert done.returncode == 0, out
    assert "already committed" in out
    assert_minutes_equal(vendor_pg, bars)
    assert len(read_vendor(vendor_pg)) == int((bars["period"] == 5).sum())
    with vendor_pg.connect() as conn:
        (t,) = group_totals(conn, STREAM, "history")
    assert (t["entries"], t["inserted"], t["duplicates"]) == (n, n, 0)
    assert redis_client.xpending(STREAM, "history")["pending"] == 0
