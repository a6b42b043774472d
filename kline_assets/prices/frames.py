"""Between tables and tensors: the 15-minute grid, indices into it, and frames out of it.

Assets stay free of tensor math and kernels free of pandas; this module translates.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import torch

from kline_assets.kernels.align import BUCKET_SECONDS
from kline_assets.settings import PRICE_TZ

_BUCKET_NS = BUCKET_SECONDS * 1_000_000_000


def grid(start: datetime, end: datetime) -> pd.DatetimeIndex:
    """Every bucket start in [start, end), Asia/Tokyo."""
    return pd.date_range(pd.Timestamp(start).tz_convert(PRICE_TZ),
                         pd.Timestamp(end).tz_convert(PRICE_TZ), freq="15min", inclusive="left")


def bucket_positions(buckets: pd.Series, start: datetime) -> np.ndarray:
    """Index of each bucket on the grid starting at `start`."""
    ns = buckets.dt.tz_convert("UTC").astype("datetime64[ns, UTC]").astype("int64").to_numpy()
    return (ns - pd.Timestamp(start).value) // _BUCKET_NS


def codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique values, position of each value among them)."""
    uniques, positions = np.unique(values.to_numpy(), return_inverse=True)
    return uniques, positions


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu").numpy()


def nullable(values: np.ndarray) -> pd.arrays.FloatingArray:
    """float64 with NaN → a nullable column, so ClickHouse stores NULL rather than nan."""
    mask = np.isnan(values)
    return pd.arrays.FloatingArray(np.where(mask, 0.0, values), mask)


def long_frame(
    columns: dict[str, np.ndarray], keep: np.ndarray, buckets: pd.DatetimeIndex,
    scopes: list[str], run_id: str,
) -> pd.DataFrame:
    """(S, T) arrays → rows (run_id, bucket, scope, …) where `keep` is true."""
    s_idx, t_idx = np.nonzero(keep)
    out = {"run_id": run_id, "bucket": buckets[t_idx], "scope": np.asarray(scopes)[s_idx]}
    for name, values in columns.items():
        picked = values[s_idx, t_idx]
        out[name] = nullable(picked) if picked.dtype.kind == "f" else picked
    return pd.DataFrame(out)
