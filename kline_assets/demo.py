"""Realistic synthetic data for the quickstart, the benchmarks and the tests.

Everything is a pure function of a `DemoConfig` (its seed included) and vectorized with
NumPy: a month of price records (~2.2M rows at the defaults) takes a second or two.

Price records imitate the second-hand iPhone purchase-price tracker: shops listing ~75% of
the models, two scrapers visiting every shop about every 15 minutes with jitter (so some
buckets hold two records of one shop/model, some none, and a few records sit exactly on a
bucket edge), missed visits, shops offline for hours, slow random-walk drifts, a step at a
release date, shop-specific offsets, prices rounded to 100 yen, grade A/B prices that are
sometimes NULL, rare ×10 / ÷10 typos, and the handful of invalid rows listed in `BAD_ROWS`.

Stock bars imitate forward-adjusted (qfq) 1-minute A-share bars as vendors publish them:
END-labelled (09:31 … 11:30, 13:01 … 15:00, 240 bars a day), one name change to an "ST"
name, one code whose adjusted prices are negative, and the dirty rows of `DIRTY_BAR_RULES`.
`generate_ticks` produces exchange-style snapshots (cumulative volume/amount) for a day,
with the auction prints and the invalid prints listed in `TICK_EVENTS`.

`python -m kline_assets.demo` loads everything into KLINE_PG_DSN.
"""

from __future__ import annotations

import argparse
import io
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from kline_assets.resources.postgres import PostgresResource
from kline_assets.settings import PRICE_TZ, SQL_DIR, load_settings

BUCKET_US = 15 * 60 * 1_000_000
_COPY_CHUNK = 1 << 22

# Random streams: one per generator, so changing how one is drawn never shifts another.
_S_PRICES, _S_BARS, _S_TICKS = 2, 3, 4


@dataclass(frozen=True)
class DemoConfig:
    seed: int = 7
    start: str = "2025-10-01"  # first month of price records (Asia/Tokyo); stock bars use its month
    months: int = 2
    n_shops: int = 24
    n_iphones: int = 40
    n_cohorts: int = 5
    stock_codes: int = 20
    stock_months: int = 2  # 1-minute bars from the month of `start` (Asia/Shanghai sessions)

    def __post_init__(self) -> None:
        if self.months < 1 or self.stock_months < 0:
            raise ValueError("months must be ≥ 1 and stock_months ≥ 0")
        if not 1 <= self.n_shops < 999:
            raise ValueError("n_shops must be in [1, 998] (999 is the documented unknown shop)")
        if not 1 <= self.n_iphones <= len(IPHONE_MODELS):
            raise ValueError(f"n_iphones must be in [1, {len(IPHONE_MODELS)}]")
        if not 0 <= self.n_cohorts <= len(COHORTS):
            raise ValueError(f"n_cohorts must be in [0, {len(COHORTS)}]")
        if not 0 <= self.stock_codes <= len(STOCK_CODES):
            raise ValueError(f"stock_codes must be in [0, {len(STOCK_CODES)}]")

    @property
    def window(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """[start, end) of the price records, Asia/Tokyo."""
        start = pd.Timestamp(self.start, tz=PRICE_TZ)
        return start, start + pd.DateOffset(months=self.months)

    @property
    def stock_window(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """[start, end) of the stock bars, naive Beijing wall clock, whole months."""
        start = pd.Timestamp(self.start).to_period("M").to_timestamp()
        return start, start + pd.DateOffset(months=self.stock_months)


# --------------------------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------------------------

# (generation, variant, storage) in the order ids are given: the first five already cover
# every cohort, so small configs (n_iphones=5) still have non-empty cohorts.
IPHONE_MODELS: tuple[tuple[str, str, str], ...] = (
    ("17", "Pro Max", "256GB"), ("17", "Pro", "256GB"), ("17", "", "256GB"),
    ("14", "", "128GB"), ("16", "Pro", "256GB"), ("Air", "", "256GB"),
    ("17", "Pro Max", "512GB"), ("17", "Pro", "512GB"), ("17", "", "512GB"),
    ("16", "Pro Max", "256GB"), ("16", "", "128GB"), ("16", "Plus", "128GB"),
    ("15", "Pro", "128GB"), ("15", "", "128GB"), ("13", "", "128GB"),
    ("17", "Pro Max", "1TB"), ("17", "Pro", "1TB"), ("16", "Pro", "512GB"),
    ("16", "Pro Max", "512GB"), ("16", "", "256GB"), ("15", "Pro Max", "256GB"),
    ("15", "Pro", "256GB"), ("15", "", "256GB"), ("14", "Pro", "128GB"),
    ("14", "", "256GB"), ("13", "Pro", "128GB"), ("13", "", "256GB"),
    ("13", "mini", "128GB"), ("16e", "", "128GB"), ("Air", "", "512GB"),
    ("17", "Pro Max", "2TB"), ("16", "Pro", "128GB"), ("16", "Pro Max", "1TB"),
    ("16", "Plus", "256GB"), ("15", "Pro Max", "512GB"), ("15", "Plus", "128GB"),
    ("14", "Pro Max", "256GB"), ("14", "Plus", "128GB"), ("12", "", "128GB"),
    ("14", "Pro", "256GB"),
)
LATEST_GENERATIONS = ("17", "Air")  # released September 2025
_GEN_BASE = {"17": 98_000, "Air": 98_000 * 1.05, "16": 80_000, "16e": 80_000 * 0.78,
             "15": 66_000, "14": 54_000, "13": 46_000, "12": 40_000}
_VARIANT = {"": 1.0, "Plus": 1.1, "Pro": 1.28, "Pro Max": 1.42, "mini": 0.94}
_STORAGE = {"128GB": 1.0, "256GB": 1.1, "512GB": 1.25, "1TB": 1.42, "2TB": 1.55}
_STORAGE_WEIGHT = {"128GB": 1.0, "256GB": 1.0, "512GB": 0.6, "1TB": 0.3, "2TB": 0.1}

# (slug, name); members and weights follow from the rules in `_cohort_weight`.
COHORTS: tuple[tuple[str, str], ...] = (
    ("pro-max-latest", "iPhone 17 Pro Max (all storage)"),
    ("pro-latest", "iPhone 17 Pro (all storage)"),
    ("base-latest", "iPhone 17 / iPhone Air"),
    ("all-256gb", "Every 256GB model"),
    ("legacy", "iPhone 14 and older"),
)

STOCK_CODES: tuple[tuple[str, str], ...] = (
    ("600000.SH", "浦发银行"), ("000001.SZ", "平安银行"), ("600036.SH", "招商银行"),
    ("601318.SH", "中国平安"), ("000002.SZ", "万科A"), ("600028.SH", "中国石化"),
    ("601988.SH", "中国银行"), ("000725.SZ", "京东方A"), ("600104.SH", "上汽集团"),
    ("601857.SH", "中国石油"), ("000063.SZ", "中兴通讯"), ("600050.SH", "中国联通"),
    ("002415.SZ", "海康威视"), ("601166.SH", "兴业银行"), ("000333.SZ", "美的集团"),
    ("600690.SH", "海尔智家"), ("300059.SZ", "东方财富"), ("601012.SH", "隆基绿能"),
    ("002594.SZ", "比亚迪"), ("600221.SH", "海航控股"),
)
SHOP_NAMES: tuple[str, ...] = (
    "Akihabara Mobile Kaitori", "Shinjuku Smart Buy", "Ikebukuro Phone Plaza",
    "Shibuya Resale Center", "Ueno Gadget Market", "Nakano Broadway Mobile",
    "Yokohama Kaitori Station", "Osaka Nipponbashi Phone", "Umeda Mobile Exchange",
    "Nagoya Osu Gadgets", "Sapporo Tanukikoji Mobile", "Fukuoka Tenjin Kaitori",
    "Kyoto Teramachi Phone", "Kobe Sannomiya Buyback", "Sendai Ichibancho Mobile",
    "Hiroshima Hondori Phones", "Chiba Kaitori Depot", "Saitama Omiya Phone",
    "Kawasaki Mobile Yard", "Naha Kokusai Phones", "Mobile Mix Online",
    "Kaitori Express (web)", "Sumaho Buyers Net", "Rakuraku Kaitori (web)",
)


def _iphone_name(gen: str, variant: str, storage: str) -> str:
    model = "iPhone Air" if gen == "Air" else f"iPhone {gen}"
    return " ".join(p for p in (model, variant, storage) if p)


def _base_price(gen: str, variant: str, storage: str) -> int:
    price = _GEN_BASE[gen] * _VARIANT[variant] * _STORAGE[storage]
    return int(np.clip(round(price / 100) * 100, 40_000, 220_000))


def _cohort_weight(slug: str, gen: str, variant: str, storage: str) -> float | None:
    """Weight of a model in a cohort (popularity: larger storage sells less), None if not in."""
    if slug == "pro-max-latest" and gen == "17" and variant == "Pro Max":
        return _STORAGE_WEIGHT[storage]
    if slug == "pro-latest" and gen == "17" and variant == "Pro":
        return _STORAGE_WEIGHT[storage]
    if slug == "base-latest" and gen in LATEST_GENERATIONS and variant == "":
        return (1.0 if gen == "17" else 0.5) * _STORAGE_WEIGHT[storage]
    if slug == "all-256gb" and storage == "256GB":
        return 1.0
    if slug == "legacy" and gen in ("12", "13", "14"):
        return 0.5 if variant == "mini" else 1.0
    return None


def generate_catalog(cfg: DemoConfig = DemoConfig()) -> dict[str, pd.DataFrame]:
    """iphone(id, name), shop(id, name), cohort(id, slug, name), cohort_member(cohort_id,
    iphone_id, weight). Ids start at 1. A cohort left empty by a small n_iphones gets iPhone 1."""
    models = IPHONE_MODELS[: cfg.n_iphones]
    iphone = pd.DataFrame({
        "id": np.arange(1, len(models) + 1, dtype=np.int64),
        "name": [_iphone_name(*m) for m in models],
    })
    names = [
        SHOP_NAMES[i] if i < len(SHOP_NAMES) else f"Kaitori Shop {i + 1:03d}"
        for i in range(cfg.n_shops)
    ]
    shop = pd.DataFrame({"id": np.arange(1, cfg.n_shops + 1, dtype=np.int64), "name": names})
    cohorts = COHORTS[: cfg.n_cohorts]
    cohort = pd.DataFrame({
        "id": np.arange(1, len(cohorts) + 1, dtype=np.int64),
        "slug": [c[0] for c in cohorts],
        "name": [c[1] for c in cohorts],
    })
    members: list[tuple[int, int, float]] = []
    for cid, (slug, _) in enumerate(cohorts, start=1):
        rows = [
            (cid, iid, w)
            for iid, m in enumerate(models, start=1)
            if (w := _cohort_weight(slug, *m)) is not None
        ]
        members.extend(rows or [(cid, 1, 1.0)])
    cohort_member = pd.DataFrame(members, columns=["cohort_id", "iphone_id", "weight"]).astype(
        {"cohort_id": np.int64, "iphone_id": np.int64, "weight": np.float64}
    )
    return {"iphone": iphone, "shop": shop, "cohort": cohort, "cohort_member": cohort_member}


# --------------------------------------------------------------------------------------------
# Price records
# --------------------------------------------------------------------------------------------

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


def _rng(cfg: DemoConfig, stream: int, *extra: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, stream, *extra])


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
    rng = _rng(cfg, _S_PRICES)
    start, end = cfg.window
    n_buckets = int((end - start) / pd.Timedelta(minutes=15))
    n_shops, models = cfg.n_shops, IPHONE_MODELS[: cfg.n_iphones]
    n_models = len(models)
    start_us = start.value // 1000

    # --- catalogue-level draws --------------------------------------------------------------
    listed = _listings(rng, n_shops, n_models)
    base = np.array([_base_price(*m) for m in models], dtype=np.float64)
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


# --------------------------------------------------------------------------------------------
# Stock bars and ticks
# --------------------------------------------------------------------------------------------

# Which codes carry the special cases (indices into the first `stock_codes` codes).
RENAMED_CODE = 1  # becomes "ST" + name from the middle trading day of the first month
NEGATIVE_CODE = -1  # the last code: forward-adjusted (qfq) prices below zero

# Rows the cleaning rules of stock_monthly_kline must drop. Each rule corrupts one existing
# bar per month (the bar keeps its (code, time)), on code `(i + month) % stock_codes`,
# trading day `3 + i` of the month and bar `17 + 37 * i` of that day; each dirty row breaks
# exactly one rule.
DIRTY_BAR_RULES: dict[str, str] = {
    "negative_volume": "volume < 0",
    "null_amount": "amount IS NULL",
    "high_below_body": "high < GREATEST(open, close)",
    "low_above_body": "low > LEAST(open, close)",
}

_MORNING = np.arange(9 * 60 + 31, 11 * 60 + 31)  # END labels, minutes of the day
_AFTERNOON = np.arange(13 * 60 + 1, 15 * 60 + 1)
BAR_MINUTES = np.concatenate([_MORNING, _AFTERNOON])  # 240


def trading_days(start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """Monday–Friday in [start, end). No exchange holiday calendar: the demo trades through
    China's National Day week (2025-10-01 … 10-08), which the exchanges do not."""
    return pd.bdate_range(start, end - pd.Timedelta(days=1), freq="B")


def _stock_params(cfg: DemoConfig) -> dict[str, np.ndarray]:
    rng = _rng(cfg, _S_BARS)
    n = cfg.stock_codes
    return {
        "p0": np.exp(rng.uniform(np.log(3.0), np.log(80.0), n)),
        "sigma": rng.uniform(0.0007, 0.0016, n),  # per minute
        "lots": np.exp(rng.uniform(np.log(300), np.log(20_000), n)),  # mean lots per minute
        "rng": rng,
    }


def _intraday_shape() -> np.ndarray:
    """U-shaped activity over the 240 bars: busy open, quiet lunch edges, busy close."""
    t = np.arange(240)
    return 0.6 + 1.6 * np.exp(-t / 20) + 0.8 * np.exp(-(239 - t) / 15)


def generate_stock_bars(cfg: DemoConfig = DemoConfig()) -> pd.DataFrame:
    """stock_1min_qfq rows: time (naive Beijing wall clock, END-labelled), code, name, open,
    high, low, close (yuan, qfq), volume (lots), amount (yuan); code by code (in STOCK_CODES
    order), each in time order.

    Every code has 240 bars on every trading day; the rows of DIRTY_BAR_RULES are corrupted
    in place.
    """
    cols = ["time", "code", "name", "open", "high", "low", "close", "volume", "amount"]
    start, end = cfg.stock_window
    days = trading_days(start, end)
    n_codes, n_days = cfg.stock_codes, len(days)
    if n_codes == 0 or n_days == 0:
        empty = {"time": "datetime64[us]", "code": "str", "name": "str"}
        return pd.DataFrame({c: pd.Series(dtype=empty.get(c, "float64")) for c in cols})
    prm = _stock_params(cfg)
    rng = prm.pop("rng")
    shape = np.tile(_intraday_shape(), n_days)
    t_len = n_days * 240

    # log returns; a gap at each day's first bar; volatility follows the activity profile
    sig = prm["sigma"][:, None] * np.sqrt(shape / shape.mean())[None, :]
    ret = rng.normal(0, 1, (n_codes, t_len)) * sig
    gap = np.zeros((n_codes, t_len))
    gap[:, ::240] = rng.normal(0, 0.008, (n_codes, n_days))
    gap[:, 0] = 0
    lclose = np.log(prm["p0"])[:, None] + np.cumsum(gap + ret, axis=1)
    raw_close = np.maximum(np.round(np.exp(lclose), 2), 0.5)
    raw_open = np.maximum(np.round(np.exp(lclose - ret), 2), 0.5)
    body_hi = np.maximum(raw_open, raw_close)
    body_lo = np.minimum(raw_open, raw_close)
    wick = np.abs(rng.normal(0, 1, (2, n_codes, t_len))) * sig * raw_close * 0.8
    raw_high = body_hi + np.round(wick[0], 2)
    raw_low = np.maximum(body_lo - np.round(wick[1], 2), 0.01)
    vol = np.rint(prm["lots"][:, None] * shape[None, :] * rng.lognormal(-0.125, 0.5, ret.shape))
    vol[rng.random(vol.shape) < 0.003] = 0  # the odd minute without trades
    typical = (raw_high + raw_low + raw_close) / 3
    amount = np.round(vol * typical * 100 * (1 + rng.normal(0, 0.0005, vol.shape)), 2)

    # forward adjustment: one code's cumulative dividends exceed its old prices
    adj = np.zeros(n_codes)
    neg = NEGATIVE_CODE % n_codes
    if n_codes >= 2:
        adj[neg] = np.round(raw_close[neg].max() + 1.5, 2)
    o, h, lo, c = (np.round(x - adj[:, None], 2) for x in (raw_open, raw_high, raw_low, raw_close))

    # dirty rows
    months = pd.period_range(start, end - pd.Timedelta(days=1), freq="M")
    day_month = days.to_period("M")
    for mi, month in enumerate(months):
        month_days = np.flatnonzero(day_month == month)
        for i, rule in enumerate(DIRTY_BAR_RULES):
            if month_days.size == 0:
                continue
            code = (i + mi) % n_codes
            t = month_days[min(3 + i, month_days.size - 1)] * 240 + (17 + 37 * i) % 240
            if rule == "negative_volume":
                vol[code, t] = -max(vol[code, t], 100)
            elif rule == "null_amount":
                amount[code, t] = np.nan
            elif rule == "high_below_body":
                h[code, t] = round(max(o[code, t], c[code, t]) - 0.05, 2)
                lo[code, t] = min(lo[code, t], h[code, t], o[code, t], c[code, t])
            elif rule == "low_above_body":
                lo[code, t] = round(min(o[code, t], c[code, t]) + 0.05, 2)
                h[code, t] = max(h[code, t], lo[code, t], o[code, t], c[code, t])

    minutes = np.tile(BAR_MINUTES, n_days).astype("timedelta64[m]")
    day_start = np.repeat(days.values.astype("datetime64[m]"), 240)
    times = (day_start + minutes).astype("datetime64[us]")
    codes = np.array([c for c, _ in STOCK_CODES[:n_codes]], dtype=object)
    names = np.array([nm for _, nm in STOCK_CODES[:n_codes]], dtype=object)
    name = np.repeat(names[:, None], t_len, axis=1)
    renamed = min(RENAMED_CODE, n_codes - 1)
    first_month = np.flatnonzero(day_month == months[0])
    switch = first_month[first_month.size // 2] * 240
    name[renamed, switch:] = "ST" + names[renamed]

    return pd.DataFrame({
        "time": np.tile(times, n_codes),
        "code": np.repeat(codes, t_len),
        "name": name.ravel(),
        "open": o.ravel(), "high": h.ravel(), "low": lo.ravel(), "close": c.ravel(),
        "volume": vol.ravel(), "amount": amount.ravel(),
    })[cols]


# Special prints in generate_ticks (times are Beijing wall clock):
TICK_EVENTS: dict[str, str] = {
    "09:25:00": "opening call auction, every code (folds into the 09:31 bar)",
    "11:30:00": "last morning print, every code (folds into the 11:30 bar)",
    "15:00:00": "closing call auction, every code (folds into the 15:00 bar)",
    "12:00:00": "out of session, STOCK_CODES[0], stale snapshot (no new volume): reject",
    "15:05:00": "out of session, STOCK_CODES[0], after-hours trade (adds volume): reject",
    "duplicate": "one exact duplicate row of STOCK_CODES[0], just before 10:00",
}
TICK_CODES = 3  # codes with ticks (the first ones of STOCK_CODES)
TICK_INTERVAL_MS = 3000  # exchange snapshot cadence


def generate_ticks(cfg: DemoConfig = DemoConfig(), day: str | None = None) -> pd.DataFrame:
    """Exchange-style snapshots of the first TICK_CODES codes for one trading day.

    Columns: time (naive Beijing wall clock, millisecond precision), code, price (yuan),
    cum_volume (lots, cumulative since the day's open) and cum_amount (yuan, cumulative).
    Continuous trading snapshots come every ~3 s (at .001–.999 past a 3-second slot, never on
    a whole minute) in 09:30–11:30 and 13:00–14:57; the special prints are in TICK_EVENTS.
    Rows are sorted by (code, time). `day` defaults to the first trading day of the stock
    window.
    """
    n_codes = max(1, min(TICK_CODES, cfg.stock_codes))
    if day is None:
        start, end = cfg.stock_window
        days = trading_days(start, end)
        d = days[0] if len(days) else pd.Timestamp(cfg.start).normalize()
    else:
        d = pd.Timestamp(day).normalize()
    if d.dayofweek >= 5:
        raise ValueError(f"{d.date()} is not a trading day (Monday–Friday)")
    rng = _rng(cfg, _S_TICKS, int(d.strftime("%Y%m%d")))
    p0 = np.exp(_rng(cfg, _S_BARS).uniform(np.log(3.0), np.log(80.0), max(cfg.stock_codes, 1)))
    day_ms = d.value // 1_000_000

    def hms(h: int, m: int, s: int = 0) -> int:
        return ((h * 60 + m) * 60 + s) * 1000

    slots = np.concatenate([
        np.arange(hms(9, 30), hms(11, 30), TICK_INTERVAL_MS),
        np.arange(hms(13, 0), hms(14, 57), TICK_INTERVAL_MS),
    ])
    frames = []
    for ci in range(n_codes):  # per code (three of them), vectorized within
        code = STOCK_CODES[ci][0]
        keep = rng.random(slots.size) < 0.9
        t_cont = slots[keep] + rng.integers(1, TICK_INTERVAL_MS, keep.sum())
        times = np.concatenate([[hms(9, 25)], t_cont, [hms(11, 30)], [hms(15, 0)]])
        times.sort()
        n = times.size
        # ~2% daily volatility on the 0.01-yuan grid, inside the ±10% daily limit
        walk = np.exp(np.cumsum(rng.normal(0, 0.02 / np.sqrt(n), n)))
        price = np.round(np.clip(p0[ci] * walk, p0[ci] * 0.9, p0[ci] * 1.1), 2)
        lots = np.rint(rng.lognormal(np.log(20 + p0[ci]), 1.0, n))
        lots[rng.random(n) < 0.1] = 0  # snapshots without a trade
        lots[0] = np.rint(lots[1:].mean() * 40)  # opening auction volume
        lots[-1] = np.rint(lots[1:-1].mean() * 60)  # closing auction volume
        frame = pd.DataFrame({
            "t": times, "code": code, "price": price,
            "cum_volume": np.cumsum(lots).astype(np.int64),
            "cum_amount": np.round(np.cumsum(lots * price * 100), 2),
        })
        if ci == 0:
            last_morning = frame[frame.t <= hms(11, 30)].iloc[-1]
            last = frame.iloc[-1]
            extra = pd.DataFrame({
                "t": [hms(12, 0), hms(15, 5)], "code": code,
                "price": [last_morning.price, last.price],
                "cum_volume": [last_morning.cum_volume, last.cum_volume + 50],
                "cum_amount": [last_morning.cum_amount,
                               round(last.cum_amount + 50 * last.price * 100, 2)],
            })
            dup = frame.iloc[[frame.index[frame.t < hms(10, 0)][-1]]]
            frame = pd.concat([frame, extra, dup], ignore_index=True)
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True).sort_values(["code", "t"], kind="stable")
    out["time"] = (day_ms + out.pop("t").to_numpy()).astype("datetime64[ms]").astype(
        "datetime64[us]"
    )
    return out[["time", "code", "price", "cum_volume", "cum_amount"]].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _ident(name: str) -> sql.Identifier:
    return sql.Identifier(*name.split("."))


def load_demo(postgres: PostgresResource, cfg: DemoConfig = DemoConfig()) -> dict[str, int]:
    """Create the source schema and replace the demo's rows in one transaction.

    Deleted first: price records in the demo window or with a demo id (1..n, so a smaller
    config never collides with an earlier load's ids), iPhones/shops/cohorts with demo ids
    (cohorts also by slug) and their cohort members, and the demo codes' stock bars in the
    stock window. Then everything is COPYed in and the price id sequence is moved past the
    demo ids. Loading twice leaves the same rows with the same ids. Returns rows per table.
    """
    catalog = generate_catalog(cfg)
    records = generate_price_records(cfg)
    bars = generate_stock_bars(cfg)
    start, end = cfg.window
    s_start, s_end = cfg.stock_window
    pt = postgres.price_table
    with postgres.connect() as conn:
        postgres.execute_file(SQL_DIR / "postgres" / "source.sql", conn)
        run = conn.execute
        _delete_where(
            conn, pt, "(recorded_at >= %s AND recorded_at < %s) OR id <= %s",
            (start.to_pydatetime(), end.to_pydatetime(), len(records)),
        )
        cohort_ids = catalog["cohort"]["id"].tolist()
        slugs = catalog["cohort"]["slug"].tolist()
        run(
            sql.SQL(
                "DELETE FROM {m} WHERE cohort_id = ANY(%s) "
                "OR cohort_id IN (SELECT id FROM {c} WHERE slug = ANY(%s))"
            ).format(m=_ident(postgres.cohort_member_table), c=_ident(postgres.cohort_table)),
            (cohort_ids, slugs),
        )
        run(
            sql.SQL("DELETE FROM {} WHERE id = ANY(%s) OR slug = ANY(%s)").format(
                _ident(postgres.cohort_table)
            ),
            (cohort_ids, slugs),
        )
        for table, key in ((postgres.iphone_table, "iphone"), (postgres.shop_table, "shop")):
            run(
                sql.SQL("DELETE FROM {} WHERE id = ANY(%s)").format(_ident(table)),
                (catalog[key]["id"].tolist(),),
            )
        _delete_where(
            conn, postgres.stock_table, "code = ANY(%s) AND time >= %s AND time < %s",
            ([c for c, _ in STOCK_CODES[: cfg.stock_codes]], s_start.to_pydatetime(),
             s_end.to_pydatetime()),
        )
        conn.execute("SET LOCAL TimeZone = 'UTC'")  # naive timestamps below are UTC instants
        counts = {
            postgres.iphone_table: _copy(conn, postgres.iphone_table, catalog["iphone"]),
            postgres.shop_table: _copy(conn, postgres.shop_table, catalog["shop"]),
            postgres.cohort_table: _copy(conn, postgres.cohort_table, catalog["cohort"]),
            postgres.cohort_member_table: _copy(
                conn, postgres.cohort_member_table, catalog["cohort_member"]
            ),
            pt: _copy(conn, pt, records),
            postgres.stock_table: _copy(conn, postgres.stock_table, bars),
        }
        run(
            sql.SQL(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), "
                "GREATEST(%s, (SELECT coalesce(max(id), 0) FROM {})))"
            ).format(_ident(pt)),
            (pt, max(len(records), 1)),
        )
    return counts


def _delete_where(conn: psycopg.Connection, table: str, condition: str, params: tuple) -> None:
    """DELETE the rows matching `condition`; TRUNCATE instead when that is every row (the usual
    demo database: same result, and the following COPY needs no uniqueness checks against
    millions of dead index entries). Both are transactional."""
    t = _ident(table)
    others = conn.execute(
        sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE NOT ({}))").format(t, sql.SQL(condition)),
        params,
    ).fetchone()[0]
    if others:
        conn.execute(sql.SQL("DELETE FROM {} WHERE {}").format(t, sql.SQL(condition)), params)
    else:
        conn.execute(sql.SQL("TRUNCATE {}").format(t))


def _copy(conn: psycopg.Connection, table: str, df: pd.DataFrame) -> int:
    """COPY a frame in: binary when every column is a number or a timestamp, else CSV.

    Both are built vectorized (PostgresResource.copy_in goes through DataFrame.to_csv, which
    formats tz-aware timestamps one by one: ~50× slower on the price records).
    """
    binary = _binary_columns(df, _column_types(conn, table))
    stmt = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT {})").format(
        _ident(table),
        sql.SQL(", ").join(map(sql.Identifier, map(str, df.columns))),
        sql.SQL("binary" if binary is not None else "csv"),
    )
    with conn.cursor().copy(stmt) as copy:
        if binary is not None:
            copy.write(_PG_COPY_HEADER)
            for first in range(0, len(df), _BINARY_ROWS):
                copy.write(_binary_rows(binary, slice(first, first + _BINARY_ROWS)))
            copy.write(b"\xff\xff")
        else:
            data = _csv_bytes(df).getbuffer()
            for pos in range(0, len(data), _COPY_CHUNK):
                copy.write(data[pos : pos + _COPY_CHUNK])
            del data
    return len(df)


def _csv_bytes(df: pd.DataFrame) -> io.BytesIO:
    """CSV written by pyarrow. Time-zone-aware columns travel as naive UTC: the caller's
    transaction sets TimeZone UTC. Naive columns (Beijing wall clock) go as they are."""
    tab = pa.Table.from_pandas(df, preserve_index=False)
    for i, field in enumerate(tab.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            tab = tab.set_column(i, field.name, tab.column(i).cast(pa.timestamp(field.type.unit)))
    buf = io.BytesIO()
    pacsv.write_csv(tab, buf, pacsv.WriteOptions(include_header=False))
    return buf


_PG_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, extension length
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 UTC in Unix microseconds
_BINARY_TYPES = {"int2": ">i2", "int4": ">i4", "int8": ">i8", "float8": ">f8",
                 "timestamp": ">i8", "timestamptz": ">i8"}
_BINARY_ROWS = 1 << 20
_Column = tuple[np.ndarray, np.ndarray | None, str]  # values, NULL mask, big-endian dtype


def _column_types(conn: psycopg.Connection, table: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
        "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped",
        (".".join('"' + p.replace('"', '""') + '"' for p in table.split(".")),),
    ).fetchall()
    return dict(rows)


def _binary_columns(df: pd.DataFrame, types: dict[str, str]) -> list[_Column] | None:
    """The frame's columns as arrays for COPY BINARY, or None where a type does not fit."""
    out: list[_Column] = []
    for name in df.columns:
        typ, s = types.get(str(name)), df[name]
        code = _BINARY_TYPES.get(typ or "")
        if code is None:
            return None
        null = s.isna().to_numpy()
        if typ in ("timestamp", "timestamptz"):
            if not pd.api.types.is_datetime64_any_dtype(s.dtype):
                return None
            aware = isinstance(s.dtype, pd.DatetimeTZDtype)
            if aware != (typ == "timestamptz"):
                return None
            wall = s.dt.tz_convert("UTC").dt.tz_localize(None) if aware else s
            us = wall.to_numpy().astype("datetime64[us]").astype(np.int64)
            values = np.where(null, 0, us - _PG_EPOCH_US)
        elif typ == "float8":
            if not pd.api.types.is_float_dtype(s.dtype):
                return None
            values = s.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            if not pd.api.types.is_integer_dtype(s.dtype):
                return None
            values = s.to_numpy(dtype=np.int64, na_value=0)
            info = np.iinfo(np.dtype(code))
            if values.size and (values.min() < info.min or values.max() > info.max):
                return None  # let CSV carry it and PostgreSQL report the overflow
        out.append((values, null if null.any() else None, code))
    return out


def _binary_rows(cols: list[_Column], rows: slice) -> memoryview:
    """COPY BINARY tuples: each row packed at full width, then the data bytes of NULL fields
    cut out with one boolean mask (row-major, so the result is the rows concatenated)."""
    fields: list[tuple[str, str]] = [("n", ">i2")]
    for i, (_, _, code) in enumerate(cols):
        fields += [(f"l{i}", ">i4"), (f"v{i}", code)]
    dtype = np.dtype(fields)  # packed: no alignment padding
    n = len(cols[0][0][rows])
    packed = np.empty(n, dtype=dtype)
    packed["n"] = len(cols)
    keep = None
    for i, (values, null, code) in enumerate(cols):
        width = np.dtype(code).itemsize
        packed[f"v{i}"] = values[rows]
        if null is None or not null[rows].any():
            packed[f"l{i}"] = width
            continue
        nulls = null[rows]
        packed[f"l{i}"] = np.where(nulls, -1, width)
        if keep is None:
            keep = np.ones((n, dtype.itemsize), dtype=bool)
        offset = dtype.fields[f"v{i}"][1]
        keep[nulls, offset : offset + width] = False
    raw = packed.view(np.uint8).reshape(n, dtype.itemsize)
    return memoryview(raw.ravel() if keep is None else raw[keep])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Load the synthetic demo data into PostgreSQL")
    parser.add_argument("--dsn", default=None, help="default: KLINE_PG_DSN")
    parser.add_argument("--seed", type=int, default=DemoConfig.seed)
    parser.add_argument("--start", default=DemoConfig.start)
    parser.add_argument("--months", type=int, default=DemoConfig.months)
    parser.add_argument("--stock-months", type=int, default=DemoConfig.stock_months)
    args = parser.parse_args(argv)
    cfg = DemoConfig(seed=args.seed, start=args.start, months=args.months,
                     stock_months=args.stock_months)
    postgres = PostgresResource(dsn=args.dsn or load_settings().pg_dsn)
    began = time.perf_counter()
    counts = load_demo(postgres, cfg)
    seconds = time.perf_counter() - began
    for table, rows in counts.items():
        print(f"{table:32s} {rows:>10,d} rows")
    print(f"loaded into {postgres.address} in {seconds:.1f} s")


if __name__ == "__main__":
    main()
