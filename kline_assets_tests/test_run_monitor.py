"""A run whose worker was killed with -9 is marked failed instead of staying STARTED."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from kline_assets.lib.run_monitor import dead_runs, fail_dead_runs, is_running
from kline_assets.lib.settings import SQL_DIR
from kline_assets.prices.partitions import create_run
from kline_assets.resources import PostgresResource

ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).parent / "dagster")


def test_a_live_process_runs_and_a_reused_pid_does_not():
    assert is_running(os.getpid(), since=time.time())
    assert not is_running(os.getpid(), since=0.0)


def _wait(predicate, what: str, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.mark.slow
def test_a_killed_materialization_is_marked_failed(pg_dsn, tmp_path):
    PostgresResource(dsn=pg_dsn).execute_file(SQL_DIR / "postgres" / "source.sql")
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home), "KLINE_PG_DSN": pg_dsn,
           "KLINE_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'store'}", "KLINE_DEVICE": "cpu"}
    with DagsterInstance.from_config(str(home)) as instance:
        create_run(instance, "exp_k")
        with psycopg.connect(pg_dsn) as holder:
            # The step blocks on its source read while the test holds the table.
            holder.execute("LOCK TABLE purchasing_shop_price_record IN ACCESS EXCLUSIVE MODE")
            proc = subprocess.Popen(
                [DAGSTER, "asset", "materialize", "-m", "kline_assets.definitions",
                 "--select", "price_aligned", "--partition", "2025-10-01|exp_k"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
            try:
                with psycopg.connect(pg_dsn, autocommit=True) as probe:
                    _wait(lambda: probe.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND datname = current_database()").fetchone()[0] > 0,
                        "the step to block on the source table")
                started = instance.get_run_records(
                    filters=RunsFilter(statuses=[DagsterRunStatus.STARTED]))
                assert len(started) == 1
                assert dead_runs(instance, quiet_s=0) == []  # its worker is alive
            finally:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            holder.rollback()
        run_id = started[0].dagster_run.run_id
        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED
        assert dead_runs(instance, quiet_s=3600) == []  # too recent to judge yet
        dead = fail_dead_runs(instance, quiet_s=0)
        assert [run.run_id for run in dead] == [run_id]
        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.FAILURE
        assert fail_dead_runs(instance, quiet_s=0) == []
