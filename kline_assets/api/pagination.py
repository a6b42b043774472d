"""DRF-style pages, shared by every list endpoint: `{count, next, previous, results}` with
`limit`/`offset` links built from the request's own URL, `?ordering=` translated from the
names the frontend uses to the table's columns, and multi-valued filters (`?iphone=1,2` or
`?iphone=1&iphone=2`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar
from urllib.parse import parse_qsl, urlencode

from fastapi import Query, Request
from pydantic import BaseModel
from starlette.datastructures import URL

from kline_assets.lib.errors import InvalidQueryError
from kline_assets.prices.read import DEFAULT_LIMIT, HTTP_HINT, MAX_LIMIT, parse_ordering

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"page size, at most {MAX_LIMIT}")]
Offset = Annotated[int, Query(ge=0, le=10**9, description="rows to skip")]
RunId = Annotated[str, Query(description="run id; `live` is production",
                             pattern=r"^[a-z0-9_]{1,64}$", max_length=64)]
TimeBound = Annotated[str | None, Query(
    max_length=40, description="ISO-8601 date or time; without an offset, Asia/Tokyo")]


class Page(BaseModel, Generic[T]):
    count: int
    next: str | None
    previous: str | None
    results: list[T]


def page(request: Request, count: int, results: list[Any], limit: int, offset: int
         ) -> dict[str, Any]:
    """The page with DRF's LimitOffsetPagination links: no `next` past the end, and a
    `previous` without `offset` when it leads back to the first page."""
    nxt = prev = None
    if offset + limit < count or offset > 0:
        link = _links(request.url)
        if offset + limit < count:
            nxt = link(limit, offset + limit)
        if offset > 0:
            prev = link(limit, offset - limit if offset - limit > 0 else None)
    return {"count": count, "next": nxt, "previous": prev, "results": results}


def _links(url: URL) -> Callable[[int, int | None], str]:
    """The page's URL with `limit` and `offset` (None: without it) set, exactly as Starlette's
    `include_query_params` / `remove_query_params` write it — the other parameters in their
    order, then `limit`, then `offset` — with the query parsed once for both links (those
    methods parse and rebuild it at every step, a tenth of a page's cost)."""
    split = url.components
    kept = _kept_query(split.query)
    head = f"{split.scheme}://{split.netloc}{split.path}?{kept}{'&' if kept else ''}limit="
    tail = f"#{split.fragment}" if split.fragment else ""

    def link(limit: int, offset: int | None) -> str:
        return f"{head}{limit}{'' if offset is None else f'&offset={offset}'}{tail}"

    return link


_PAGED = ("limit", "offset")
_QUOTE_PLUS = str.maketrans({**{chr(c): f"%{c:02X}" for c in range(128)
                                if not (chr(c).isalnum() or chr(c) in "_.-~")}, " ": "+"})
"""`quote_plus(text, safe="")` of an ASCII text, as one `str.translate`."""


def _kept_query(query: str) -> str:
    """`urlencode` of the query's parameters but `limit` and `offset`, as parsed by
    `parse_qsl(keep_blank_values=True)`. An ASCII query without `%` or `+` decodes to itself,
    so its pairs are split and quoted directly (the frontend's usual query; parsing and
    quoting it the general way was a tenth of a page)."""
    if query.isascii() and "%" not in query and "+" not in query:
        pairs = (part.partition("=") for part in query.split("&") if part)
        return "&".join(f"{k.translate(_QUOTE_PLUS)}={v.translate(_QUOTE_PLUS)}"
                        for k, _, v in pairs if k not in _PAGED)
    return urlencode([(k, v) for k, v in parse_qsl(query, keep_blank_values=True)
                      if k not in _PAGED])


@dataclass(frozen=True)
class Listing:
    """What every list of bucketed rows takes besides its own filters: the run, the bucket
    range, the ordering and the page, and the request its page links are built from."""

    request: Request
    run_id: str
    bucket__gte: str | None
    bucket__lte: str | None
    ordering: str | None
    limit: int
    offset: int

    def query_args(self, order_names: Mapping[str, str]) -> dict[str, Any]:
        """The `kline_assets.prices.read` arguments; an ordering outside `order_names` is a 400."""
        return dict(run_id=self.run_id, bucket_gte=self.bucket__gte,
                    bucket_lte=self.bucket__lte, limit=self.limit, offset=self.offset,
                    order=ordering(self.ordering, order_names, "-bucket"))

    def page(self, count: int, results: list[Any]) -> dict[str, Any]:
        return page(self.request, count, results, self.limit, self.offset)


async def listing(
    request: Request, run_id: RunId = "live", bucket__gte: TimeBound = None,
    bucket__lte: TimeBound = None,
    ordering_: Annotated[str | None, Query(
        alias="ordering", max_length=200, description="fields, '-' for descending")] = None,
    limit: Limit = DEFAULT_LIMIT, offset: Offset = 0,
) -> Listing:
    """The dependency that reads a Listing from the query string."""
    return Listing(request, run_id, bucket__gte, bucket__lte, ordering_, limit, offset)


def ordering(value: str | None, names: Mapping[str, str], default: str) -> list[str]:
    """`-bucket,iphone` in the API's names → the query's order terms; unknown names → 400."""
    return [("-" if descending else "") + name
            for name, descending in parse_ordering(value or default, names, default, HTTP_HINT)]


def multi(values: list[str] | None) -> list[str] | None:
    """Repeated and comma-separated values of one filter, flattened; None when absent."""
    if not values:
        return None
    out = [v.strip() for value in values for v in value.split(",") if v.strip()]
    return out or None


def ints(values: list[str] | None, what: str) -> list[int] | None:
    items = multi(values)
    if items is None:
        return None
    try:
        return [int(v) for v in items]
    except ValueError as exc:
        raise InvalidQueryError(f"{what}: expected integer ids, got {', '.join(items)}") from exc


__all__ = ["Limit", "Listing", "Offset", "Page", "RunId", "TimeBound", "ints", "listing",
           "multi", "ordering", "page"]
