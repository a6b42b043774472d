"""The settings of one price run that every price asset reads: the subset (iPhones, shops),
the device and the cross-shop rules.

They live in one run-level resource, `price_run`, rather than in each asset's config: in the
launchpad a subset run is `resources: price_run: config: iphone_ids: [42, 43]` once, and
price_aligned, cross_shop_agg, features_wide and cohorts all see it — nobody has to repeat
the same filter per asset (and a forgotten copy cannot make one asset disagree with the
others). `kline pipeline` fills the same section. Settings that belong to one asset only
(cold start, lookback) stay in that asset's config.
"""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

RESOURCE_KEY = "price_run"


class PriceRun(ConfigurableResource):
    """Run-level settings of the price assets (defaults: every iPhone and shop, KLINE_DEVICE,
    the contract's outlier filter and quorum)."""

    iphone_ids: list[int] = Field(default=[], description="only these iPhone ids (subset run)")
    shop_ids: list[int] = Field(default=[], description="only these shop ids (subset run)")
    device: str = Field(default="", description="override KLINE_DEVICE: auto, cpu, cuda:N")
    outlier_filter: bool = Field(default=True, description="drop outliers where ≥ 3 shops report")
    outlier_band: float = Field(default=0.2, gt=0, description="|p − median| > band × median")
    min_quorum: int = Field(default=16, ge=1, description="shops needed for the quorum")
    quorum_policy: str = Field(default="use_anyway",
                               description="use_anyway | require (NULL stats below quorum)")

    def run_config(self) -> dict:
        """This run's section of a Dagster run config (what the launchpad would show)."""
        config = {name: getattr(self, name) for name in type(self).model_fields}
        return {"resources": {RESOURCE_KEY: {"config": config}}}


# Bound on every price asset (one object, so Dagster sees one resource): a run without a
# `price_run` section computes everything; a run config's section overrides it.
PRICE_RUN_DEFAULTS = {RESOURCE_KEY: PriceRun()}
