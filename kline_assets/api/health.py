"""`/healthz`: each store's reachability with its address (never a password), and how the
service's page cache is doing."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from kline_assets.api.stores import Stores
from kline_assets.lib.errors import StoreUnavailable
from kline_assets.resources.dsn import redact

router = APIRouter(tags=["health"])


def _probe(name: str, address: str, check) -> dict:
    try:
        check()
    except StoreUnavailable as exc:
        return {"store": name, "ok": False, "address": address, "error": str(exc)}
    return {"store": name, "ok": True, "address": address}


@router.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    """200 when every store answers, 503 (with which one and why) when one does not."""
    stores: Stores = request.app.state.stores

    def clickhouse() -> None:
        stores.keeper.touch()
        with stores.clickhouse.client() as client:
            client.query("SELECT 1")

    def postgres() -> None:
        with stores.postgres.connect() as conn:
            conn.execute("SELECT 1")

    def redis() -> None:
        stores.redis.client().close()

    checks = [_probe("clickhouse", stores.clickhouse.address, clickhouse),
              _probe("postgres", stores.postgres.address, postgres),
              _probe("redis", redact(stores.redis.url), redis)]
    ok = all(c["ok"] for c in checks)
    return JSONResponse({"status": "ok" if ok else "unavailable", "stores": checks,
                         "cache": stores.cache_stats(),
                         "memory": stores.months.stats() if stores.months else None},
                        status_code=200 if ok else 503)
