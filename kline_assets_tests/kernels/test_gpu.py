"""CPU and CUDA give the same numbers (≤ 1e-9 relative, NaN in the same places)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from kline_assets.kernels import (
    FEATURE_COLUMNS,
    aggregate_cohorts,
    aggregate_cross_shop,
    build_price_tensor,
    compute_features,
    forward_fill,
)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

CUDA = torch.device("cuda")


def assert_same(cpu: torch.Tensor, gpu: torch.Tensor, name: str = "") -> None:
    assert gpu.device.type == "cuda", name
    assert cpu.dtype == gpu.dtype, name
    a, b = cpu.numpy(), gpu.cpu().numpy()
    if a.dtype.kind == "f":
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=name)
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=0, err_msg=name)
    else:
        np.testing.assert_array_equal(b, a, err_msg=name)


def walks(n: int, t: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.round(100_000 + np.cumsum(rng.normal(0, 150, (n, t)), axis=1))
    for row in range(n):
        x[row, : rng.integers(0, 500)] = np.nan
        gaps = rng.random(t) < 0.4
        x[row, gaps & (np.arange(t) > 600)] = np.nan
    return x


def test_grid_and_cross_shop_agree() -> None:
    rng = np.random.default_rng(1)
    n_i, n_s, n_t = 6, 20, 400
    full = np.array(np.meshgrid(range(n_i), range(n_s), range(n_t), indexing="ij"))
    keep = rng.random(full.shape[1:]) < 0.5
    i, s, b = (full[k][keep] for k in range(3))
    price = rng.normal(100_000, 5_000, len(i)).round()
    price[rng.random(len(i)) < 0.03] *= 10
    for lookback in (1, 3):
        args = (b, i, s, price, n_i, n_s, n_t, lookback)
        cpu, gpu = build_price_tensor(*args), build_price_tensor(*args, device="cuda")
        assert_same(cpu, gpu, f"grid lookback {lookback}")
        for policy in ("use_anyway", "require"):
            sc = aggregate_cross_shop(cpu, min_quorum=8, quorum_policy=policy)
            sg = aggregate_cross_shop(gpu, min_quorum=8, quorum_policy=policy)
            for name in ("mean", "median", "std", "dispersion", "shop_count", "quorum_met"):
                assert_same(getattr(sc, name), getattr(sg, name), f"{policy} {name}")


def test_forward_fill_and_features_agree_on_a_year_of_buckets() -> None:
    x = torch.from_numpy(walks(16, 35_040))
    filled_cpu, filled_gpu = forward_fill(x), forward_fill(x.to(CUDA))
    assert_same(filled_cpu, filled_gpu, "forward_fill")
    np.testing.assert_array_equal(
        filled_cpu.numpy(), pd.DataFrame(x.numpy().T).ffill().to_numpy().T
    )
    cpu = compute_features(filled_cpu)
    gpu = compute_features(filled_gpu)
    for name in FEATURE_COLUMNS:
        assert_same(cpu[name], gpu[name], name)


def test_cohorts_agree() -> None:
    rng = np.random.default_rng(3)
    mean = rng.normal(100_000, 20_000, (30, 300))
    mean[rng.random(mean.shape) < 0.3] = np.nan
    shops = np.where(np.isnan(mean), 0, rng.integers(1, 30, mean.shape))
    weights = np.where(rng.random((7, 30)) < 0.4, rng.uniform(0.5, 2.0, (7, 30)), 0.0)
    args = [torch.from_numpy(a) for a in (mean, shops, weights)]
    cpu = aggregate_cohorts(*args)
    gpu = aggregate_cohorts(*(a.to(CUDA) for a in args))
    for name in ("mean", "median", "std", "shop_count", "member_count"):
        assert_same(getattr(cpu, name), getattr(gpu, name), name)
