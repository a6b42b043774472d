"""The rules every stock input passes at the door: values no bar may take are refused with
a reason and handed to the kernel so that it rejects and counts them, whatever the path."""

from __future__ import annotations

import numpy as np

from kline_assets.kernels.bars import Ticks
from kline_assets.stocks import rules


def ticks(price, volume, amount, high=None, low=None) -> Ticks:
    n = len(price)
    return Ticks.from_arrays(np.array(["600000.SH"] * n),
                             np.array(["2025-10-09T10:00:00"] * n, dtype="datetime64[us]"),
                             np.array(price, float), np.array(volume, float),
                             np.array(amount, float),
                             high=None if high is None else np.array(high, float),
                             low=None if low is None else np.array(low, float))


def test_implausible_values_are_refused_and_marked_for_the_kernel():
    t = ticks(price=[10.0, 2e6, 10.0, 10.0, 10.0, 10.0, 10.0],
              volume=[100.0, 100.0, 1e300, 100.0, 100.0, 100.0, 100.0],
              amount=[1e3, 1e3, 1e3, 1e300, 1e3, 1e3, 1e3],
              high=[np.nan, 11.0, 11.0, 11.0, -5.0, 11.0, 9.0],
              low=[np.nan, 9.0, 9.0, 9.0, np.inf, np.nan, 9.5])
    screened, refused = rules.screen_tick_values(t)
    assert refused == {
        1: "bad_price: price 2000000.0 is above 1e+06",
        2: "bad_volume: volume 1e+300 or amount 1000.0 is above 1e+15",
        3: "bad_volume: volume 100.0 or amount 1e+300 is above 1e+15",
        4: "bad_price: day high -5.0 is not a price in (0, 1e+06]",
        6: "bad_price: day low 9.5 is above day high 9.0",
    }
    assert np.isnan(screened.price[[1, 4, 6]]).all() and np.isnan(screened.volume[[2, 3]]).all()
    assert screened.price[[0, 2, 3, 5]].tolist() == [10.0] * 4  # the rest as they came
    assert t.price[1] == 2e6  # the input is left alone


def test_values_within_the_bounds_pass_untouched():
    t = ticks(price=[1e6, 0.01], volume=[1e15, 0.0], amount=[1e15, 0.0])
    screened, refused = rules.screen_tick_values(t)
    assert refused == {} and screened is t
