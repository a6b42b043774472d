"""A code server that evaluates the live sensor for weeks stays flat: its embedded-engine opens
happen in a retired worker, so the threads chdb leaves behind each open die with the worker.

The real thing: `dagster api grpc` on the project's definitions, asked for the sensor's
evaluation over gRPC, as the daemon asks it every 15 minutes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from dagster._core.remote_origin import GrpcServerCodeLocationOrigin
from dagster._grpc.client import DagsterGrpcClient

from kline_assets_tests.support.prices import insert_records
from kline_assets_tests.support.processes import tree_threads

CYCLES = 100
CEILING = 50  # threads above the level after warm-up, the code server and its children


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_code_server_stays_flat_over_100_live_sensor_evaluations(
        catalog, clickhouse, persistent_instance, tmp_path):
    insert_records(catalog, [(1, 1, 10, 100_000, None, None, "2025-11-05 11:35:00")])
    port = _free_port()
    env = {**os.environ, "KLINE_PG_DSN": catalog.dsn, "KLINE_CLICKHOUSE_DSN": clickhouse.dsn,
           "KLINE_CLICKHOUSE_DATABASE": clickhouse.db}
    log = tmp_path / "code_server.log"  # a file, not a pipe: a full pipe would block the server
    server = subprocess.Popen(
        [sys.executable, "-m", "dagster", "api", "grpc", "-m", "kline_assets.definitions",
         "-h", "127.0.0.1", "-p", str(port)],
        env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        client = DagsterGrpcClient(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 120
        while True:
            try:
                client.ping("")
                break
            except Exception:
                assert server.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, "the code server did not come up"
                time.sleep(0.5)
        origin = GrpcServerCodeLocationOrigin(host="127.0.0.1", port=port,
                                              location_name="kline_assets")
        with origin.create_location(persistent_instance) as location:
            handle = next(iter(location.get_repositories().values())).handle

            def evaluate() -> None:
                # Cursor 0 every time: each evaluation sees new records and opens the engine.
                data = location.get_sensor_execution_data(
                    persistent_instance, handle, "live_prices_sensor", None, None, "0", None,
                    None)
                assert data.run_requests and not data.skip_message, data

            for _ in range(3):
                evaluate()
            own_start, tree_start = tree_threads(server.pid)
            own_peak, tree_peak = own_start, tree_start
            for _ in range(CYCLES):
                evaluate()
                own, tree = tree_threads(server.pid)
                own_peak, tree_peak = max(own_peak, own), max(tree_peak, tree)
        print(f"code server threads: own {own_start} → peak {own_peak}, with its worker "
              f"{tree_start} → peak {tree_peak} over {CYCLES} evaluations")
        # Opening the engine in the server itself would add ~5 threads an evaluation (~500).
        assert own_peak <= own_start + 10
        assert tree_peak <= tree_start + CEILING
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
