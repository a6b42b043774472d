"""The vendor feed's transfer monitor: `GET /api/vendor/status` (the stream's groups, backlog,
pending per consumer, ingest rate, rejections by reason, corrections, last frame per symbol,
symbols complete for the day; `kline_assets.stocks.read.transfer_status`) and `GET /transfer`, the
page that shows it, refreshed every few seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse

from kline_assets.api.bars import bar_stores
from kline_assets.api.stores import Stores
from kline_assets.stocks import read

router = APIRouter(tags=["vendor"])
STATIC = Path(__file__).parent / "static"


@router.get("/api/vendor/status")
def status(
    stream: Annotated[str | None, Query(max_length=200, description="default: "
                                        "<prefix>:vendor:bars")] = None,
    stores: Stores = Depends(bar_stores),
) -> dict:
    """The vendor stream as the consumers left it: per group the backlog (undelivered +
    pending), pending and bars/s per consumer, bars/s over the last 10 minutes (5-second
    buckets), the committed counters (inserted, duplicates, corrections, rejected by reason);
    the symbols with the oldest last frame, and how many symbols hold all 240 one-minute bars
    of the newest day. Times are ISO-8601 (24-hour)."""
    return read.transfer_status(stores.redis, stores.postgres, stream)


@router.get("/transfer", include_in_schema=False)
def transfer_page() -> FileResponse:
    return FileResponse(STATIC / "transfer.html")
