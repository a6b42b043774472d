"""Time alignment of raw price records onto 15-minute buckets (pure NumPy, no I/O).

Per (shop, iphone, bucket) the record with the latest `recorded_at` wins; ties go to the
higher id. Buckets are labelled by their start. Asia/Tokyo has no DST and a whole-hour
offset, so flooring epoch time by 15 minutes equals flooring Tokyo wall-clock time.
"""

from __future__ import annotations

import numpy as np

BUCKET_SECONDS = 900
_BUCKET_US = BUCKET_SECONDS * 1_000_000


def bucket_start_us(recorded_us: np.ndarray) -> np.ndarray:
    """Floor epoch microseconds to the start of their 15-minute bucket."""
    return (recorded_us // _BUCKET_US) * _BUCKET_US


def latest_per_bucket(
    shop_id: np.ndarray, iphone_id: np.ndarray, recorded_us: np.ndarray, record_id: np.ndarray
) -> np.ndarray:
    """Indices of the winning record of every (shop, iphone, bucket) group.

    One lexsort orders rows by group, then recorded_at, then id; the last row of each group
    is the winner. Returned indices are sorted by (iphone, shop, bucket) through the sort keys'
    order (shop, iphone, bucket) — callers sort output as they need.
    """
    n = len(recorded_us)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    bucket = recorded_us // _BUCKET_US
    order = np.lexsort((record_id, recorded_us, bucket, shop_id, iphone_id))
    b, s, i = bucket[order], shop_id[order], iphone_id[order]
    last_of_group = np.ones(n, dtype=bool)
    last_of_group[:-1] = (b[1:] != b[:-1]) | (s[1:] != s[:-1]) | (i[1:] != i[:-1])
    return order[last_of_group]
