"""aggregate_cross_shop against a loop-and-numpy reference, plus hand-built cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kline_assets.kernels.aggregate import QUORUM_POLICIES, aggregate_cross_shop


def reference(
    prices: np.ndarray,
    outlier_filter: bool = True,
    band: float = 0.2,
    min_quorum: int = 16,
    policy: str = "use_anyway",
) -> dict[str, np.ndarray]:
    n_i, _, n_t = prices.shape
    out = {k: np.full((n_i, n_t), np.nan) for k in ("mean", "median", "std", "dispersion")}
    out["shop_count"] = np.zeros((n_i, n_t), dtype=np.int64)
    for i in range(n_i):
        for t in range(n_t):
            v = prices[i, :, t]
            v = v[~np.isnan(v)]
            if outlier_filter and len(v) >= 3:
                med = np.median(v)
                v = v[np.abs(v - med) <= band * med]
            out["shop_count"][i, t] = len(v)
            if len(v) == 0 or (policy == "require" and len(v) < min_quorum):
                continue
            out["mean"][i, t] = np.mean(v)
            out["median"][i, t] = np.median(v)
            if len(v) >= 2:
                out["std"][i, t] = np.std(v, ddof=1)
                out["dispersion"][i, t] = out["std"][i, t] / out["mean"][i, t]
    out["quorum_met"] = out["shop_count"] >= min_quorum
    return out


def check(prices: np.ndarray, **kwargs) -> dict[str, np.ndarray]:
    policy = kwargs.pop("quorum_policy", "use_anyway")
    got = aggregate_cross_shop(torch.from_numpy(prices), quorum_policy=policy, **kwargs)
    ref = reference(prices, policy=policy, **kwargs)
    for name in ("mean", "median", "std", "dispersion"):
        a = getattr(got, name).numpy()
        assert a.dtype == np.float64
        np.testing.assert_array_equal(np.isnan(a), np.isnan(ref[name]), err_msg=name)
        np.testing.assert_allclose(a, ref[name], atol=1e-6, rtol=0, err_msg=name)
    assert got.shop_count.dtype == torch.int64 and got.quorum_met.dtype == torch.bool
    np.testing.assert_array_equal(got.shop_count.numpy(), ref["shop_count"])
    np.testing.assert_array_equal(got.quorum_met.numpy(), ref["quorum_met"])
    return {name: getattr(got, name).numpy() for name in (*ref, "quorum_met")}


def one_bucket(*values: float) -> np.ndarray:
    """(1 iphone, len(values) shops, 1 bucket)."""
    return np.array(values, dtype=np.float64).reshape(1, -1, 1)


def test_single_shop() -> None:
    got = check(one_bucket(100_000.0))
    assert got["mean"][0, 0] == 100_000.0 and got["median"][0, 0] == 100_000.0
    assert np.isnan(got["std"][0, 0]) and np.isnan(got["dispersion"][0, 0])
    assert got["shop_count"][0, 0] == 1


def test_even_shop_count_median_averages_the_middle_two() -> None:
    got = check(one_bucket(100_000.0, 104_000.0, 101_000.0, 102_000.0))
    assert got["median"][0, 0] == 101_500.0  # torch.nanmedian would say 101,000
    assert got["shop_count"][0, 0] == 4
    assert math.isclose(got["std"][0, 0], np.std([100e3, 101e3, 102e3, 104e3], ddof=1))


def test_x10_typo_among_20_honest_shops_is_dropped_and_all_honest_kept() -> None:
    honest = list(np.linspace(95_000, 105_000, 20))
    got = check(one_bucket(*honest, 1_000_000.0))
    assert got["shop_count"][0, 0] == 20
    assert got["mean"][0, 0] == pytest.approx(np.mean(honest), abs=1e-6)
    # a band around the mean instead would have dropped every honest shop
    mean_all = np.mean([*honest, 1_000_000.0])
    assert all(abs(v - mean_all) > 0.2 * mean_all for v in honest)


def test_majority_of_typos_wins_with_three_shops() -> None:
    """Two ×10 typos out of 3: the median is the typo, so the honest price is the outlier."""
    got = check(one_bucket(100_000.0, 1_000_000.0, 1_000_000.0))
    assert got["shop_count"][0, 0] == 2
    assert got["mean"][0, 0] == 1_000_000.0 and got["median"][0, 0] == 1_000_000.0
    assert got["std"][0, 0] == 0.0


def test_fewer_than_three_shops_are_never_filtered() -> None:
    got = check(one_bucket(100_000.0, 1_000_000.0))
    assert got["shop_count"][0, 0] == 2 and got["mean"][0, 0] == 550_000.0


def test_filter_off_keeps_the_typo() -> None:
    got = check(one_bucket(100_000.0, 101_000.0, 1_000_000.0), outlier_filter=False)
    assert got["shop_count"][0, 0] == 3 and got["mean"][0, 0] == pytest.approx(400_333.3333333)


def test_all_nan_bucket_and_gaps_of_many_buckets() -> None:
    prices = np.full((1, 3, 40), np.nan)
    prices[0, :, 0] = [100_000.0, 100_500.0, 99_000.0]
    prices[0, :2, 39] = [101_000.0, 102_000.0]  # 38 empty buckets between
    got = check(prices)
    assert np.isnan(got["mean"][0, 1:39]).all() and (got["shop_count"][0, 1:39] == 0).all()
    assert got["shop_count"][0, 39] == 2


def test_shop_appearing_mid_month() -> None:
    rng = np.random.default_rng(4)
    prices = rng.integers(90_000, 110_000, (2, 5, 30)).astype(np.float64)
    prices[:, 4, :15] = np.nan
    got = check(prices)
    assert (got["shop_count"][:, :15] <= 4).all()


def test_random_grid_with_outliers_against_reference() -> None:
    rng = np.random.default_rng(12)
    prices = rng.normal(100_000, 8_000, (4, 9, 80)).round()
    prices[rng.random(prices.shape) < 0.35] = np.nan
    typo = rng.random(prices.shape) < 0.05
    prices[typo] *= 10
    prices[0, :, 5] = 120_000.0  # exactly on a band edge from a 100,000 median below
    prices[0, :4, 5] = 100_000.0
    prices[0, 4, 5] = 100_000.0
    check(prices)
    check(prices, band=0.05)
    check(prices, outlier_filter=False)


def test_quorum_require_vs_use_anyway() -> None:
    prices = np.full((1, 4, 2), np.nan)
    prices[0, :2, 0] = [100_000.0, 101_000.0]  # 2 shops: below quorum 3
    prices[0, :, 1] = [100_000.0, 101_000.0, 100_500.0, 99_500.0]
    anyway = check(prices, min_quorum=3)
    assert not anyway["quorum_met"][0, 0] and anyway["mean"][0, 0] == 100_500.0
    require = check(prices, min_quorum=3, quorum_policy="require")
    assert np.isnan(require["mean"][0, 0]) and np.isnan(require["std"][0, 0])
    assert require["shop_count"][0, 0] == 2  # still recorded
    assert require["quorum_met"][0, 1] and require["mean"][0, 1] == anyway["mean"][0, 1]
    default = check(prices)  # quorum 16 recorded, not enforced
    assert not default["quorum_met"].any() and not np.isnan(default["mean"]).any()


def test_unknown_quorum_policy_is_rejected_naming_the_allowed_ones() -> None:
    assert QUORUM_POLICIES == ("use_anyway", "require")
    with pytest.raises(ValueError, match=r"use_anyway.*require"):
        aggregate_cross_shop(torch.ones(1, 1, 1, dtype=torch.float64), quorum_policy="enforce")


def test_no_shops_at_all() -> None:
    stats = aggregate_cross_shop(torch.empty(2, 0, 3, dtype=torch.float64))
    assert stats.mean.shape == (2, 3) and torch.isnan(stats.mean).all()
    assert torch.isnan(stats.median).all() and (stats.shop_count == 0).all()


def test_rejects_wrong_rank() -> None:
    with pytest.raises(ValueError, match="iphone, shop, bucket"):
        aggregate_cross_shop(torch.ones(3, 3, dtype=torch.float64))
