"""The deployment's instance configuration is real: the shipped dagster.yaml loads with
dagster-postgres against a local PostgreSQL database of its own, and monitors runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid

import psycopg
import pytest

from kline_assets_tests.conftest import ADMIN_DSN


def test_dagster_postgres_is_the_release_that_belongs_to_dagster():
    import dagster
    import dagster_postgres

    assert dagster.__version__ == "1.13.27"
    assert dagster_postgres.__version__ == "0.29.27"


@pytest.fixture
def dagster_db():
    name = f"kline_dagster_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_shipped_dagster_yaml_loads_on_postgres(tmp_path, repo_root, dagster_db):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(repo_root / "dagster.yaml", home / "dagster.yaml")
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN)
    env = {
        "DAGSTER_HOME": str(home), "PATH": "/usr/bin:/bin",
        "DAGSTER_PG_HOST": info.get("host", "127.0.0.1"),
        "DAGSTER_PG_PORT": str(info.get("port", 5432)),
        "DAGSTER_PG_USER": info.get("user", "postgres"),
        "DAGSTER_PG_PASSWORD": info.get("password", ""), "DAGSTER_PG_DB": dagster_db,
    }
    code = (
        "from dagster import DagsterInstance\n"
        "i = DagsterInstance.get()\n"
        "print(type(i.run_storage).__name__, i.run_monitoring_enabled)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["PostgresRunStorage", "True"]
    with psycopg.connect(ADMIN_DSN.rsplit("/", 1)[0] + f"/{dagster_db}") as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"runs", "event_logs"} <= tables
