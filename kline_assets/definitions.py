"""The one Definitions object, merged from each domain's own definitions."""

from dagster import Definitions

import kline_assets.lib.dagster_notices  # noqa: F401  (before the domains import)
from kline_assets.lib.run_monitor import dead_run_workers_sensor
from kline_assets.prices import definitions as prices
from kline_assets.resources.build import build_resources
from kline_assets.stocks import definitions as stocks

defs = Definitions.merge(prices.defs, stocks.defs, Definitions(resources=build_resources(),
                                                      sensors=[dead_run_workers_sensor]))
