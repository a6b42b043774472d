"""`kline serve` as a user starts it: configured by the environment, serving the page, the
spec and a health check that names each store's address."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from kline_assets_tests.api.test_errors import closed_port


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
        deadline = time.monotonic() + 60
        while True:
            try:
                page = httpx.get(url + "/", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
                time.sleep(0.2)
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
