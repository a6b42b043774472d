"""aggregate_cohorts against a loop-and-numpy reference, plus hand-built cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kline_assets.kernels.cohorts import aggregate_cohorts

NAN = np.nan


def reference(mean: np.ndarray, shops: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    n_c, n_t = weights.shape[0], mean.shape[1]
    out = {k: np.full((n_c, n_t), np.nan) for k in ("mean", "median", "std")}
    out["shop_count"] = np.zeros((n_c, n_t), dtype=np.int64)
    out["member_count"] = np.zeros((n_c, n_t), dtype=np.int64)
    for c in range(n_c):
        for t in range(n_t):
            idx = [i for i in range(mean.shape[0]) if weights[c, i] > 0 and np.isfinite(mean[i, t])]
            out["member_count"][c, t] = len(idx)
            out["shop_count"][c, t] = int(sum(shops[i, t] for i in idx))
            if not idx:
                continue
            v, w = mean[idx, t], weights[c, idx]
            out["mean"][c, t] = np.sum(w * v) / np.sum(w)
            out["median"][c, t] = np.median(v)
            if len(v) >= 2:
                out["std"][c, t] = np.std(v, ddof=1)
    return out


def check(mean: np.ndarray, shops: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    got = aggregate_cohorts(
        torch.from_numpy(mean), torch.from_numpy(shops), torch.from_numpy(weights)
    )
    ref = reference(mean, shops, weights)
    for name in ("mean", "median", "std"):
        a = getattr(got, name).numpy()
        np.testing.assert_array_equal(np.isnan(a), np.isnan(ref[name]), err_msg=name)
        np.testing.assert_allclose(a, ref[name], atol=1e-6, rtol=0, err_msg=name)
    for name in ("shop_count", "member_count"):
        assert getattr(got, name).dtype == torch.int64
        np.testing.assert_array_equal(getattr(got, name).numpy(), ref[name], err_msg=name)
    return {name: getattr(got, name).numpy() for name in ref}


def test_weighted_mean_renormalises_over_members_present() -> None:
    # 3 iPhones, 4 buckets; iPhone 1 missing in bucket 1, nobody in bucket 3.
    mean = np.array(
        [
            [100_000.0, 100_000.0, 100_000.0, NAN],
            [130_000.0, NAN, 130_000.0, NAN],
            [90_000.0, 90_000.0, NAN, NAN],
        ]
    )
    shops = np.array([[10, 10, 10, 0], [5, 0, 5, 0], [7, 7, 0, 0]], dtype=np.int64)
    weights = np.array([[1.0, 2.0, 0.0], [1.0, 1.0, 1.0]])  # cohort 0 excludes iPhone 2
    got = check(mean, shops, weights)
    assert got["mean"][0, 0] == pytest.approx((100_000 + 2 * 130_000) / 3)
    assert got["mean"][0, 1] == 100_000.0  # only iPhone 0 present: weight renormalised to 1
    assert got["shop_count"][0, 0] == 15 and got["shop_count"][0, 1] == 10
    assert got["member_count"][0, 1] == 1 and np.isnan(got["std"][0, 1])
    assert got["median"][1, 2] == 115_000.0  # even member count: average of the middle two
    assert np.isnan(got["mean"][:, 3]).all() and (got["member_count"][:, 3] == 0).all()
    assert (got["shop_count"][:, 3] == 0).all()


def test_weight_zero_member_with_data_is_ignored() -> None:
    mean = np.array([[100.0], [1_000_000.0]])
    shops = np.array([[3], [99]], dtype=np.int64)
    got = check(mean, shops, np.array([[1.0, 0.0]]))
    assert got["mean"][0, 0] == 100.0 and got["shop_count"][0, 0] == 3


def test_random_cohorts_against_reference() -> None:
    rng = np.random.default_rng(8)
    mean = rng.normal(100_000, 20_000, (12, 50))
    mean[rng.random(mean.shape) < 0.3] = np.nan
    shops = np.where(np.isnan(mean), 0, rng.integers(1, 30, mean.shape)).astype(np.int64)
    weights = np.where(rng.random((5, 12)) < 0.5, rng.uniform(0.2, 3.0, (5, 12)), 0.0)
    weights[4] = 0.0  # an empty cohort
    check(mean, shops, weights)


def test_rejects_negative_weights_and_shape_mismatch() -> None:
    mean = torch.ones(2, 3, dtype=torch.float64)
    shops = torch.ones(2, 3, dtype=torch.int64)
    with pytest.raises(ValueError, match="weights"):
        aggregate_cohorts(mean, shops, torch.tensor([[1.0, -1.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="weights"):
        aggregate_cohorts(mean, shops, torch.ones(1, 3, dtype=torch.float64))
