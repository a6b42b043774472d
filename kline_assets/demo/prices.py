"""Price records imitating the second-hand iPhone purchase-price tracker.

Shops list ~75% of the models; two scrapers visit every shop about every 15 minutes with
jitter (so some buckets hold two records of one shop/model, some none, and a few records sit
exactly on a bucket edge); visits are missed, shops go offline for hours, prices drift slowly,
step at a release date, carry shop-specific offsets and are rounded to 100 yen; grade A/B
prices are sometimes NULL, rare ×10 / ÷10 typos slip in, and the invalid rows of `BAD_ROWS`
test the pipeline's rejections. Vectorized with NumPy: a month at the defaults (~2.2M rows)
takes a second or two.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kline_assets.demo.catalog import (
    IPHONE_MODELS,
    LATEST_GENERATIONS,
    S_PRICES,
    DemoConfig,
    base_price,
    random_stream,
)
from kline_assets.lib.settings import PRICE_TZ

BUCKET_US = 15 * 60 * 1_000_000

LISTING_RATE = 0.75  # share of the models each shop buys
MISSED_VISIT_RATE = 0.05  # scraper visits that produce nothing
DOUBLE_VISIT_RATE = 0.06  # buckets where both scrapers hit the same shop
EDGE_RATE = 0.005  # records exactly on a 15-minute edge
GRADE_NULL_RATE = 0.10  # each of grade A / grade B
TYPO_RATE = 0.0005  # price_new ×10 or ÷10
GRADE_A, GRADE_B = 0.93, 0.85
SHOP_OFFSET = 0.03  # shop-specific price level, ± this
OUTAGES_PER_DAY = 0.15  # per shop; each lasts 2–6 hours
DRIFT_SIGMA = 0.0008  # log random walk per 15-minute bucket, per model
DEPRECIATION_PER_MONTH = 0.03
RELEASE_STEP = -0.08  # older generations, from `release_time(cfg)` on
RELEASE_HOUR = 10

# Deliberately invalid rows appended to every generated month set; the pipeline must
# reject (and count) each of them. `day` is days after the window start, at 12:00 JST.
BAD_ROWS: tuple[dict, ...] = (
    {"reason": "price_new is NULL", "shop_id": 1, "iphone_id": 1, "price_new": None, "day": 1},
    {"reason": "price_new = 0", "shop_id": 1, "iphone_id": 1, "price_new": 0, "day": 2},
    {"reason": "price_new < 0", "shop_id": 1, "iphone_id": 1, "price_new": -45_000, "day": 3},
    {"reason": "unknown shop_id", "shop_id": 999, "iphone_id": 1, "price_new": 120_000,
     "day": 4},
    {"reason": "unknown iphone_id", "shop_id": 1, "iphone_id": 999, "price_new": 120_000,
     "day": 5},
)


def release_time(cfg: DemoConfig) -> pd.Timestamp:
    """When the older generations' prices step down by RELEASE_STEP (inside the window)."""
    start, end = cfg.window
    days = (end - start).days
    return start + pd.Timedelta(days=int(days * 0.4), hours=RELEASE_HOUR)


def _round100(x: np.ndarray) -> np.ndarray:
    return (np.rint(x / 100.0) * 100).astype(np.int64)


def _listings(rng: np.random.Generator, n_shops: int, n_models: int) -> np.ndarray:
    """Boolean [shop, model]: ~75% listed, every shop ≥ 1 model, every model ≥ 3 shops."""
    listed = rng.random((n_shops, n_models)) < LISTING_RATE
    need = min(3, n_shops)
    for m in np.flatnonzero(listed.sum(axis=0) < need):  # per model, not per record
        listed[rng.permutation(n_shops)[:need], m] = True
    for s in np.flatnonzero(~listed.any(axis=1)):
        listed[s, rng.integers(n_models)] = True
    return listed


def generate_price_records(cfg: DemoConfig = DemoConfig()) -> pd.DataFrame:
    """purchasing_shop_price_record rows for [start, start + months), Asia/Tokyo.

    Columns: id (int64, 1..n in recorded_at order, ties kept in generation order), shop_id,
    iphone_id (int64), price_new, price_grade_a, price_grade_b (nullable Int64, yen),
    recorded_at (datetime64[us, Asia/Tokyo]). The rows of BAD_ROWS sit at their times.
    """
    rng = random_stream(cfg, S_PRICES)
    start, end = cfg.window
    n_buckets = int((end - start) / pd.Timedelta(minutes=15))
    n_shops, models = cfg.n_shops, IPHONE_MODELS[: cfg.n_iphones]
    n_models = len(models)
    start_us = start.value // 1000

    # --- catalogue-level draws --------------------------------------------------------------
    listed = _listings(rng, n_shops, n_models)
    base = np.array([base_price(*m) for m in models], dtype=np.float64)
    older = np.array([m[0] not in LATEST_GENERATIONS for m in models])
    shop_factor = 1.0 + rng.uniform(-SHOP_OFFSET, SHOP_OFFSET, n_shops)
    refresh = rng.choice([1, 2, 4, 8, 16], size=n_shops, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    phase = rng.integers(0, refresh)  # shops reprice every `refresh` buckets
    # per model: a log random walk with a slow depreciation, and a step at the release date
    per_bucket_drift = -DEPRECIATION_PER_MONTH / (30 * 96)
    walk = np.cumsum(
        rng.normal(per_bucket_drift, DRIFT_SIGMA, (n_models, n_buckets)), axis=1
    )
    release_bucket = int((release_time(cfg) - start) / pd.Timedelta(minutes=15))
    level = base[:, None] * np.exp(walk)
    level[older, release_bucket:] *= 1.0 + RELEASE_STEP

    # --- scraper visits: per (bucket, shop) 0, 1 or 2 ---------------------------------------
    u = rng.random((n_buckets, n_shops))
    visits = np.where(u < MISSED_VISIT_RATE, 0, np.where(u > 1 - DOUBLE_VISIT_RATE, 2, 1))
    del u
    offline = np.zeros((n_buckets + 1, n_shops), dtype=np.int32)
    n_out = rng.poisson(OUTAGES_PER_DAY * n_buckets / 96, n_shops)
    out_shop = np.repeat(np.arange(n_shops), n_out)
    out_start = rng.integers(0, n_buckets, out_shop.size)
    out_end = np.minimum(out_start + rng.integers(8, 25, out_shop.size), n_buckets)
    np.add.at(offline, (out_start, out_shop), 1)
    np.add.at(offline, (out_end, out_shop), -1)
    visits[np.cumsum(offline, axis=0)[:n_buckets] > 0] = 0

    # bucket-major: records come out nearly in time order, so the sort below is cheap
    flat = np.repeat(np.arange(n_buckets * n_shops), visits.ravel())
    v_bucket, v_shop = np.divmod(flat, n_shops)
    v_offset = rng.integers(0, BUCKET_US - 60_000_000, flat.size)  # visit start in the bucket

    # --- one record per listed model per visit ----------------------------------------------
    per_shop = listed.sum(axis=1)
    shop_models = np.nonzero(listed)[1]  # models of shop 0, then shop 1, …
    shop_first = np.concatenate([[0], np.cumsum(per_shop)[:-1]])
    counts = per_shop[v_shop]
    r_visit = np.repeat(np.arange(flat.size), counts)
    n = r_visit.size
    rank = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)
    r_shop = v_shop[r_visit]
    r_model = shop_models[shop_first[r_shop] + rank]
    r_bucket = v_bucket[r_visit]
    # models are scraped one after another, 1–3 s apart
    offset = v_offset[r_visit] + rank * 2_000_000 + rng.integers(0, 1_000_000, n)
    np.minimum(offset, BUCKET_US - 1, out=offset)
    offset[rng.random(n) < EDGE_RATE] = 0
    recorded_us = r_bucket * BUCKET_US
    recorded_us += offset + start_us
    del offset, rank, r_visit
    # ids follow recorded_at, as a single writer's bigserial would (and PostgreSQL appends
    # to both indexes instead of splitting pages: COPY is ~2× faster)
    order = np.argsort(recorded_us, kind="stable")
    recorded_us, r_shop, r_model, r_bucket = (
        x[order] for x in (recorded_us, r_shop, r_model, r_bucket)
    )
    del order

    # --- prices -----------------------------------------------------------------------------
    pair_factor = (1.0 + rng.normal(0, 0.004, (n_shops, n_models))) * shop_factor[:, None]
    p_ref, p_phase = refresh[r_shop], phase[r_shop]
    seen = (r_bucket - p_phase) // p_ref  # the bucket whose price the shop still shows
    seen *= p_ref
    seen += p_phase
    np.maximum(seen, 0, out=seen)
    del p_ref, p_phase
    new = level[r_model, seen]
    new *= pair_factor[r_shop, r_model]
    del seen
    price_new = _round100(new)
    grade_a = _round100(new * rng.normal(GRADE_A, 0.004, n))
    grade_b = _round100(new * rng.normal(GRADE_B, 0.006, n))
    del new
    u = rng.random(n)
    price_new[u < TYPO_RATE / 2] *= 10
    typo_down = (u >= TYPO_RATE / 2) & (u < TYPO_RATE)
    price_new[typo_down] //= 10
    del u, typo_down

    grade_null = rng.random((2, n)) < GRADE_NULL_RATE

    # --- the documented bad rows, inserted at their times -----------------------------------
    k, days = len(BAD_ROWS), max(1, int((end - start).days))
    bad_us = [start_us + ((r["day"] % days) * 96 + 48) * BUCKET_US + 123_456 for r in BAD_ROWS]
    at = np.searchsorted(recorded_us, bad_us, side="right")
    ts = pd.DatetimeIndex(np.insert(recorded_us, at, bad_us).astype("datetime64[us]"))
    del recorded_us

    def col(values: np.ndarray, bad: list) -> np.ndarray:
        return np.insert(values, at, bad)

    return pd.DataFrame({
        "id": np.arange(1, n + k + 1, dtype=np.int64),
        "shop_id": col(r_shop + 1, [r["shop_id"] for r in BAD_ROWS]),
        "iphone_id": col(r_model + 1, [r["iphone_id"] for r in BAD_ROWS]),
        "price_new": pd.arrays.IntegerArray(
            col(price_new, [r["price_new"] or 0 for r in BAD_ROWS]),
            col(np.zeros(n, bool), [r["price_new"] is None for r in BAD_ROWS]),
        ),
        "price_grade_a": pd.arrays.IntegerArray(col(grade_a, [0] * k), col(grade_null[0], [1] * k)),
        "price_grade_b": pd.arrays.IntegerArray(col(grade_b, [0] * k), col(grade_null[1], [1] * k)),
        "recorded_at": ts.tz_localize("UTC").tz_convert(PRICE_TZ),
    })


