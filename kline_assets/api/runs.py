"""Runs and their scopes: what the page offers to pick, and what a frontend lists."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel

from kline_assets.api.pagination import Limit, Offset, Page, page
from kline_assets.api.stores import Stores, get_stores
from kline_assets.prices import read

router = APIRouter(prefix="/api", tags=["runs"])


class Run(BaseModel):
    run_id: str
    months: list[str]
    rows: dict[str, int]


class Scope(BaseModel):
    scope: str
    name: str | None
    first_bucket: str
    last_bucket: str


@router.get("/runs/", response_model=Page[Run])
def runs(request: Request, stores: Annotated[Stores, Depends(get_stores)],
         limit: Limit = read.DEFAULT_LIMIT, offset: Offset = 0) -> dict:
    """Every run with data in the price tables: its months and stored rows per table."""
    all_runs = stores.read(read.list_runs)
    return page(request, len(all_runs), all_runs[offset:offset + limit], limit, offset)


@router.get("/runs/{run_id}/scopes/", response_model=Page[Scope])
def scopes(request: Request, stores: Annotated[Stores, Depends(get_stores)],
           run_id: Annotated[str, Path(pattern=r"^[a-z0-9_]{1,64}$")],
           limit: Limit = read.DEFAULT_LIMIT, offset: Offset = 0) -> dict:
    """The scopes of a run (iPhones first, then cohorts) with their names and bucket span."""
    found = stores.read(read.list_scopes, run_id=run_id)
    names = stores.names.get()
    results = []
    for s in found[offset:offset + limit]:
        kind, key = s["scope"].split(":", 1)
        name = (names.iphone.get(int(key)) if kind == "iphone"
                else (names.cohort.get(key) or (None, None))[1])
        results.append({**s, "name": name})
    return page(request, len(found), results, limit, offset)
