"""The one Definitions object, merged from each domain's own definitions."""

from dagster import Definitions

from kline_assets.prices import definitions as prices
from kline_assets.resources.build import build_resources

defs = Definitions.merge(prices.defs, Definitions(resources=build_resources()))
