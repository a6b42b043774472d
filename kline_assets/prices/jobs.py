"""Jobs of the price domain (their own module so sensors, schedules and definitions share
them)."""

from dagster import AssetCheckKey, AssetKey, AssetSelection, define_asset_job

LIVE_FRESHNESS = AssetCheckKey(AssetKey("features_wide"), "live_features_fresh")

price_assets_job = define_asset_job(
    "price_assets",
    # The checks of the selected assets come along, live_features_fresh included (naming it
    # here to leave it out would break Definitions that build this job without it).
    selection=AssetSelection.groups("prices") - AssetSelection.keys("raw_price_records"),
    description="Every price asset for one run_id × month partition.",
)

prices_watch_job = define_asset_job(
    "prices_watch",
    selection=AssetSelection.keys("raw_price_records")
    | AssetSelection.checks(LIVE_FRESHNESS),
    description="Observe raw_price_records (newest record, row count) and evaluate the "
    "live_features_fresh check.",
)
