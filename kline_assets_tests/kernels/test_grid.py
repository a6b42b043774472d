"""build_price_tensor: scatter onto (iphone, shop, bucket) and the lookback carry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kline_assets.kernels.grid import build_price_tensor


def reference_grid(
    rows: list[tuple[int, int, int, float]], shape: tuple[int, int, int], lookback: int
) -> np.ndarray:
    """Plain loops: value at t = the latest price with bucket in (t − lookback, t]."""
    dense = np.full(shape, np.nan)
    for i, s, b, p in rows:
        dense[i, s, b] = p
    out = np.full(shape, np.nan)
    for i in range(shape[0]):
        for s in range(shape[1]):
            for t in range(shape[2]):
                for b in range(t, max(-1, t - lookback), -1):
                    if not np.isnan(dense[i, s, b]):
                        out[i, s, t] = dense[i, s, b]
                        break
    return out


def build(
    rows: list[tuple[int, int, int, float]], shape: tuple[int, int, int], lookback: int = 1
) -> torch.Tensor:
    arr = np.array(rows, dtype=np.float64).reshape(-1, 4)
    return build_price_tensor(
        bucket_index=arr[:, 2].astype(np.int64),
        iphone_index=arr[:, 0].astype(np.int64),
        shop_index=arr[:, 1].astype(np.int64),
        price=arr[:, 3],
        n_iphones=shape[0],
        n_shops=shape[1],
        n_buckets=shape[2],
        lookback_buckets=lookback,
    )


def assert_same(actual: torch.Tensor, expected: np.ndarray) -> None:
    got = actual.numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)


def test_scatter_places_each_row_and_leaves_nan_elsewhere() -> None:
    rows = [(0, 0, 0, 100_000.0), (0, 1, 3, 101_000.0), (1, 0, 9, 99_500.0)]
    grid = build(rows, (2, 2, 10))
    assert grid.shape == (2, 2, 10) and grid.dtype == torch.float64
    assert grid[0, 0, 0] == 100_000.0 and grid[0, 1, 3] == 101_000.0 and grid[1, 0, 9] == 99_500.0
    assert int((~torch.isnan(grid)).sum()) == 3


def test_lookback_one_is_the_bucket_only() -> None:
    rows = [(0, 0, 3, 100.0), (0, 0, 10, 200.0)]
    grid = build(rows, (1, 1, 15), lookback=1)
    assert_same(grid, reference_grid(rows, (1, 1, 15), 1))
    assert torch.isnan(grid[0, 0, 4])


def test_lookback_two_carries_one_bucket_and_newer_prices_win() -> None:
    rows = [(0, 0, 3, 100.0), (0, 0, 4, 110.0), (0, 0, 8, 120.0), (0, 1, 0, 5.0)]
    grid = build(rows, (1, 2, 12), lookback=2)
    expected = reference_grid(rows, (1, 2, 12), 2)
    assert_same(grid, expected)
    row = grid[0, 0].numpy()
    assert row[3] == 100.0 and row[4] == 110.0 and row[5] == 110.0  # newest in (t-2, t]
    assert np.isnan(row[6]) and row[8] == 120.0 and row[9] == 120.0 and np.isnan(row[10])
    assert grid[0, 1, 1] == 5.0 and torch.isnan(grid[0, 1, 2])


def test_gaps_and_a_shop_appearing_mid_month_random_against_loops() -> None:
    rng = np.random.default_rng(0)
    shape = (3, 4, 60)
    rows = []
    for i in range(shape[0]):
        for s in range(shape[1]):
            start = 0 if s < 3 else 35  # shop 3 appears mid-month
            for b in range(start, shape[2]):
                if rng.random() < 0.3:
                    rows.append((i, s, b, float(rng.integers(50_000, 200_000))))
    for lookback in (1, 2, 4, 16):
        assert_same(build(rows, shape, lookback), reference_grid(rows, shape, lookback))


def test_empty_input_is_all_nan() -> None:
    grid = build([], (2, 3, 5), lookback=3)
    assert grid.shape == (2, 3, 5) and torch.isnan(grid).all()
    assert build([], (0, 0, 0)).shape == (0, 0, 0)


def test_rejects_out_of_range_indices_and_bad_lookback() -> None:
    with pytest.raises(ValueError, match="bucket_index"):
        build([(0, 0, 5, 1.0)], (1, 1, 5))
    with pytest.raises(ValueError, match="shop_index"):
        build([(0, -1, 0, 1.0)], (1, 1, 5))
    with pytest.raises(ValueError, match="lookback"):
        build([(0, 0, 0, 1.0)], (1, 1, 5), lookback=0)
    with pytest.raises(ValueError, match="length"):
        build_price_tensor(
            np.zeros(2, np.int64),
            np.zeros(1, np.int64),
            np.zeros(1, np.int64),
            np.zeros(1),
            1,
            1,
            1,
        )
