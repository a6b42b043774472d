"""The stock domain's Definitions. The top-level definitions merge it and provide `postgres`;
the stock_1min table is written through `postgres_io_manager`, registered here."""

from dagster import Definitions

from kline_assets.resources.build import _env_or_default
from kline_assets.resources.postgres import PostgresResource
from kline_assets.resources.postgres_io import PostgresIOManager
from kline_assets.settings import load_settings

from .assets import IO_MANAGER, stock_1min, stock_monthly_kline
from .checks import stock_1min_checks, stock_monthly_kline_checks
from .jobs import monthly_kline_full_refresh, stock_monthly_job
from .schedules import stock_current_month


def io_manager(postgres: PostgresResource | None = None) -> PostgresIOManager:
    """The IO manager stock_1min writes through, on `postgres` (default: KLINE_PG_DSN)."""
    if postgres is None:
        postgres = PostgresResource(dsn=_env_or_default("KLINE_PG_DSN", load_settings().pg_dsn))
    return PostgresIOManager(postgres=postgres)


defs = Definitions(
    assets=[stock_1min, stock_monthly_kline],
    asset_checks=[stock_1min_checks, stock_monthly_kline_checks],
    jobs=[stock_monthly_job, monthly_kline_full_refresh],
    schedules=[stock_current_month],
    resources={IO_MANAGER: io_manager()},
)
