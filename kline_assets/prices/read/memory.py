"""features_wide pages served from memory: a run × month of the table read once (one
`query_arrow`, FINAL, the columns a page asks for) into NumPy columns sorted by
(scope, bucket), then every page, filter and ordering of it answered with NumPy.

Why: a page query costs 10–15 ms of CPU inside chdb whatever its SQL (pipeline build, plan,
~30 file opens), so a service that answers many distinct pages (a random iPhone × month from
many users) cannot go faster than ~60 pages/s per core on SQL. A month slice costs a few
hundred milliseconds once; each page of it then costs well under a millisecond.

The rows are exactly those of `pages.features_page` (same FINAL, same filters, same count,
same ordering with the same tie-breakers, same JSON-ready values). Only what can be answered
exactly is answered here — `page_from_slices` returns None otherwise and the caller reads
ClickHouse: a bucket range without both bounds or over more than `MAX_MONTHS` months, an
ordering on a column that may hold NULL or NaN (ClickHouse's NULL/NaN placement is not
reproduced), or an empty answer (ClickHouse then tells a missing run or scope from an empty
page). Whoever keeps slices decides when they are still valid (`api.slices`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kline_assets.resources.clickhouse import ClickHouseResource

from .args import (
    FEATURES_COLUMNS,
    TZ,
    columns_arg,
    iso,
    page_args,
    parse_ordering,
    parse_time,
    run_id_arg,
    scope_filter,
)
from .pages import Page

MAX_MONTHS = 3
"""A bucket range touching more months than this is left to ClickHouse."""
_TIMES = {"bucket", "inserted_at"}
_ORDERABLE = {"bucket", "scope", "scope_number", "inserted_at", "shop_count", "run_id"}
"""Order terms that never hold NULL or NaN, so NumPy's order is ClickHouse's."""
_KEY = ("scope", "bucket")


def month_of(epoch: int) -> int:
    """The partition month (`toYYYYMM(bucket)` in Asia/Tokyo) of an epoch second."""
    d = datetime.fromtimestamp(epoch, TZ)
    return d.year * 100 + d.month


def month_bounds(yyyymm: int) -> tuple[int, int]:
    """[start, end) of a month as epoch seconds."""
    y, m = divmod(yyyymm, 100)
    ny, nm = (y, m + 1) if m < 12 else (y + 1, 1)
    return (int(datetime(y, m, 1, tzinfo=TZ).timestamp()),
            int(datetime(ny, nm, 1, tzinfo=TZ).timestamp()))


def months_between(gte: int, lte: int) -> list[int]:
    out, m = [], month_of(gte)
    last = month_of(lte)
    while m <= last:
        out.append(m)
        m = m + 1 if m % 100 < 12 else (m // 100 + 1) * 100 + 1
    return out


@dataclass
class MonthSlice:
    """One run × month of features_wide, rows sorted by (scope, bucket); `starts[i]` …
    `starts[i+1]` are the rows of `scopes[i]`."""

    run_id: str
    month: int
    scopes: list[str]
    starts: np.ndarray
    bucket: np.ndarray
    columns: dict[str, np.ndarray]
    ints: frozenset[str]
    scope_index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.scope_index = {s: i for i, s in enumerate(self.scopes)}

    @property
    def nbytes(self) -> int:
        return (self.starts.nbytes + self.bucket.nbytes + sum(len(s) + 56 for s in self.scopes)
                + sum(a.nbytes for a in self.columns.values()))


def slice_columns(columns: Sequence[str] | None) -> tuple[str, ...]:
    """The stored columns a page of `columns` needs (scope and bucket always are)."""
    cols = columns_arg(columns, FEATURES_COLUMNS)
    return tuple(c for c in dict.fromkeys([*cols, "inserted_at", "shop_count"])
                 if c not in ("run_id", "scope", "bucket"))


def read_month(clickhouse: ClickHouseResource, run_id: str, month: int,
               columns: Sequence[str]) -> MonthSlice:
    """One query: the month's rows after FINAL (PREWHERE on key columns only, as `pages`
    does), the scopes in order, times as epoch seconds."""
    start, end = month_bounds(month)
    select = ", ".join(f"toUnixTimestamp({c}) AS {c}" if c in _TIMES else c for c in columns)
    sql = (f"SELECT scope, toUnixTimestamp(bucket) AS bucket, {select} "
           f"FROM {clickhouse.table('features_wide')} FINAL PREWHERE run_id = {{run:String}} "
           "AND bucket >= toDateTime({start:Int64}) AND bucket < toDateTime({end:Int64}) "
           "ORDER BY scope, bucket")
    with clickhouse.client() as client:
        table: pa.Table = client.query_arrow(
            sql, parameters={"run": run_id, "start": start, "end": end})
    counts = pc.value_counts(table.column("scope")).flatten()
    scopes = [str(s) for s in counts[0].to_pylist()]
    starts = np.zeros(len(scopes) + 1, dtype=np.int64)
    np.cumsum(counts[1].to_numpy(), out=starts[1:])
    cols, ints = {}, set()
    for c in columns:
        arr = table.column(c)
        if pa.types.is_integer(arr.type):
            ints.add(c)
            arr = arr.cast(pa.float64()) if arr.null_count else arr.cast(pa.int64())
        cols[c] = np.ascontiguousarray(arr.to_numpy())
    return MonthSlice(run_id, month, scopes, starts,
                      np.ascontiguousarray(table.column("bucket").to_numpy().astype(np.int64)),
                      cols, frozenset(ints))


@dataclass(frozen=True)
class SliceRequest:
    """A features page reduced to what a slice answers, validated as `pages` validates."""

    run_id: str
    months: tuple[int, ...]
    columns: tuple[str, ...]
    stored: tuple[str, ...]
    scopes: tuple[str, ...] | None
    prefix: str | None
    gte: int
    lte: int
    order: tuple[tuple[str, bool], ...]
    limit: int
    offset: int


def slice_request(run_id: str = "live", *, scope=None, bucket_gte=None, bucket_lte=None,
                  columns: Sequence[str] | None = None, order="-bucket", limit: int = 100,
                  offset: int = 0) -> SliceRequest | None:
    """The request as a slice reads it, or None when only ClickHouse answers it exactly.
    Bad arguments raise the same InvalidQueryError `pages` raises."""
    run_id = run_id_arg(run_id)
    cols = tuple(columns_arg(columns, FEATURES_COLUMNS))
    terms = parse_ordering(order, (*FEATURES_COLUMNS, "scope_number"), "-bucket")
    limit, offset = page_args(limit, offset)
    params: dict[str, Any] = {}
    scope_filter(scope, params)  # validates
    gte, lte = parse_time(bucket_gte, "bucket__gte"), parse_time(bucket_lte, "bucket__lte")
    if gte is None or lte is None or any(name not in _ORDERABLE for name, _ in terms):
        return None
    months = tuple(months_between(gte, lte)) if gte <= lte else ()
    if not months or len(months) > MAX_MONTHS:
        return None
    seen: dict[str, bool] = {}
    for name, desc in terms:
        seen.setdefault(name, desc)
    order_terms = tuple(seen.items()) + tuple((k, False) for k in _KEY if k not in seen)
    scopes = tuple(dict.fromkeys(params["scopes"])) if "scopes" in params else None
    return SliceRequest(run_id, months, cols, slice_columns(cols), scopes,
                        params.get("scope_prefix"), gte, lte, order_terms, limit, offset)


def _scope_number(scope: str) -> int:
    """`toUInt32OrZero(substring(scope, 8))`: the id of `iphone:<id>`, 0 for most cohorts."""
    tail = scope[7:]
    if tail.isascii() and tail.isdigit() and int(tail) < 2**32:
        return int(tail)
    return 0


def _segments(req: SliceRequest, slices: Sequence[MonthSlice]
              ) -> list[tuple[int, str, int, int]]:
    """(slice, scope, first row, end row) of every run of rows the filter keeps."""
    out = []
    for k, sl in enumerate(slices):
        if req.scopes is not None:
            wanted = [s for s in req.scopes if s in sl.scope_index]
        elif req.prefix is not None:
            wanted = [s for s in sl.scopes if s.startswith(req.prefix)]
        else:
            wanted = sl.scopes
        for s in wanted:
            i = sl.scope_index[s]
            lo, hi = int(sl.starts[i]), int(sl.starts[i + 1])
            b = sl.bucket[lo:hi]
            a, z = lo + int(np.searchsorted(b, req.gte, "left")), \
                lo + int(np.searchsorted(b, req.lte, "right"))
            if z > a:
                out.append((k, s, a, z))
    return out


def page_from_slices(req: SliceRequest, slices: Sequence[MonthSlice]) -> Page | None:
    """The page `pages.features_page` gives, held as columns; None when nothing matches
    (ClickHouse tells a missing run or scope from an empty page)."""
    segs = _segments(req, slices)
    if not segs:
        return None
    ranks = {s: r for r, s in enumerate(sorted({s for _, s, _, _ in segs}))}
    sizes = [z - a for _, _, a, z in segs]
    which = np.repeat(np.arange(len(segs)), sizes)
    rows = np.concatenate([np.arange(a, z) for _, _, a, z in segs])
    seg_slice = np.array([k for k, _, _, _ in segs])
    if len(ranks) == 1 and req.order[0][0] == "bucket":
        # One scope: its segments, month after month, are already in bucket order (a bucket
        # is unique per scope), so the page is a slice of them — the frontend's usual page.
        order = np.arange(len(rows))
        picked = (order[::-1] if req.order[0][1] else order)[req.offset:req.offset + req.limit]
    else:
        keys = []
        for name, desc in reversed(req.order):  # np.lexsort: the last key is the primary one
            if name == "scope":
                key = np.array([ranks[s] for _, s, _, _ in segs], dtype=np.int64)[which]
            elif name == "scope_number":
                key = np.array([_scope_number(s) for _, s, _, _ in segs], dtype=np.int64)[which]
            elif name == "run_id":
                continue
            else:
                key = np.concatenate([(slices[k].bucket if name == "bucket" else
                                       slices[k].columns[name])[a:z] for k, _, a, z in segs]
                                     ).astype(np.int64)
            keys.append(-key if desc else key)
        picked = np.lexsort(keys)[req.offset:req.offset + req.limit]
    return Page(len(rows), columns=_columns(req, slices, segs, seg_slice[which[picked]],
                                            which[picked], rows[picked]))


def _columns(req: SliceRequest, slices: Sequence[MonthSlice], segs, slice_of: np.ndarray,
             seg_of: np.ndarray, row_of: np.ndarray) -> dict[str, list[Any]]:
    n = len(row_of)
    if n == 0:
        return {c: [] for c in req.columns}
    used = sorted(set(slice_of.tolist()))
    values: dict[str, list[Any]] = {}
    for c in req.columns:
        if c == "run_id":
            values[c] = [req.run_id] * n
        elif c == "scope":
            values[c] = [segs[i][1] for i in seg_of.tolist()]
        else:
            parts = [slices[k].bucket if c == "bucket" else slices[k].columns[c] for k in used]
            if len(parts) == 1:  # a page of one month, the usual one
                out = parts[0][row_of]
            else:
                out = np.empty(n, dtype=np.result_type(*parts))
                for k, col in zip(used, parts, strict=True):
                    m = slice_of == k
                    out[m] = col[row_of[m]]
            values[c] = _json(c, out, any(c in slices[k].ints for k in used))
    return values


_FIXED_OFFSET_SINCE = int(datetime(1952, 1, 1, tzinfo=TZ).timestamp())
"""Asia/Tokyo is +09:00 without DST from here on (zoneinfo: DST ended in 1951)."""


@lru_cache(maxsize=1 << 16)
def _iso(epoch: int) -> str:
    """`iso`, remembered: a year of 15-minute buckets is 35,040 strings shared by every scope,
    and a page's times were a tenth of its cost (one datetime per row ~5 µs, NumPy's
    formatting ~0.25 µs, a lookup here ~0.05 µs)."""
    if epoch >= _FIXED_OFFSET_SINCE and TZ.key == "Asia/Tokyo":
        wall = np.datetime64(epoch + 9 * 3600, "s")
        return f"{np.datetime_as_string(wall, unit='s')}+09:00"
    return iso(epoch)  # type: ignore[return-value]


def _isos(arr: np.ndarray) -> list[str]:
    """`iso` of each epoch second."""
    return [_iso(v) for v in arr.astype(np.int64).tolist()]


def _json(name: str, arr: np.ndarray, integer: bool) -> list[Any]:
    """JSON-ready values as `pages` makes them: times as ISO-8601 (+09:00), NULL and NaN as
    None, integer columns as ints."""
    if name in _TIMES:
        return _isos(arr)
    bad = ~np.isfinite(arr) if arr.dtype.kind == "f" else None
    if integer and arr.dtype.kind == "f":
        out: list[Any] = [None if b else int(v) for v, b in zip(arr.tolist(), bad.tolist(),
                                                                strict=True)]
        return out
    out = arr.tolist()
    if bad is not None and bad.any():
        for i in np.flatnonzero(bad).tolist():
            out[i] = None
    return out


__all__ = ["MAX_MONTHS", "MonthSlice", "SliceRequest", "month_bounds", "month_of",
           "page_from_slices", "read_month", "slice_columns", "slice_request"]
