"""Turning stored rows into kernel inputs and kernel outputs into rows, per the contract:

* cross_shop_agg: one row per (iPhone, bucket) where at least one shop reports (with the
  lookback carry), stats from `aggregate_cross_shop`.
* features: the mean on the full grid of warm-up month + months, forward-filled (seeded with
  the last mean before the warm-up, so a month alone equals the same month of a long run),
  a row for every bucket from a scope's first observation to the last bucket of the months
  that holds any source record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
import torch

from kline_assets.kernels.aggregate import aggregate_cross_shop
from kline_assets.kernels.align import BUCKET_SECONDS
from kline_assets.kernels.cohorts import aggregate_cohorts
from kline_assets.kernels.feature_names import WINDOWS_MINUTES_TO_BUCKETS
from kline_assets.kernels.features import compute_features, forward_fill
from kline_assets.kernels.grid import build_price_tensor
from kline_assets.lib.settings import PRICE_TZ

STAT_COLUMNS = ("mean", "median", "std", "dispersion")
_BUCKET_NS = BUCKET_SECONDS * 1_000_000_000


def bucket_index(start: datetime, end: datetime) -> pd.DatetimeIndex:
    """Every bucket start in [start, end), Asia/Tokyo."""
    return pd.date_range(pd.Timestamp(start).tz_convert(PRICE_TZ),
                         pd.Timestamp(end).tz_convert(PRICE_TZ), freq="15min", inclusive="left")


def bucket_positions(buckets: pd.Series, start: datetime) -> np.ndarray:
    """Index of each bucket on the grid starting at `start`."""
    ns = buckets.dt.tz_convert("UTC").astype("datetime64[ns, UTC]").astype("int64").to_numpy()
    return (ns - pd.Timestamp(start).value) // _BUCKET_NS


def factorize(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
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



@dataclass
class Computed:
    frame: pd.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)
    info: dict[str, object] = field(default_factory=dict)


class _Stopwatch:
    def __init__(self, device: torch.device) -> None:
        self.device, self.seconds = device, {}

    def lap(self, name: str, t0: float) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        self.seconds[f"{name}_seconds"] = round(now - t0, 4)
        return now


CROSS_SHOP_CHUNK_CELLS = 1 << 22
"""Cells of the (iPhone, shop, bucket) grid built at once: iPhones are independent, so the
grid is built and reduced a group of iPhones at a time (~32 MiB a grid, a few times that in
temporaries) instead of for all of them — memory stays flat as the catalogue grows."""


def cross_shop(
    aligned: pd.DataFrame, run_id: str, warm_start: datetime, start: datetime, end: datetime,
    device: torch.device, *, lookback_buckets: int = 1, outlier_filter: bool = True,
    band: float = 0.2, min_quorum: int = 16, quorum_policy: str = "use_anyway",
    chunk_cells: int = CROSS_SHOP_CHUNK_CELLS,
) -> Computed:
    clock = _Stopwatch(device)
    if aligned.empty:
        return Computed(pd.DataFrame(), {}, {"buckets": 0, "series": 0})
    t0 = time.perf_counter()
    buckets = bucket_index(warm_start, end)
    first = int(np.searchsorted(buckets, pd.Timestamp(start)))
    iphone_col = aligned["iphone_id"].to_numpy()
    iphones = np.unique(iphone_col)
    shops = np.unique(aligned["shop_id"].to_numpy())  # positions shared by every group
    n_shops, n_buckets = len(shops), len(buckets)
    per_group = max(1, chunk_cells // (n_shops * n_buckets))
    frames, n_prices, kept, quorum_kept, keep_cells = [], 0, 0, 0, 0
    for i0 in range(0, len(iphones), per_group):
        group = iphones[i0:i0 + per_group]
        # Positions are computed per group (sorted ids → a range), so no array as long as
        # the whole input lives beside the input itself.
        rows = aligned[(iphone_col >= group[0]) & (iphone_col <= group[-1])]
        prices = build_price_tensor(
            bucket_positions(rows["bucket"], warm_start),
            np.searchsorted(group, rows["iphone_id"].to_numpy()),
            np.searchsorted(shops, rows["shop_id"].to_numpy()),
            rows["price_new"].to_numpy(dtype=np.float64), len(group), n_shops, n_buckets,
            lookback_buckets=lookback_buckets, device=device)
        del rows
        stats = aggregate_cross_shop(prices, outlier_filter=outlier_filter, band=band,
                                     min_quorum=min_quorum, quorum_policy=quorum_policy)
        arrays = {name: to_numpy(getattr(stats, name))[:, first:] for name in STAT_COLUMNS}
        shop_count = to_numpy(stats.shop_count)[:, first:]
        quorum = to_numpy(stats.quorum_met)[:, first:]
        keep = shop_count > 0
        frames.append(long_frame({**arrays, "shop_count": shop_count.astype(np.uint16),
                                  "quorum_met": quorum.astype(np.uint8)}, keep,
                                 buckets[first:], [str(i) for i in group], run_id))
        n_prices += int(torch.isfinite(prices[:, :, first:]).sum())
        kept += int(shop_count.sum())
        quorum_kept += int(quorum[keep].sum())
        keep_cells += int(keep.sum())
        del prices, stats
    t0 = clock.lap("aggregate", t0)  # grids and statistics, group by group
    rows = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    rows = rows.rename(columns={"scope": "iphone_id"}).astype({"iphone_id": np.uint32})
    clock.lap("frame", t0)
    return Computed(rows, clock.seconds, {
        "buckets": len(buckets) - first, "series": len(iphones),
        "shop_prices": n_prices, "outliers_dropped": n_prices - kept,
        "quorum_met_share": round(quorum_kept / keep_cells, 4) if keep_cells else 0.0,
        "iphone_groups": len(frames),
    })


@dataclass
class SeriesInput:
    """Per-scope stats on the grid: NaN where the scope has no data in a bucket."""

    scopes: list[str]
    mean: torch.Tensor  # (S, T)
    stats: dict[str, np.ndarray]  # median/std/dispersion (S, T) float64, shop_count int
    seed: torch.Tensor  # (S,) last mean before the grid, NaN where none


def series_from_rows(
    agg: pd.DataFrame, seeds: pd.Series, warm_start: datetime, end: datetime,
    device: torch.device,
) -> tuple[np.ndarray, SeriesInput]:
    """cross_shop_agg rows → (iPhone ids, per-iPhone series on the grid)."""
    buckets = bucket_index(warm_start, end)
    ids = np.union1d(agg["iphone_id"].to_numpy(dtype=np.int64), seeds.index.to_numpy(np.int64))
    i_pos = np.searchsorted(ids, agg["iphone_id"].to_numpy(dtype=np.int64))
    t_pos = bucket_positions(agg["bucket"], warm_start)
    shape = (len(ids), len(buckets))
    dense = {}
    for name in (*STAT_COLUMNS, "shop_count"):
        arr = np.full(shape, np.nan) if name != "shop_count" else np.zeros(shape, np.int64)
        values = agg[name].to_numpy(dtype=np.float64, na_value=np.nan)
        arr[i_pos, t_pos] = values if name != "shop_count" else values.astype(np.int64)
        dense[name] = arr
    seed = np.full(len(ids), np.nan)
    seed[np.searchsorted(ids, seeds.index.to_numpy(np.int64))] = seeds.to_numpy(np.float64)
    mean = torch.as_tensor(dense.pop("mean"), device=device)
    return ids, SeriesInput([f"iphone:{i}" for i in ids], mean, dense,
                            torch.as_tensor(seed, device=device))


def continue_ema(x: torch.Tensor, state: np.ndarray, minutes: int) -> torch.Tensor:
    """EMA over `w` of (S, T) forward-filled inputs, continuing from `state` (S,): the EMA of
    the bucket just before x (NaN: the scope had no observation yet, so it starts fresh).

    The same kernel as a whole month: the stored EMA is placed before x as the first value,
    and an EMA seeded with its first value then continues e = α·x + (1−α)·state exactly.
    """
    w = WINDOWS_MINUTES_TO_BUCKETS[minutes]
    seeded = torch.cat([torch.tensor(np.asarray(state, dtype=np.float64), device=x.device)[:, None],
                        x], dim=1)
    return compute_features(seeded, {minutes: w})[f"ema_{minutes}"][:, 1:]


def features_frame(
    series: SeriesInput, run_id: str, warm_start: datetime, start: datetime, end: datetime,
    last_source_bucket: pd.Timestamp | None, device: torch.device,
    ema_state: dict[int, np.ndarray] | None = None,
) -> Computed:
    """Rows of features_wide for [start, end) from per-scope series on the warm-up grid.

    `ema_state` (minutes → (S,) EMA of the bucket before `start`) is the live refresh's: its
    grid starts only w−1 buckets before `start`, enough for every rolling window but not for
    an EMA, which is therefore continued from the stored value.
    """
    clock = _Stopwatch(device)
    buckets = bucket_index(warm_start, end)
    if last_source_bucket is None or not series.scopes:
        return Computed(pd.DataFrame(), {}, {"buckets": 0, "series": len(series.scopes)})
    t0 = time.perf_counter()
    seeded = torch.cat([series.seed[:, None], series.mean], dim=1)
    x = forward_fill(seeded)[:, 1:].contiguous()
    t0 = clock.lap("forward_fill", t0)
    features = compute_features(x)
    first = int(np.searchsorted(buckets, pd.Timestamp(start)))
    for minutes, state in (ema_state or {}).items():
        features[f"ema_{minutes}"][:, first:] = continue_ema(x[:, first:], state, minutes)
    t0 = clock.lap("features", t0)
    last = int(np.searchsorted(buckets, last_source_bucket))  # inclusive
    x_np = to_numpy(x)
    keep = np.zeros(x_np.shape, dtype=bool)
    keep[:, first : last + 1] = np.isfinite(x_np[:, first : last + 1])
    columns = {"mean": to_numpy(series.mean)}
    columns.update({k: v for k, v in series.stats.items() if k != "shop_count"})
    columns["shop_count"] = series.stats["shop_count"].astype(np.uint16)
    columns.update({name: to_numpy(t) for name, t in features.items()})
    rows = long_frame(columns, keep, buckets, series.scopes, run_id)
    clock.lap("frame", t0)
    nan_share = float(np.isnan(x_np[keep]).mean()) if keep.any() else 0.0
    return Computed(rows, clock.seconds, {
        "buckets": last + 1 - first, "series": len(series.scopes),
        "input_nan_share": round(float(np.isnan(x_np[:, first:last + 1]).mean()), 4),
        "row_nan_share": round(nan_share, 4),
    })


def cohort_series(
    iphone: SeriesInput, iphone_ids: np.ndarray, members: pd.DataFrame, seeds: pd.Series,
    device: torch.device,
) -> SeriesInput:
    """Cohort series from member series; members: (slug, iphone_id, weight), all valid.

    The seed of a cohort is its weighted mean at the last bucket before the grid where any
    member had data, which `seeds` (slug → value) carries.
    """
    slugs = sorted(members["slug"].unique())
    weights = np.zeros((len(slugs), len(iphone_ids)))
    present = members[members["iphone_id"].isin(iphone_ids)]
    weights[np.searchsorted(slugs, present["slug"]),
            np.searchsorted(iphone_ids, present["iphone_id"])] = present["weight"]
    stats = aggregate_cohorts(iphone.mean, torch.as_tensor(iphone.stats["shop_count"],
                                                            device=device),
                              torch.as_tensor(weights, device=device))
    seed = torch.tensor(seeds.reindex(slugs).to_numpy(np.float64), device=device)
    median, std = to_numpy(stats.median), to_numpy(stats.std)
    mean = to_numpy(stats.mean)
    return SeriesInput(
        [f"cohort:{s}" for s in slugs], stats.mean,
        {"median": median, "std": std, "dispersion": std / mean,
         "shop_count": to_numpy(stats.shop_count),
         "n_models": to_numpy(stats.member_count).astype(np.uint16)},
        seed,
    )
