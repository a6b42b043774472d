"""Errors → HTTP: 400 with the message for a bad parameter, 404 for a run or scope without
data, 503 naming the store and its address when one is down, and a plain 500 without a stack
trace for anything else (logged here, where an operator reads it)."""

from __future__ import annotations

import logging

import psycopg
from clickhouse_connect.driver.exceptions import DatabaseError as ClickHouseDatabaseError
from clickhouse_connect.driver.exceptions import OperationalError as ClickHouseOperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from kline_assets.lib.errors import InvalidQueryError, NotFoundError, StoreUnavailable

log = logging.getLogger(__name__)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "query")
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc)}, status_code=400)

    @app.exception_handler(InvalidQueryError)
    async def invalid(_: Request, exc: InvalidQueryError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(NotFoundError)
    async def not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(StoreUnavailable)
    async def unavailable(_: Request, exc: StoreUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "store": exc.store, "address": exc.address},
                            status_code=503)

    @app.exception_handler(ClickHouseOperationalError)
    async def clickhouse_lost(request: Request, exc: Exception) -> JSONResponse:
        """A server that went away after the connection was made."""
        address = request.app.state.stores.clickhouse.address
        return JSONResponse({"detail": f"ClickHouse at {address} failed: {type(exc).__name__}",
                             "store": "ClickHouse", "address": address}, status_code=503)

    @app.exception_handler(ClickHouseDatabaseError)
    async def clickhouse_not_ready(request: Request, exc: Exception) -> JSONResponse:
        """Tables or database missing (a store never initialised) is the store's state, not a
        bug of the request; any other database error stays a 500."""
        text = str(exc)
        if "UNKNOWN_TABLE" not in text and "UNKNOWN_DATABASE" not in text:
            return await unexpected(request, exc)
        ch = request.app.state.stores.clickhouse
        return JSONResponse({"detail": f"ClickHouse at {ch.address} has no tables in database "
                             f"{ch.db}; create them with `kline init`",
                             "store": "ClickHouse", "address": ch.address}, status_code=503)

    @app.exception_handler(psycopg.OperationalError)
    async def postgres_lost(request: Request, exc: Exception) -> JSONResponse:
        address = request.app.state.stores.postgres.address
        return JSONResponse({"detail": f"PostgreSQL at {address} failed: {type(exc).__name__}",
                             "store": "PostgreSQL", "address": address}, status_code=503)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the "
                             "service log"}, status_code=500)
