"""Stock bar endpoints and the bars page: `GET /api/bars/` (the merged query — vendor history,
synthesised archive, today's bars in Redis — one row per frame with its source), `GET
/api/bars/status` (the stream consumer and the last hand-over, for the page's status view),
`GET /api/bars/symbols` (the symbols the stores hold, for the page's picker) and `GET /bars`
(candlesticks, volume, the rows, the status)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel

from kline_assets.api.pagination import Limit, Offset, Page, page
from kline_assets.api.stores import Stores
from kline_assets.lib.errors import InvalidQueryError
from kline_assets.stocks import read

router = APIRouter(tags=["bars"])
STATIC = Path(__file__).parent / "static"
MAX_SPAN = timedelta(days=31)
DEFAULT_SPAN = timedelta(hours=24)
CALENDAR_HEADER = "X-Kline-Calendar"
"""Set on a bar page whose range reaches days the closures file decides (the page's JSON keeps
the shape the frontend reads)."""

Clock = Annotated[str, Query(max_length=40, description="ISO-8601 date and time; without an "
                                                        "offset, Asia/Shanghai")]


def bar_stores(request: Request) -> Stores:
    """The app's stores; bars read PostgreSQL and Redis only, so the embedded ClickHouse engine
    is not held for them (unlike `get_stores`)."""
    return request.app.state.stores


class Bar(BaseModel):
    symbol: str
    period: int
    frame: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    amount: float
    source: str


class BarsStatus(BaseModel):
    consumers: list[dict[str, str]]
    handover: dict[str, str]
    live_days: list[str]
    symbols: list[str]


@router.get("/api/bars/", response_model=Page[Bar])
def list_bars(
    request: Request,
    response: Response,
    symbol: Annotated[str, Query(min_length=1, max_length=64, description="e.g. 600000.SH")],
    start: Clock,
    end: Annotated[str | None, Query(max_length=40, description="default: start + 24 hours")
                   ] = None,
    period: Annotated[int, Query(description=f"minutes: {', '.join(map(str, read.PERIODS))}")] = 1,
    limit: Limit = 1000,
    offset: Offset = 0,
    stores: Stores = Depends(bar_stores),
) -> dict:
    """`period`-minute bars of `symbol` with frames in [start, end], oldest first; each says
    its source: `vendor` (stock_1min_qfq), `synth` (the nightly archive of our bars) or
    `live` (today's bars in Redis, not handed over yet). When the range reaches days after
    the last one exchange-calendars knows, the `X-Kline-Calendar` header says
    `provisional (closures file <path>)`: their trading days come from the operators' file."""
    lo = read.parse_clock(start, "start")
    try:
        hi = read.parse_clock(end, "end") if end else lo + DEFAULT_SPAN
    except OverflowError as exc:
        raise InvalidQueryError("start + 24 hours is beyond the last representable time") \
            from exc
    if hi - lo > MAX_SPAN:
        raise InvalidQueryError(f"at most {MAX_SPAN.days} days per request")
    rows = read.bars(symbol, period, lo, hi, postgres=stores.postgres, redis=stores.redis)
    note = read.provisional_note(lo, hi)
    if note:  # header values are Latin-1: a path outside it is escaped, never refused
        response.headers[CALENDAR_HEADER] = note.encode("ascii", "backslashreplace").decode()
    return page(request, len(rows), rows[offset:offset + limit], limit, offset)


@router.get("/api/bars/status", response_model=BarsStatus)
def bars_status(stores: Stores = Depends(bar_stores)) -> dict:
    """The stream consumers' last reports (ticks/s, lag, pending, malformed), the last
    hand-over and its accuracy, the days still in Redis and the latest day's symbols."""
    return read.live_status(stores.redis)


class KnownSymbol(BaseModel):
    symbol: str
    sources: list[str]
    last_day: str


@router.get("/api/bars/symbols", response_model=list[KnownSymbol])
def bars_symbols(
    prefix: Annotated[str, Query(max_length=16, pattern=r"^[0-9A-Z.]*$",
                                 description="only symbols starting so, e.g. 6000")] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    stores: Stores = Depends(bar_stores),
) -> list[dict]:
    """The symbols some store holds bars of, sorted: their sources (vendor, synth, live) and
    the last day with bars, so a page can offer them and open on a day with data."""
    return read.known_symbols(stores.postgres, stores.redis, prefix, limit)


@router.get("/bars", include_in_schema=False)
def bars_page() -> FileResponse:
    return FileResponse(STATIC / "bars.html")
