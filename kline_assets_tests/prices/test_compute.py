"""compute.cross_shop: built and reduced a group of iPhones at a time, the rows are those of
one grid for every iPhone — bit for bit."""

import numpy as np
import pandas as pd
import torch

from kline_assets.prices.compute import cross_shop


def test_cross_shop_by_groups_of_iphones_equals_one_grid():
    rng = np.random.default_rng(3)
    n = 4_000
    buckets = pd.Timestamp("2025-10-01", tz="Asia/Tokyo") + pd.to_timedelta(
        rng.integers(0, 2 * 96 * 30, n) * 15, unit="min")
    aligned = pd.DataFrame({
        "bucket": buckets, "shop_id": rng.integers(1, 9, n).astype(np.uint32),
        "iphone_id": rng.choice([3, 5, 8, 13, 21, 34, 55], n).astype(np.uint32),
        "price_new": (100_000 * rng.lognormal(0, 0.3, n)).astype(np.uint32),
    }).drop_duplicates(["bucket", "shop_id", "iphone_id"])
    warm, start, end = (pd.Timestamp(d, tz="Asia/Tokyo").to_pydatetime()
                        for d in ("2025-10-01", "2025-11-01", "2025-12-01"))
    cpu = torch.device("cpu")
    whole = cross_shop(aligned, "live", warm, start, end, cpu, lookback_buckets=3)
    grouped = cross_shop(aligned, "live", warm, start, end, cpu, lookback_buckets=3,
                         chunk_cells=1)  # one iPhone per grid
    assert whole.info["iphone_groups"] == 1 and grouped.info["iphone_groups"] == 7
    assert len(whole.frame) > 1_000
    pd.testing.assert_frame_equal(whole.frame, grouped.frame)
    assert {k: v for k, v in whole.info.items() if k != "iphone_groups"} == {
        k: v for k, v in grouped.info.items() if k != "iphone_groups"}
