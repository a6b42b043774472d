"""Jobs of the price domain (their own module so sensors and definitions share them)."""

from dagster import AssetSelection, define_asset_job

price_assets_job = define_asset_job(
    "price_assets",
    selection=AssetSelection.groups("prices") - AssetSelection.keys("raw_price_records"),
    description="Every price asset for one run_id × month partition.",
)
