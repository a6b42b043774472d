"""The one Definitions object, merged from each domain's own definitions."""

from dagster import Definitions

from kline_assets.prices.definitions import defs as price_defs
from kline_assets.resources.build import build_resources

defs = Definitions.merge(price_defs, Definitions(resources=build_resources()))
