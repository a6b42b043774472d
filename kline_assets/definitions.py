"""The one Definitions object, merged from each domain's own definitions."""

from dagster import Definitions

import kline_assets.warnings  # noqa: F401  (before the domains import)
from kline_assets.prices import definitions as prices
from kline_assets.resources.build import build_resources

defs = Definitions.merge(prices.defs, Definitions(resources=build_resources()))
