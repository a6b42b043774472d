"""Scatter aligned price rows onto a dense (iphone, shop, bucket) grid."""

from __future__ import annotations

import numpy as np
import torch


def build_price_tensor(
    bucket_index: np.ndarray,
    iphone_index: np.ndarray,
    shop_index: np.ndarray,
    price: np.ndarray,
    n_iphones: int,
    n_shops: int,
    n_buckets: int,
    lookback_buckets: int = 1,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """(I, S, T) float64 prices, NaN where a shop has no price for that iPhone and bucket.

    Inputs are one row per (iphone, shop, bucket) — ``price_aligned`` rows, already
    deduplicated (for a repeated cell, which row wins is unspecified) — with every index in
    range. A dense grid lets the cross-shop statistics
    run as tensor reductions over the shop axis instead of group-bys.

    Lookback carry: the value at bucket t is the shop's latest price whose bucket lies in
    (t − lookback, t]; ``lookback_buckets=1`` means bucket t only. The carry is a bounded
    forward fill (running max of "bucket of the latest price", then a gather), so a shop
    that went quiet stops counting after ``lookback_buckets`` buckets instead of
    influencing the cross-shop mean forever.
    """
    if lookback_buckets < 1:
        raise ValueError(f"lookback_buckets must be ≥ 1, got {lookback_buckets}")
    for name, size in (("n_iphones", n_iphones), ("n_shops", n_shops), ("n_buckets", n_buckets)):
        if size < 0:
            raise ValueError(f"{name} must be ≥ 0, got {size}")
    b = np.asarray(bucket_index, dtype=np.int64).ravel()
    i = np.asarray(iphone_index, dtype=np.int64).ravel()
    s = np.asarray(shop_index, dtype=np.int64).ravel()
    p = np.asarray(price, dtype=np.float64).ravel()
    if not (len(b) == len(i) == len(s) == len(p)):
        raise ValueError(
            f"index/price arrays differ in length: {len(b)}, {len(i)}, {len(s)}, {len(p)}"
        )
    for name, idx, size in (
        ("bucket_index", b, n_buckets),
        ("iphone_index", i, n_iphones),
        ("shop_index", s, n_shops),
    ):
        if len(idx) and (idx.min() < 0 or idx.max() >= size):
            raise ValueError(f"{name} out of range [0, {size}): {idx.min()}..{idx.max()}")

    device = torch.device(device)
    grid = torch.full(
        (n_iphones, n_shops, n_buckets), float("nan"), dtype=torch.float64, device=device
    )
    if len(p):
        flat = torch.from_numpy((i * n_shops + s) * n_buckets + b).to(device)
        grid.view(-1)[flat] = torch.from_numpy(p).to(device)
    if lookback_buckets == 1 or n_buckets == 0 or grid.numel() == 0:
        return grid

    # Bounded forward fill along buckets.
    missing = torch.isnan(grid)
    col = torch.arange(n_buckets, device=device).expand(grid.shape)
    latest = torch.cummax(col.masked_fill(missing, -1), dim=-1).values
    carried = torch.gather(grid, -1, latest.clamp(min=0))
    stale = (latest < 0) | (col - latest >= lookback_buckets)
    return carried.masked_fill_(stale, float("nan"))
