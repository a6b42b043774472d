"""Price endpoints in the JSON shapes the frontend read from the old DRF ViewSets:
overall bars (per iPhone), cohort bars, the long feature format and aligned prices with shop
and iPhone names (cached from PostgreSQL)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel

from kline_assets.api.pagination import Listing, Page, ints, listing, multi
from kline_assets.api.query_route import QueryRoute
from kline_assets.api.responses import final_until, respond
from kline_assets.api.stores import request_stores
from kline_assets.lib.settings import PRICE_TZ
from kline_assets.prices import read

router = APIRouter(prefix="/api", tags=["prices"], route_class=QueryRoute)
Many = Annotated[list[str] | None, Query(description="one or many, comma-separated or repeated")]
ListingDep = Annotated[Listing, Depends(listing)]


class OverallBar(BaseModel):
    bucket: str
    iphone: int
    iphone_name: str | None
    mean: float | None
    median: float | None
    std: float | None
    shop_count: int
    dispersion: float | None
    is_final: bool
    updated_at: str


class CohortBar(BaseModel):
    bucket: str
    cohort: int | None
    cohort_name: str | None
    mean: float | None
    median: float | None
    std: float | None
    n_models: int | None
    shop_count_agg: int
    dispersion: float | None


class FeatureValue(BaseModel):
    bucket: str
    scope: str
    name: str
    value: float
    version: str
    is_final: bool


class Named(BaseModel):
    id: int
    name: str | None


class PurchasingTimeAnalysis(BaseModel):
    shop: Named
    iphone: Named
    price_new: int
    price_a: int | None
    price_b: int | None
    bucket: str
    record_time: str
    alignment_diff_sec: int


OVERALL_ORDER = {"bucket": "bucket", "iphone": "scope_number", "mean": "mean", "median": "median",
                 "std": "std", "shop_count": "shop_count", "dispersion": "dispersion",
                 "updated_at": "inserted_at"}
COHORT_ORDER = {"bucket": "bucket", "cohort": "scope", "mean": "mean", "median": "median",
                "std": "std", "n_models": "n_models", "shop_count_agg": "shop_count",
                "dispersion": "dispersion"}
FEATURE_ORDER = {"bucket": "bucket", "scope": "scope", "name": "name", "value": "value"}
ALIGNED_ORDER = {"bucket": "bucket", "shop": "shop_id", "iphone": "iphone_id",
                 "price_new": "price_new", "price_a": "price_a", "price_b": "price_b",
                 "record_time": "record_time", "alignment_diff_sec": "alignment_diff_sec"}


OVERALL_COLUMNS = ("bucket", "scope", "mean", "median", "std", "shop_count", "dispersion",
                   "inserted_at")
COHORT_COLUMNS = ("bucket", "scope", "mean", "median", "std", "n_models", "shop_count",
                  "dispersion")
"""The features_wide columns each bar endpoint reads, bucket and scope first."""


def _now() -> datetime:
    return datetime.now(ZoneInfo(PRICE_TZ))


@router.get("/overall-bars/", response_model=Page[OverallBar])
async def overall_bars(rows: ListingDep, iphone: Many = None) -> Response:
    """Cross-shop statistics per iPhone and bucket (scopes `iphone:*`)."""
    stores = request_stores(rows.request)
    ids = ints(iphone, "iphone")
    scope = [f"iphone:{i}" for i in ids] if ids else "iphone:*"
    args = rows.query_args(OVERALL_ORDER)

    def build() -> tuple[dict, float | None]:
        found = stores.read(read.features_page, scope=scope, **args, columns=OVERALL_COLUMNS)
        names, final = stores.names.get().iphone, read.finality(_now())
        buckets, scopes = found.column("bucket"), found.column("scope")
        of_scope = {s: int(s.split(":", 1)[1]) for s in set(scopes)}
        results = [{
            "bucket": b, "iphone": i, "iphone_name": names.get(i), "mean": mean,
            "median": median, "std": std, "shop_count": shops, "dispersion": dispersion,
            "is_final": is_final, "updated_at": updated,
        } for b, i, is_final, mean, median, std, shops, dispersion, updated in zip(
            buckets, [of_scope[s] for s in scopes], final.many(buckets),
            *map(found.column, OVERALL_COLUMNS[2:]), strict=True)]
        return rows.page(found.count, results), final_until(results)

    return await respond(rows.request, stores, build)


@router.get("/cohort-bars/", response_model=Page[CohortBar])
async def cohort_bars(rows: ListingDep, cohort__slug: Many = None) -> Response:
    """Cohort statistics per bucket (scopes `cohort:*`); `cohort` is the cohort's id in
    PostgreSQL, `n_models` the member iPhones with data in the bucket."""
    stores = request_stores(rows.request)
    slugs = multi(cohort__slug)
    scope = [f"cohort:{s}" for s in slugs] if slugs else "cohort:*"
    args = rows.query_args(COHORT_ORDER)

    def build() -> tuple[dict, float | None]:
        found = stores.read(read.features_page, scope=scope, **args, columns=COHORT_COLUMNS)
        cohorts = stores.names.get().cohort
        scopes = found.column("scope")
        of_scope = {s: cohorts.get(s.split(":", 1)[1], (None, None)) for s in set(scopes)}
        results = [{
            "bucket": b, "cohort": known[0], "cohort_name": known[1], "mean": mean,
            "median": median, "std": std, "n_models": models, "shop_count_agg": shops,
            "dispersion": dispersion,
        } for b, known, mean, median, std, models, shops, dispersion in zip(
            found.column("bucket"), [of_scope[s] for s in scopes],
            *map(found.column, COHORT_COLUMNS[2:]), strict=True)]
        return rows.page(found.count, results), None

    return await respond(rows.request, stores, build)


@router.get("/features/", response_model=Page[FeatureValue])
async def features(rows: ListingDep, scope: Many = None, name: Many = None) -> Response:
    """The long format of the old FeatureSnapshot endpoint: one row per scope × bucket ×
    feature with a value, unpivoted in ClickHouse. `scope`: `iphone:<id>`, `cohort:<slug>`,
    `iphone:*` or `cohort:*`; `name`: any of the numeric columns of features_wide."""
    stores = request_stores(rows.request)
    scopes = multi(scope)
    args = dict(scope=scopes[0] if scopes and len(scopes) == 1 else scopes, names=multi(name),
                **rows.query_args(FEATURE_ORDER))

    def build() -> tuple[dict, float | None]:
        found = stores.read(read.feature_values_page, **args)
        final = read.finality(_now())
        results = [{**r, "is_final": is_final} for r, is_final in zip(
            found.rows, final.many(found.column("bucket")), strict=True)]
        return rows.page(found.count, results), final_until(results)

    return await respond(rows.request, stores, build)


@router.get("/purchasing-time-analyses/", response_model=Page[PurchasingTimeAnalysis])
async def purchasing_time_analyses(rows: ListingDep, shop: Many = None, iphone: Many = None
                                   ) -> Response:
    """Aligned prices (the latest record per shop × iPhone × bucket) with shop and iPhone
    names from PostgreSQL."""
    stores = request_stores(rows.request)
    args = dict(shop_ids=ints(shop, "shop"), iphone_ids=ints(iphone, "iphone"),
                **rows.query_args(ALIGNED_ORDER))

    def build() -> tuple[dict, float | None]:
        names = stores.names.get()  # PostgreSQL first: a join that cannot happen fails fast
        found = stores.read(
            read.price_aligned_page, **args,
            columns=["shop_id", "iphone_id", "price_new", "price_a", "price_b", "bucket",
                     "record_time", "alignment_diff_sec"])
        results = [{
            "shop": {"id": r["shop_id"], "name": names.shop.get(r["shop_id"])},
            "iphone": {"id": r["iphone_id"], "name": names.iphone.get(r["iphone_id"])},
            "price_new": r["price_new"], "price_a": r["price_a"], "price_b": r["price_b"],
            "bucket": r["bucket"], "record_time": r["record_time"],
            "alignment_diff_sec": r["alignment_diff_sec"]} for r in found.rows]
        return rows.page(found.count, results), None

    return await respond(rows.request, stores, build)

