"""`kline serve` as a user starts it: configured by the environment, serving the page, the
spec and a health check that names each store's address."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from kline_assets_tests.support.ports import closed_port
from kline_assets_tests.support.processes import children, tree_threads


def first_answer(proc: subprocess.Popen, url: str, within_s: float = 60) -> httpx.Response:
    """The service's first response, once it listens (it is still starting before)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return httpx.get(url, timeout=30)
        except httpx.TransportError:
            assert proc.poll() is None, "kline serve exited"
            assert time.monotonic() < deadline, f"kline serve did not answer within {within_s}s"
            time.sleep(0.2)


def test_kline_serve_starts_and_reports_stores_down(repo_root):
    port, ch_port, pg_port = closed_port(), closed_port(), closed_port()
    env = {**os.environ, "PYTHONPATH": str(repo_root),
           "KLINE_CLICKHOUSE_DSN": f"http://reader:s3cret@127.0.0.1:{ch_port}/kline",
           "KLINE_PG_DSN": f"postgresql://postgres:s3cret@127.0.0.1:{pg_port}/kline"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kline_assets.cli", "serve", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        page = first_answer(proc, url + "/")
        assert page.status_code == 200 and "<canvas id=\"chart\">" in page.text
        assert httpx.get(url + "/static/chart.js").status_code == 200
        spec = httpx.get(url + "/openapi.json").json()
        assert {"/api/overall-bars/", "/api/cohort-bars/", "/api/features/",
                "/api/purchasing-time-analyses/", "/api/runs/", "/healthz"} <= set(spec["paths"])
        health = httpx.get(url + "/healthz", timeout=30)
        assert health.status_code == 503
        stores = {s["store"]: s for s in health.json()["stores"]}
        assert stores["clickhouse"]["address"] == f"http://127.0.0.1:{ch_port}"
        assert stores["postgres"]["address"] == f"127.0.0.1:{pg_port}/kline"
        assert "s3cret" not in health.text
    finally:
        proc.terminate()
        proc.wait(20)


@pytest.mark.slow
def test_kline_serve_replaces_its_worker_before_reopens_pile_up_and_never_refuses(read_store):
    """Each time the service lets the engine go and opens it again, chdb leaves ~5 threads
    behind; after `--max-engine-opens` a fresh worker takes over (serving before the old one
    stops, and the worn one opens no more meanwhile), so 60 requests past the hold stay under a
    fixed ceiling and every request is answered. A connection the old worker accepted in the
    instant it stops may be closed unanswered (uvicorn's graceful shutdown closes connections
    that have not sent their request yet): at most one per replacement, and a retry gets in."""
    port, opens = closed_port(), 5
    env = {**os.environ, "KLINE_CLICKHOUSE_DSN": read_store.clickhouse.dsn,
           "KLINE_CLICKHOUSE_DATABASE": read_store.clickhouse.db,
           "KLINE_PG_DSN": read_store.postgres.dsn}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kline_assets.cli", "serve", "--port", str(port),
         "--hold-s", "0.05", "--max-engine-opens", str(opens)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api/runs/"
    try:
        assert first_answer(proc, url).status_code == 200
        _, start = tree_threads(proc.pid)
        peak, workers, closed = start, set(), 0
        for _ in range(60):
            time.sleep(0.15)  # past the hold: the next request opens the engine again
            try:
                response = httpx.get(url, timeout=30)
            except httpx.RemoteProtocolError:
                closed += 1
                response = httpx.get(url, timeout=30)
            assert response.status_code == 200
            _, threads = tree_threads(proc.pid)
            peak = max(peak, threads)
            workers |= children(proc.pid)
        print(f"kline serve threads: {start} → peak {peak} over 60 requests, "
              f"{len(workers)} child processes, {closed} connection(s) closed unanswered")
        assert len(workers) >= 3  # the first worker and at least two replacements
        assert closed <= len(workers)
        # Without replacement: ~5 threads a reopen, ~300 more.
        assert peak <= start + 100
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)

