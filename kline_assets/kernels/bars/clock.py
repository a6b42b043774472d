"""The A-share session clock of the bar kernel: profiles and periods, the bar a moment of the
day belongs to under each profile, and the minute arithmetic of N-minute blocks."""

from __future__ import annotations

import numpy as np

PROFILES = ("end", "tushare")
PERIODS = (1, 5, 15, 30, 60)
VOLUME_UNITS = {"shares": 1.0, "lots": 100.0}
# Rejection reasons in priority order: a print failing several is counted under the first.
REASONS = ("non_trading_day", "pre_open", "lunch", "after_close", "bad_price", "bad_volume")



def good_price(price: np.ndarray) -> np.ndarray:
    """Prints with a usable price: finite and > 0 (NaN fails both comparisons). The one
    definition: the kernel rejects the others as `bad_price`, the stream consumer parks them."""
    return (price > 0) & (price < np.inf)


def good_volume(volume: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """Prints with usable volume and amount: both finite and ≥ 0 (else `bad_volume`)."""
    return (volume >= 0) & (volume < np.inf) & (amount >= 0) & (amount < np.inf)


_MIN_US = 60_000_000
_DAY_US = 86_400 * 1_000_000
_AUCTION_OPEN = (9 * 60 + 25) * _MIN_US
_OPEN = (9 * 60 + 30) * _MIN_US
_FIRST_BAR_END = (9 * 60 + 31) * _MIN_US
_NOON = (11 * 60 + 30) * _MIN_US
_REOPEN = 13 * 60 * _MIN_US
_REOPEN_BAR_END = (13 * 60 + 1) * _MIN_US
_CLOSE = 15 * 60 * _MIN_US

_MORNING_START_MIN = 9 * 60 + 30
_MORNING_END_MIN = 11 * 60 + 30
_AFTERNOON_START_MIN = 13 * 60

# Minute-of-day labels of a full day's 1-minute bars per profile.
_END_LABELS = np.concatenate([
    np.arange(_MORNING_START_MIN + 1, _MORNING_END_MIN + 1),
    np.arange(_AFTERNOON_START_MIN + 1, 15 * 60 + 1),
])
PROFILE_LABELS = {
    "end": _END_LABELS,
    "tushare": np.concatenate([[_MORNING_START_MIN], _END_LABELS]),
}


def _check_options(profile: str, volume_unit: str) -> None:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, not {profile!r}")
    if volume_unit not in VOLUME_UNITS:
        raise ValueError(f"volume unit must be one of {tuple(VOLUME_UNITS)}, not {volume_unit!r}")


def minute_labels(sod_us: np.ndarray, profile: str = "end") -> np.ndarray:
    """End-label minute of day of in-session prints, from microseconds of the day."""
    lab = -(-sod_us // _MIN_US)
    lab = np.where(sod_us <= _FIRST_BAR_END, _FIRST_BAR_END // _MIN_US, lab)
    lab = np.where((sod_us >= _REOPEN) & (sod_us <= _REOPEN_BAR_END),
                   _REOPEN_BAR_END // _MIN_US, lab)
    if profile == "tushare":
        lab = np.where(sod_us < _OPEN, _OPEN // _MIN_US, lab)
    return lab


def _time_tables() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Rejection code and end label per time slot `2 * minute_of_day + (not on the minute)`:
    every session boundary is a whole minute, so a print strictly inside a minute behaves like
    any other print inside it and the slot decides both."""
    mod = np.arange(1440, dtype=np.int64)
    sod = np.empty(2880, dtype=np.int64)
    sod[0::2] = mod * _MIN_US
    sod[1::2] = mod * _MIN_US + 1
    code = np.zeros(2880, dtype=np.int8)
    code[sod > _CLOSE] = 4
    code[(sod > _NOON) & (sod < _REOPEN)] = 3
    code[sod < _AUCTION_OPEN] = 2
    return code, {p: minute_labels(sod, p) for p in PROFILES}


_SLOT_REASON, _SLOT_LABEL = _time_tables()


def _day_minute(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = frame.astype("datetime64[s]").view(np.int64)
    return s // 86_400, (s % 86_400) // 60


def block_end_minutes(minute: np.ndarray, period: int) -> np.ndarray:
    """End label (minute of day) of the `period`-minute block holding each 1-minute label; a
    09:30 auction bar belongs to the first morning block."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {PERIODS}, not {period!r}")
    morning = minute <= _MORNING_END_MIN
    base = np.where(morning, _MORNING_START_MIN, _AFTERNOON_START_MIN)
    k = np.maximum(-(-(minute - base) // period), 1)
    return base + k * period
