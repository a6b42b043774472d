"""compute_features / forward_fill against independent float64 references.

References: pandas ``rolling(w).mean()`` and ``ewm(span=w, adjust=False).mean()``; the
weighted mean as a sliding-window dot product; the Bollinger sd as numpy's two-pass
``std(ddof=0)`` of each window. Not pandas' ``rolling(w).std(ddof=0)``: pandas 3 dropped
its constant-window shortcut and its running update drifts by up to ~1e-3 yen on long
1e5-yen series (see ``test_pandas_rolling_std_drifts_on_constant_windows``), which would
make pandas, not the kernel, fail a 1e-6 comparison.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from kline_assets.kernels import features as F
from kline_assets.kernels.features import (
    FEATURE_COLUMNS,
    WINDOWS_MINUTES_TO_BUCKETS,
    compute_features,
    feature_columns,
    forward_fill,
)

ATOL = 1e-6


def assert_close(actual: torch.Tensor | np.ndarray, expected: np.ndarray, name: str = "") -> None:
    actual = actual.cpu().numpy() if isinstance(actual, torch.Tensor) else np.asarray(actual)
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=f"NaN: {name}")
    np.testing.assert_allclose(actual, expected, atol=ATOL, rtol=0, err_msg=name)


def reference_features(x: np.ndarray, windows: dict[int, int]) -> dict[str, np.ndarray]:
    """Row-wise (N, T) reference, one pandas column per series."""
    df = pd.DataFrame(x.T)
    n, t = x.shape
    ref: dict[str, np.ndarray] = {}
    for minutes, w in windows.items():
        sma = df.rolling(w).mean().to_numpy().T
        ema = df.ewm(span=w, adjust=False).mean().to_numpy().T
        sd = np.full((n, t), np.nan)
        wma = np.full((n, t), np.nan)
        if t >= w:
            win = sliding_window_view(x, w, axis=1)  # (N, T-w+1, w); NaN windows stay NaN
            sd[:, w - 1 :] = win.std(axis=2)
            weights = np.arange(1, w + 1, dtype=np.float64)
            wma[:, w - 1 :] = win @ weights / weights.sum()
        up, low = sma + 2 * sd, sma - 2 * sd
        ref.update(
            {
                f"ema_{minutes}": ema,
                f"sma_{minutes}": sma,
                f"wma_{minutes}": wma,
                f"boll_mid_{minutes}": sma,
                f"boll_up_{minutes}": up,
                f"boll_low_{minutes}": low,
                f"boll_width_{minutes}": up - low,
            }
        )
    return ref


def check_all(x: np.ndarray, windows: dict[int, int] = WINDOWS_MINUTES_TO_BUCKETS) -> dict:
    out = compute_features(torch.from_numpy(x), windows)
    ref = reference_features(x, windows)
    assert list(out) == feature_columns(windows)
    for name in out:
        assert out[name].dtype == torch.float64
        assert out[name].shape == x.shape
        assert_close(out[name], ref[name], name)
    return out


def random_walk(rng: np.random.Generator, n: int, t: int, level: float = 100_000.0) -> np.ndarray:
    """Integer-yen random walks with NaN prefixes and forward-filled gaps, like the pipeline."""
    x = level + np.cumsum(rng.normal(0.0, 150.0, (n, t)), axis=1)
    x = np.round(x)
    for row in range(n):
        x[row, : rng.integers(0, min(t, 400))] = np.nan
        gaps = rng.random(t) < 0.4
        gaps[: np.argmax(~np.isnan(x[row]))] = False
        x[row, gaps] = np.nan
    return pd.DataFrame(x.T).ffill().to_numpy().T.copy()


def test_feature_columns_are_the_21_table_columns() -> None:
    assert len(FEATURE_COLUMNS) == 21
    assert FEATURE_COLUMNS[:3] == ["ema_120", "ema_900", "ema_1800"]
    assert FEATURE_COLUMNS[-1] == "boll_width_1800"
    kinds = ["ema", "sma", "wma", "boll_mid", "boll_up", "boll_low", "boll_width"]
    assert [f"{k}_{m}" for k in kinds for m in (120, 900, 1800)] == FEATURE_COLUMNS
    assert WINDOWS_MINUTES_TO_BUCKETS == {120: 8, 900: 60, 1800: 120}


def test_forward_fill_matches_pandas() -> None:
    x = np.array(
        [
            [np.nan, np.nan, 1.0, np.nan, np.nan, 2.0, np.nan],
            [5.0, np.nan, np.nan, np.nan, np.nan, np.nan, 6.0],
            [np.nan] * 7,
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
        ]
    )
    got = forward_fill(torch.from_numpy(x))
    assert_close(got, pd.DataFrame(x.T).ffill().to_numpy().T)
    # any leading shape, last dim is time
    x3 = np.stack([x, x[::-1]])
    assert_close(forward_fill(torch.from_numpy(x3)), np.stack([got.numpy(), got.numpy()[::-1]]))
    assert forward_fill(torch.empty(3, 0, dtype=torch.float64)).shape == (3, 0)


def test_long_random_walk_all_columns_within_1e6_yen() -> None:
    """35,040 buckets (a year) at ~100,000 yen with ffilled gaps: every column ≤ 1e-6 yen."""
    rng = np.random.default_rng(7)
    x = random_walk(rng, 3, 35_040)
    x[1] += 100_000.0  # a ~200,000-yen series too
    check_all(x)


def test_constant_stretches_give_exact_zero_sd_and_exact_mean() -> None:
    rng = np.random.default_rng(3)
    x = random_walk(rng, 2, 3_000)
    x[0, 1000:1400] = 123_456.789  # long constant stretch (not an integer)
    x[1, :] = 99_999.0
    out = check_all(x)
    for minutes, w in WINDOWS_MINUTES_TO_BUCKETS.items():
        inside = slice(1000 + w - 1, 1400)
        width = out[f"boll_width_{minutes}"].numpy()
        assert (width[0, inside] == 0.0).all(), minutes
        assert (out[f"sma_{minutes}"].numpy()[0, inside] == 123_456.789).all(), minutes
        assert (width[1, w - 1 :] == 0.0).all(), minutes
        assert (out[f"sma_{minutes}"].numpy()[1, w - 1 :] == 99_999.0).all(), minutes


def test_constant_windows_of_a_long_series_have_exactly_zero_sd() -> None:
    """On a 35,040-bucket ffilled walk, every constant 8-bucket window has sd exactly 0.

    (pandas 3.1's rolling(8).std(ddof=0) gives up to ~8e-4 yen on these same windows —
    the reason the sd reference in this module is numpy's per-window std.)
    """
    rng = np.random.default_rng(1)
    x = random_walk(rng, 1, 35_040)[0]
    out = compute_features(torch.from_numpy(x[None, :]))
    sd_kernel = (out["boll_up_120"] - out["boll_mid_120"]).numpy()[0] / 2
    win = sliding_window_view(x, 8)
    constant = np.zeros(len(x), dtype=bool)
    constant[7:] = (win.max(axis=1) == win.min(axis=1)) & ~np.isnan(win).any(axis=1)
    assert constant.sum() > 20
    assert (sd_kernel[constant] == 0.0).all()
    assert (out["sma_120"].numpy()[0][constant] == x[constant]).all()


def test_series_shorter_than_window_and_all_nan() -> None:
    x = np.array(
        [
            [np.nan, 100.0, 101.0, 103.0, 103.0],  # 4 values < every window
            [np.nan] * 5,
        ]
    )
    out = check_all(x)
    for name in FEATURE_COLUMNS:
        if not name.startswith("ema"):
            assert torch.isnan(out[name]).all(), name
    assert torch.isnan(out["ema_120"][1]).all()
    assert out["ema_120"][0, 1] == 100.0  # seeded with the first value


def test_single_value_and_empty_shapes() -> None:
    check_all(np.array([[5.0]]))
    out = compute_features(torch.empty(0, 10, dtype=torch.float64))
    assert all(v.shape == (0, 10) for v in out.values())
    out = compute_features(torch.empty(2, 0, dtype=torch.float64))
    assert all(v.shape == (2, 0) for v in out.values())


def test_varied_prefixes_odd_windows_and_window_of_one() -> None:
    rng = np.random.default_rng(11)
    x = random_walk(rng, 6, 700)
    x[2, :650] = np.nan  # observation starts late
    check_all(x, {15: 1, 45: 3, 75: 5, 105: 7, 1500: 100, 3000: 200})
    check_all(x, {60: 4, 61: 4, 900: 60})  # two names for one window length


def test_many_row_chunks_and_ragged_ema_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Force tiny row chunks (ragged last chunk) and EMA blocks that do/don't divide T."""
    monkeypatch.setattr(F, "_CPU_CHUNK_ELEMENTS", 3 * 3_664)
    rng = np.random.default_rng(5)
    # 3,664 = 2 EMA blocks for w=8 (block 1,832): exact multiple; 5,000: ragged
    check_all(random_walk(rng, 7, 3_664))
    check_all(random_walk(rng, 5, 5_000))


def test_ema_is_stable_on_alternating_extremes() -> None:
    x = np.where(np.arange(6_000) % 2 == 0, 50_000.0, 200_000.0)[None, :]
    check_all(x, {30: 2, 120: 8, 1800: 120})


def test_boll_mid_is_sma_and_float32_is_promoted() -> None:
    rng = np.random.default_rng(2)
    x = random_walk(rng, 2, 500)
    out = compute_features(torch.from_numpy(x).to(torch.float32))
    ref = reference_features(x.astype(np.float32).astype(np.float64), WINDOWS_MINUTES_TO_BUCKETS)
    for name in FEATURE_COLUMNS:
        assert out[name].dtype == torch.float64
        assert_close(out[name], ref[name], name)
    assert torch.equal(out["boll_mid_900"].nan_to_num(), out["sma_900"].nan_to_num())


def test_pandas_rolling_std_agrees_on_a_short_noisy_series() -> None:
    """Where pandas' running variance has not drifted, it agrees with the kernel too."""
    rng = np.random.default_rng(9)
    x = 100_000 + rng.normal(0, 500, (1, 400))
    out = compute_features(torch.from_numpy(x))
    for minutes, w in WINDOWS_MINUTES_TO_BUCKETS.items():
        sd = pd.Series(x[0]).rolling(w).std(ddof=0).to_numpy()
        mid = pd.Series(x[0]).rolling(w).mean().to_numpy()
        assert_close(out[f"boll_up_{minutes}"][0], mid + 2 * sd, minutes)


def test_rejects_gaps_that_were_not_forward_filled() -> None:
    x = torch.tensor([[np.nan, 1.0, np.nan, 2.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="forward-filled"):
        compute_features(x)
    compute_features(forward_fill(x))


def test_rejects_bad_shapes_and_windows() -> None:
    with pytest.raises(ValueError, match=r"\(N, T\)"):
        compute_features(torch.zeros(5, dtype=torch.float64))
    with pytest.raises(ValueError, match="positive integer"):
        compute_features(torch.zeros(1, 5, dtype=torch.float64), {10: 0})


def test_cpu_worker_threads_restore_torch_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Row chunks run on worker threads; torch's thread count is restored, errors propagate."""
    monkeypatch.setattr(F, "_CPU_CHUNK_ELEMENTS", 1_000)
    before = torch.get_num_threads()
    rng = np.random.default_rng(6)
    x = random_walk(rng, 9, 1_000)
    for threads in (1, 3):
        torch.set_num_threads(threads)
        try:
            check_all(x)
            assert torch.get_num_threads() == threads
            bad = torch.from_numpy(x.copy())
            bad[7, 900] = float("nan")
            with pytest.raises(ValueError, match="forward-filled"):
                compute_features(bad)
            assert torch.get_num_threads() == threads
        finally:
            torch.set_num_threads(before)
