"""Cross-shop statistics per (iphone, bucket), with a median-band outlier filter."""

from __future__ import annotations

from dataclasses import dataclass

import torch

QUORUM_POLICIES = ("use_anyway", "require")
"""``use_anyway`` records whether the quorum was met; ``require`` also NULLs the stats."""


@dataclass(frozen=True)
class CrossShopStats:
    """Per (iphone, bucket) statistics over the shops kept; NaN stands for SQL NULL."""

    mean: torch.Tensor  # (I, T) float64
    median: torch.Tensor  # (I, T) float64
    std: torch.Tensor  # (I, T) float64, sample (ddof=1), NaN below 2 shops
    dispersion: torch.Tensor  # (I, T) float64, std / mean
    shop_count: torch.Tensor  # (I, T) int64, shops kept after the outlier filter
    quorum_met: torch.Tensor  # (I, T) bool, shop_count >= min_quorum


def nan_describe(values: torch.Tensor, dim: int) -> tuple[torch.Tensor, ...]:
    """(count, mean, median, std) over the non-NaN entries of ``values`` along ``dim``.

    Median follows numpy: an even count averages the two middle values (torch.nanmedian
    returns the lower one). Std is the sample std (ddof=1), NaN below 2 values; it is
    computed in two passes (deviations from the mean), which stays exact enough at
    1e5-yen prices where E[x²] − E[x]² would not. Empty slices give NaN and count 0.
    """
    present = ~torch.isnan(values)
    count = present.sum(dim=dim)
    if values.shape[dim] == 0:  # nothing to reduce over (e.g. no shops at all)
        nan = torch.full(count.shape, float("nan"), dtype=values.dtype, device=values.device)
        return count, nan, nan.clone(), nan.clone()
    zeroed = values.masked_fill(~present, 0.0)
    mean = zeroed.sum(dim=dim) / count  # 0/0 → NaN where nothing reports
    dev = (values - mean.unsqueeze(dim)).masked_fill_(~present, 0.0)
    ss = (dev * dev).sum(dim=dim)
    std = torch.sqrt(ss / (count - 1)).masked_fill_(count < 2, float("nan"))
    # +inf instead of NaN: the sort order is then defined on every device; only indices
    # below `count` are read, so the fillers are never used.
    ordered = torch.sort(values.masked_fill(~present, float("inf")), dim=dim).values
    lo_idx = ((count - 1).clamp(min=0) // 2).unsqueeze(dim)
    hi_idx = (count // 2).clamp(max=values.shape[dim] - 1).unsqueeze(dim)
    lo = ordered.gather(dim, lo_idx).squeeze(dim)
    hi = ordered.gather(dim, hi_idx).squeeze(dim)
    median = ((lo + hi) / 2).masked_fill_(count == 0, float("nan"))
    return count, mean, median, std


def aggregate_cross_shop(
    prices: torch.Tensor,
    *,
    outlier_filter: bool = True,
    band: float = 0.2,
    min_quorum: int = 16,
    quorum_policy: str = "use_anyway",
) -> CrossShopStats:
    """Statistics across shops of an (I, S, T) price grid (NaN = shop has no price).

    Outlier filter (``outlier_filter=True``): where at least 3 shops report, prices with
    |p − median| > band × |median| are dropped. The band is around the median, not the
    mean, because a single ×10 typo drags the mean so far that every honest shop would
    fall outside a mean band; the median moves by at most one rank. Consequence worth
    knowing: if most reporting shops agree on a wrong value, the majority wins (3 shops,
    two ×10 typos → the honest price is the one dropped). With fewer than 3 shops there is
    no majority to judge by, so all are kept.

    Then over the remaining shops: mean, median (numpy convention), sample std (ddof=1,
    NaN below 2 shops), shop_count, dispersion = std / mean, quorum_met = shop_count ≥
    min_quorum. ``quorum_policy``: ``use_anyway`` keeps the stats regardless; ``require``
    sets mean/median/std/dispersion to NaN where the quorum is not met (shop_count is
    still recorded, so a reader can tell "too few shops" from "no shops").
    """
    if quorum_policy not in QUORUM_POLICIES:
        raise ValueError(
            f"quorum_policy {quorum_policy!r} is not one of {', '.join(QUORUM_POLICIES)}"
        )
    if prices.dim() != 3:
        raise ValueError(f"prices must be (iphone, shop, bucket), got shape {tuple(prices.shape)}")
    if band < 0:
        raise ValueError(f"band must be ≥ 0, got {band}")
    p = prices.to(torch.float64)
    if outlier_filter:
        count, _, median, _ = nan_describe(p, dim=1)
        limit = (band * median.abs()).unsqueeze(1)
        outlier = ((p - median.unsqueeze(1)).abs() > limit) & (count >= 3).unsqueeze(1)
        p = p.masked_fill(outlier, float("nan"))
    count, mean, median, std = nan_describe(p, dim=1)
    dispersion = std / mean
    quorum_met = count >= min_quorum
    if quorum_policy == "require":
        below = ~quorum_met
        mean, median, std, dispersion = (
            v.masked_fill(below, float("nan")) for v in (mean, median, std, dispersion)
        )
    return CrossShopStats(
        mean=mean,
        median=median,
        std=std,
        dispersion=dispersion,
        shop_count=count.to(torch.int64),
        quorum_met=quorum_met,
    )
