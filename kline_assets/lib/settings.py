"""Environment → typed settings, with the embedded defaults of ARCHITECTURE.md.

Every resource reads its default from here so that `make demo`, the tests and the
Dagster UI agree on where data lives without any configuration file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SQL_DIR = REPO_ROOT / "sql"
DATA_DIR = REPO_ROOT / ".kline"

DEFAULT_PG_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_CLICKHOUSE_DSN = f"chdb://{DATA_DIR / 'clickhouse'}"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DEVICE = "auto"
DEFAULT_CLICKHOUSE_DATABASE = "kline"

PRICE_TZ = "Asia/Tokyo"
STOCK_TZ = "Asia/Shanghai"


@dataclass(frozen=True)
class Settings:
    pg_dsn: str
    clickhouse_dsn: str
    clickhouse_database: str
    redis_url: str
    device: str
    dagster_home: Path
    stock_landing_dir: Path
    # A cluster of ClickHouse servers (`remote_servers`) the DDL addresses ON CLUSTER, with
    # replicated engines; empty for one server or the embedded engine (resources/clickhouse/
    # cluster.py).
    clickhouse_cluster: str = ""
    # TimescaleDB columnstore of the 1-minute tables (stocks/columnstore.py): chunks older than
    # this are compressed; the synthesised archive's retention (empty: kept for ever).
    compress_after: str = "7 days"
    synth_retention: str = ""


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    return Settings(
        pg_dsn=env.get("KLINE_PG_DSN", DEFAULT_PG_DSN),
        clickhouse_dsn=env.get("KLINE_CLICKHOUSE_DSN", DEFAULT_CLICKHOUSE_DSN),
        clickhouse_database=env.get("KLINE_CLICKHOUSE_DATABASE", DEFAULT_CLICKHOUSE_DATABASE),
        redis_url=env.get("KLINE_REDIS_URL", DEFAULT_REDIS_URL),
        device=env.get("KLINE_DEVICE", DEFAULT_DEVICE),
        dagster_home=Path(env.get("DAGSTER_HOME", str(DATA_DIR / "dagster"))),
        stock_landing_dir=Path(
            env.get("KLINE_STOCK_LANDING_DIR", str(DATA_DIR / "landing" / "stock_1min"))
        ),
        clickhouse_cluster=env.get("KLINE_CLICKHOUSE_CLUSTER", ""),
        compress_after=env.get("KLINE_TS_COMPRESS_AFTER", "7 days"),
        synth_retention=env.get("KLINE_SYNTH_RETENTION", ""),
    )
