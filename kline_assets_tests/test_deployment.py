"""The deployment's instance configuration is real: the shipped dagster.yaml loads with
dagster-postgres against a local PostgreSQL database of its own, and monitors runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid

import psycopg
import pytest

from kline_assets_tests.support.databases import ADMIN_DSN
from kline_assets_tests.support.prices import insert_catalog, insert_records

pytestmark = pytest.mark.slow  # a materialization on the deployment's PostgreSQL storage


def test_dagster_postgres_is_the_release_that_belongs_to_dagster():
    import dagster
    import dagster_docker
    import dagster_postgres

    assert dagster.__version__ == "1.13.27"
    assert dagster_postgres.__version__ == "0.29.27"
    assert dagster_docker.__version__ == "0.29.27"


@pytest.fixture
def dagster_db():
    name = f"kline_dagster_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _deployment_env(tmp_path, repo_root, dagster_db) -> dict[str, str]:
    """DAGSTER_HOME holding the repository's dagster.yaml, its storage on `dagster_db`."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(repo_root / "dagster.yaml", home / "dagster.yaml")
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN)
    return {
        "DAGSTER_HOME": str(home), "PATH": "/usr/bin:/bin",
        "DAGSTER_PG_HOST": info.get("host", "127.0.0.1"),
        "DAGSTER_PG_PORT": str(info.get("port", 5432)),
        "DAGSTER_PG_USER": info.get("user", "postgres"),
        "DAGSTER_PG_PASSWORD": info.get("password", ""), "DAGSTER_PG_DB": dagster_db,
    }


def test_shipped_dagster_yaml_loads_on_postgres(tmp_path, repo_root, dagster_db):
    env = _deployment_env(tmp_path, repo_root, dagster_db)
    code = (
        "from dagster import DagsterInstance\n"
        "i = DagsterInstance.get()\n"
        "print(type(i.run_storage).__name__, i.run_monitoring_enabled,\n"
        "      type(i.run_launcher).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["PostgresRunStorage", "True", "DockerRunLauncher"]
    with psycopg.connect(ADMIN_DSN.rsplit("/", 1)[0] + f"/{dagster_db}") as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"runs", "event_logs"} <= tables


def test_a_materialization_is_stored_in_postgres(tmp_path, repo_root, dagster_db, postgres,
                                                 clickhouse, clickhouse_dsn):
    """A real price_aligned materialization, launched on the deployment's instance: the run,
    the run-id partition and the materialization event live in PostgreSQL."""
    catalog = insert_catalog(postgres)
    insert_records(catalog, [(1, 1, 10, 100_000, None, None, "2025-10-03 10:01:00"),
                             (2, 2, 10, 101_000, None, None, "2025-10-03 10:07:00")])
    env = {**_deployment_env(tmp_path, repo_root, dagster_db), "KLINE_PG_DSN": catalog.dsn,
           "KLINE_CLICKHOUSE_DSN": clickhouse_dsn, "KLINE_CLICKHOUSE_DATABASE": clickhouse.db}
    code = (
        "import kline_assets.lib.dagster_notices\n"
        "from dagster import DagsterInstance, materialize\n"
        "from kline_assets.prices.assets import price_aligned, raw_price_records\n"
        "from kline_assets.prices.partitions import create_run\n"
        "from kline_assets.resources.build import store_resources\n"
        "i = DagsterInstance.get()\n"
        "create_run(i, 'live')\n"
        "r = materialize([raw_price_records, price_aligned], selection=[price_aligned],\n"
        "    partition_key='2025-10-01|live', resources=store_resources(), instance=i)\n"
        "print(r.run_id, r.success)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300, cwd=repo_root)
    assert out.returncode == 0, out.stderr[-3000:]
    run_id, ok = out.stdout.split()[-2:]
    assert ok == "True"
    with psycopg.connect(ADMIN_DSN.rsplit("/", 1)[0] + f"/{dagster_db}") as conn:
        status = conn.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,)).fetchone()
        events = conn.execute(
            "SELECT asset_key, partition, event FROM event_logs WHERE run_id = %s AND "
            "dagster_event_type = 'ASSET_MATERIALIZATION'", (run_id,)).fetchall()
        partitions = conn.execute("SELECT partition FROM dynamic_partitions").fetchall()
    assert status == ("SUCCESS",)
    assert [(k, p) for k, p, _ in events] == [('["price_aligned"]', "2025-10-01|live")]
    assert '"rows_read"' in events[0][2]  # the asset's metadata came back from PostgreSQL
    assert partitions == [("live",)]
