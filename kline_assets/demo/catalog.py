"""What the demo is made of: its configuration and the iPhone / shop / cohort catalogue.

Every generator is a pure function of a `DemoConfig` (its seed included), so the quickstart,
the benchmarks and the tests see the same rows for the same configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from kline_assets.lib.errors import KlineError
from kline_assets.lib.months import add_months, month_key, months_between, parse_month
from kline_assets.lib.settings import PRICE_TZ


class DemoError(KlineError):
    """The demo refuses to run: bad arguments, or rows in its way that it did not create."""


# Random streams: one per generator, so changing how one is drawn never shifts another.
S_PRICES, S_BARS, S_TICKS = 2, 3, 4


@dataclass(frozen=True)
class DemoConfig:
    """The demo's size and window. `start` is the first month ('YYYY-MM' or 'YYYY-MM-01')."""

    seed: int = 7
    start: str = "2025-10-01"  # first month of price records (Asia/Tokyo); stock bars use its month
    months: int = 2
    n_shops: int = 24
    n_iphones: int = 40
    n_cohorts: int = 5
    stock_codes: int = 20
    stock_months: int = 2  # 1-minute bars from the month of `start` (Asia/Shanghai sessions)

    def __post_init__(self) -> None:
        parse_month(self.start)  # a whole month: partitions and windows are months
        if self.months < 1 or self.stock_months < 0:
            raise ValueError("months must be ≥ 1 and stock months ≥ 0")
        if not 1 <= self.n_shops < 999:
            raise ValueError("shops must be in [1, 998] (999 is the documented unknown shop)")
        if not 1 <= self.n_iphones <= len(IPHONE_MODELS):
            raise ValueError(f"iPhones must be in [1, {len(IPHONE_MODELS)}]")
        if not 0 <= self.n_cohorts <= len(COHORTS):
            raise ValueError(f"cohorts must be in [0, {len(COHORTS)}]")
        if not 0 <= self.stock_codes <= len(STOCK_CODES):
            raise ValueError(f"stock codes must be in [0, {len(STOCK_CODES)}]")

    @property
    def first_month(self) -> datetime:
        """The naive start of the first month."""
        return parse_month(self.start)

    @property
    def price_months(self) -> list[str]:
        """Partition keys ('YYYY-MM-01') of the price months."""
        first = self.first_month
        return [month_key(m) for m in months_between(first, add_months(first, self.months))]

    @property
    def stock_month_keys(self) -> list[str]:
        """Partition keys of the stock months."""
        first = self.first_month
        return [month_key(m) for m in months_between(first, add_months(first, self.stock_months))]

    @property
    def window(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """[start, end) of the price records, Asia/Tokyo."""
        first = self.first_month
        return (pd.Timestamp(first, tz=PRICE_TZ),
                pd.Timestamp(add_months(first, self.months), tz=PRICE_TZ))

    @property
    def stock_window(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """[start, end) of the stock bars, naive Beijing wall clock, whole months."""
        first = self.first_month
        return pd.Timestamp(first), pd.Timestamp(add_months(first, self.stock_months))


def random_stream(cfg: DemoConfig, stream: int, *extra: int) -> np.random.Generator:
    """The random generator of one stream (S_PRICES, S_BARS, S_TICKS) of a configuration."""
    return np.random.default_rng([cfg.seed, stream, *extra])


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


def base_price(gen: str, variant: str, storage: str) -> int:
    """New-device purchase price of a model in yen, before drift, shops and grades."""
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
