"""Names of the feature columns and their windows, without torch: the Dagster definitions
(column schemas) need the names in every step process, the tensors only where they compute."""

from __future__ import annotations

from collections.abc import Mapping

WINDOWS_MINUTES_TO_BUCKETS: dict[int, int] = {120: 8, 900: 60, 1800: 120}
"""Feature windows: minutes (as used in column names) → number of 15-minute buckets."""

KINDS = ("ema", "sma", "wma", "boll_mid", "boll_up", "boll_low", "boll_width")

KIND_DESCRIPTIONS = {
    "ema": "exponential moving average of the forward-filled mean, α = 2/(w+1), seeded "
           "with the first value",
    "sma": "simple moving average of the last w buckets; NULL until w values exist",
    "wma": "weighted moving average, weights w … 1 (newest heaviest); NULL until w values",
    "boll_mid": "Bollinger middle band = SMA",
    "boll_up": "Bollinger upper band = SMA + 2 × population sd of the window",
    "boll_low": "Bollinger lower band = SMA − 2 × population sd of the window",
    "boll_width": "Bollinger band width = upper − lower",
}


def feature_columns(windows: Mapping[int, int] = WINDOWS_MINUTES_TO_BUCKETS) -> list[str]:
    """Column names in table order: each kind for every window, named by minutes."""
    return [f"{kind}_{minutes}" for kind in KINDS for minutes in windows]


def describe_feature(column: str) -> str:
    """A line for the UI: what `ema_900` etc. holds, with its window in minutes and buckets."""
    kind, minutes = column.rsplit("_", 1)
    buckets = WINDOWS_MINUTES_TO_BUCKETS[int(minutes)]
    return f"{KIND_DESCRIPTIONS[kind]}; window {minutes} min = {buckets} buckets (w)"


FEATURE_COLUMNS: list[str] = feature_columns(WINDOWS_MINUTES_TO_BUCKETS)
"""The 21 feature columns of ``features_wide``: ema_120 … boll_width_1800."""
