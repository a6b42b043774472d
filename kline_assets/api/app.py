"""`create_app()`: the FastAPI application of `kline serve` — routers per resource family,
errors mapped to HTTP in one place, and the page with its static scripts.

FastAPI (on Starlette) gives the OpenAPI spec the property-based tests run against, and its
sync handlers run in a thread pool, which suits the blocking ClickHouse and PostgreSQL
clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from kline_assets.api import (
    DEFAULT_CACHE_MIB,
    DEFAULT_CACHE_PAGES,
    DEFAULT_HOLD_S,
    bars,
    errors,
    health,
    prices,
    runs,
)
from kline_assets.api import vendor as vendor_routes
from kline_assets.api.names import CatalogNames
from kline_assets.api.query_route import BeforeRouting
from kline_assets.api.responses import EncodedPages, KeptBodies
from kline_assets.api.slices import MonthSlices
from kline_assets.api.stores import EngineKeeper, ReadCache, Stores
from kline_assets.resources.clickhouse import ClickHouseResource
from kline_assets.resources.postgres import PostgresResource
from kline_assets.resources.redis import RedisResource

STATIC = Path(__file__).parent / "static"


def create_app(clickhouse: ClickHouseResource | None = None,
               postgres: PostgresResource | None = None, *,
               hold_s: float = DEFAULT_HOLD_S, names_ttl_s: float = 60.0,
               redis: RedisResource | None = None, cache_pages: int = DEFAULT_CACHE_PAGES,
               cache_ttl_s: float = 0.0, cache_mib: int = DEFAULT_CACHE_MIB) -> FastAPI:
    """The service on the given stores (default: the environment's, as everywhere else).

    `hold_s`: how long the embedded ClickHouse engine stays open after the last request
    (0 = open per request); see `EngineKeeper`. `cache_pages`: pages kept while their data
    cannot have changed (0 = none); `cache_ttl_s`: where no hold proves that (a server DSN),
    how stale a kept page may be (0 = not kept); see `ReadCache`. `cache_mib`: memory for
    the month slices features pages are answered from, valid as kept pages are (0 = none);
    see `MonthSlices`.
    """
    if clickhouse is None or postgres is None or redis is None:
        from kline_assets.resources.build import store_resources

        resources = store_resources()
        clickhouse = clickhouse or resources["clickhouse"]
        postgres = postgres or resources["postgres"]
        redis = redis or resources["redis"]
    keeper = EngineKeeper(clickhouse, hold_s)
    pages = ReadCache(clickhouse, keeper, cache_pages, cache_ttl_s)
    stores = Stores(clickhouse, postgres, CatalogNames(postgres, names_ttl_s), keeper, redis,
                    pages, MonthSlices(clickhouse, pages.version, cache_mib << 20),
                    EncodedPages(cache_pages))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if stores.months is not None:
                stores.months.close()
            stores.keeper.close()

    app = FastAPI(
        title="kline_assets read API",
        version="1",
        description="Runs, aligned prices and features from ClickHouse, in the JSON shapes "
                    "of the pricing frontend (DRF-style pages); stock bars merged from the "
                    "vendor history, the synthesised archive and today's bars in Redis.",
        lifespan=lifespan,
    )
    app.state.stores = stores
    errors.install(app)
    for module in (prices, runs, bars, vendor_routes, health):
        app.include_router(module.router)
    price_paths = [route.path for route in prices.router.routes]
    app.add_middleware(BeforeRouting, paths=price_paths)
    app.add_middleware(KeptBodies, stores=stores, paths=price_paths)  # outside: bytes first
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    # Browsers ask for /favicon.ico whatever the page links: answer it, so no page load logs
    # a 404 in the console.
    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    return app
