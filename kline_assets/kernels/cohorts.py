"""Cohort statistics: weighted combination of member iPhones' cross-shop means."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kline_assets.kernels.aggregate import nan_describe


@dataclass(frozen=True)
class CohortStats:
    """Per (cohort, bucket) statistics; NaN stands for SQL NULL."""

    mean: torch.Tensor  # (C, T) float64, weighted over members with data
    median: torch.Tensor  # (C, T) float64, of member means (unweighted)
    std: torch.Tensor  # (C, T) float64, of member means, ddof=1, NaN below 2 members
    shop_count: torch.Tensor  # (C, T) int64, Σ shop_count of members with data
    member_count: torch.Tensor  # (C, T) int64, members with data


def aggregate_cohorts(
    member_mean: torch.Tensor, member_shop_count: torch.Tensor, weights: torch.Tensor
) -> CohortStats:
    """Combine member iPhones into cohorts, bucket by bucket.

    ``member_mean`` (I, T): each iPhone's raw per-bucket cross-shop mean, NaN where it has
    no data in that bucket — not forward-filled, so a member that stopped reporting does
    not keep voting with a stale price. ``member_shop_count`` (I, T). ``weights`` (C, I)
    float64, 0 where the iPhone is not a member (negative weights are rejected).

    In each bucket the members with data (finite mean, weight > 0) give:
    mean = Σ wᵢ·meanᵢ / Σ wᵢ — the weights are renormalised over the members present, so a
    missing member shifts the cohort mean only through its absence, not by counting as 0;
    median and std (ddof=1, NaN below 2 members) of the member means, unweighted (numpy
    median convention); shop_count = Σ members' shop counts; member_count. All stats are
    NaN (counts 0) where no member has data.

    The cohort's features are ``compute_features(forward_fill(stats.mean))`` — left to the
    caller, exactly as for single iPhones.
    """
    if member_mean.dim() != 2 or weights.dim() != 2 or member_shop_count.shape != member_mean.shape:
        raise ValueError(
            "expected member_mean (I, T), member_shop_count (I, T), weights (C, I); got "
            f"{tuple(member_mean.shape)}, {tuple(member_shop_count.shape)}, {tuple(weights.shape)}"
        )
    if weights.shape[1] != member_mean.shape[0]:
        raise ValueError(
            f"weights has {weights.shape[1]} iPhone columns, "
            f"member_mean has {member_mean.shape[0]} rows"
        )
    w = weights.to(torch.float64)
    if bool((~torch.isfinite(w)).any()) or bool((w < 0).any()):
        raise ValueError("cohort weights must be finite and ≥ 0 (0 = not a member)")
    m = member_mean.to(torch.float64)
    # (C, I, T): which member contributes to which cohort in which bucket.
    contributes = (w > 0).unsqueeze(2) & torch.isfinite(m).unsqueeze(0)
    values = torch.where(contributes, m.unsqueeze(0), float("nan"))
    member_count, _, median, std = nan_describe(values, dim=1)
    wc = torch.where(contributes, w.unsqueeze(2), 0.0)
    total_w = wc.sum(dim=1)
    mean = (wc * values.nan_to_num(0.0)).sum(dim=1) / total_w  # 0/0 → NaN: no member data
    counts = member_shop_count.to(torch.int64).unsqueeze(0)
    shop_count = torch.where(contributes, counts, 0).sum(dim=1)
    return CohortStats(
        mean=mean,
        median=median,
        std=std,
        shop_count=shop_count,
        member_count=member_count.to(torch.int64),
    )
