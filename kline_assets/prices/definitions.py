"""Everything of the price domain, merged into the project's Definitions."""

from dagster import AssetSelection, Definitions, define_asset_job

from kline_assets.prices.assets import price_aligned, raw_price_records
from kline_assets.prices.checks import price_aligned_checks
from kline_assets.prices.feature_assets import feature_assets

price_assets_job = define_asset_job(
    "price_assets",
    selection=AssetSelection.groups("prices") - AssetSelection.keys(raw_price_records.key),
    description="Every price asset for one run_id × month partition.",
)

defs = Definitions(
    assets=[raw_price_records, price_aligned, *feature_assets],
    asset_checks=price_aligned_checks,
    jobs=[price_assets_job],
)
