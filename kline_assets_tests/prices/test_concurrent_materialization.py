"""Two partitions materialized at once by separate `dagster` processes into one embedded store.

chdb lets one process hold a data path at a time; the ClickHouse resource's file lock makes
the processes take turns instead of failing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance

from kline_assets.prices.partitions import create_run
from kline_assets.resources import ClickHouseResource
from kline_assets_tests.support.prices import RECORDS, insert_records, stored

pytestmark = pytest.mark.slow  # two `dagster asset materialize` processes

ROOT = Path(__file__).resolve().parents[2]


def test_two_processes_write_different_partitions(catalog, clickhouse_dsn, tmp_path):
    insert_records(catalog, RECORDS)
    clickhouse = ClickHouseResource(dsn=clickhouse_dsn, database=f"t_{uuid.uuid4().hex[:10]}")
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home), "KLINE_PG_DSN": catalog.dsn,
           "KLINE_CLICKHOUSE_DSN": clickhouse_dsn, "KLINE_CLICKHOUSE_DATABASE": clickhouse.db,
           "KLINE_DEVICE": "cpu"}
    with DagsterInstance.from_config(str(home)) as instance:
        for run_id in ("exp_a", "exp_b"):
            create_run(instance, run_id)
    dagster = str(Path(sys.executable).parent / "dagster")
    try:
        procs = [
            subprocess.Popen(
                [dagster, "asset", "materialize", "-m", "kline_assets.definitions",
                 "--select", "price_aligned", "--partition", f"2025-10-01|{run_id}"],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for run_id in ("exp_a", "exp_b")
        ]
        outputs = [p.communicate(timeout=300)[0] for p in procs]
        for proc, out in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, out[-3000:]
        a = stored(clickhouse, "exp_a", "2025-10-01", "2025-11-01")
        b = stored(clickhouse, "exp_b", "2025-10-01", "2025-11-01")
        assert len(a) == 5
        pd.testing.assert_frame_equal(a, b)
    finally:
        clickhouse.drop_database()
