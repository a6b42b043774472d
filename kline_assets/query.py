"""The read API: what a web backend calls to read runs, aligned prices and features, and
stock bars (`bars`, the merged query of `kline_assets.stocks.merged`).

Every value a caller passes is bound as a ClickHouse server-side parameter (`{name:Type}`),
never formatted into SQL; column and order names are checked against the table's columns;
`limit` is capped at MAX_LIMIT. Reads use FINAL, so a row replaced by a re-materialization is
never seen twice, and filter on the tables' ORDER BY key — (run_id, scope, bucket) for
features_wide, (run_id, iphone_id, shop_id, bucket) for price_aligned — so a page of one scope
reads only that scope's granules, however large the table. A row with the same key always
lies in the same partition (the partition key is made of key columns), so FINAL never merges
across partitions.

Rows come back JSON-ready: times as ISO-8601 strings with the offset (+09:00, Asia/Tokyo),
floats as numbers, NULL and NaN as None. An unreachable store raises `StoreUnavailable`
(which store, which address, no password), a bad argument `InvalidQueryError`, a run or scope
without data `NotFoundError`.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from clickhouse_connect.driver.client import Client
from psycopg import sql as pgsql

from kline_assets.errors import (
    InvalidQueryError,
    InvalidRunIdError,
    NotFoundError,
    StoreUnavailable,
)
from kline_assets.kernels.align import BUCKET_SECONDS
from kline_assets.kernels.feature_names import FEATURE_COLUMNS
from kline_assets.prices.partitions import LIVE, validate_run_id
from kline_assets.prices.runs import PRICE_TABLES, all_partitions
from kline_assets.prices.source import COHORT_TABLE, IPHONE_TABLE, SHOP_TABLE
from kline_assets.resources.clickhouse import ClickHouseResource
from kline_assets.resources.postgres import PostgresResource, table_ident
from kline_assets.settings import PRICE_TZ
from kline_assets.stocks.merged import bars  # stock bars: vendor → archive → live (Redis)

__all__ = [
    "DEFAULT_LIMIT",
    "FEATURES_COLUMNS",
    "FEATURE_VALUE_NAMES",
    "MAX_LIMIT",
    "PRICE_ALIGNED_COLUMNS",
    "CatalogNames",
    "Page",
    "bars",
    "count_feature_values",
    "count_features",
    "count_price_aligned",
    "feature_values_page",
    "features_page",
    "is_final",
    "list_runs",
    "list_scopes",
    "price_aligned_page",
    "query_feature_values",
    "query_features",
    "query_price_aligned",
]

DEFAULT_LIMIT = 100
MAX_LIMIT = 5000
FINAL_AFTER = timedelta(minutes=5)  # a bucket is final once it ended this long ago
_TZ = ZoneInfo(PRICE_TZ)

STAT_COLUMNS = ("mean", "median", "std", "shop_count", "dispersion", "n_models")
FEATURES_COLUMNS: tuple[str, ...] = (
    "run_id", "bucket", "scope", *STAT_COLUMNS, *FEATURE_COLUMNS, "inserted_at")
FEATURE_VALUE_NAMES: tuple[str, ...] = (*STAT_COLUMNS, *FEATURE_COLUMNS)
"""What the long format (`query_feature_values`) can unpivot: every numeric column."""
PRICE_ALIGNED_COLUMNS: tuple[str, ...] = (
    "run_id", "bucket", "shop_id", "iphone_id", "price_new", "price_a", "price_b",
    "alignment_diff_sec", "record_time", "inserted_at")
_TIME_COLUMNS = {"bucket", "record_time", "inserted_at", "first_bucket", "last_bucket"}
_FEATURES_KEY = ("scope", "bucket")  # within a run: tie-breaker, so pages never overlap
_ALIGNED_KEY = ("iphone_id", "shop_id", "bucket")

_SCOPE = re.compile(r"(iphone:[0-9]{1,10}|cohort:[A-Za-z0-9][A-Za-z0-9_.-]{0,63})")
_SCOPE_KIND = re.compile(r"(iphone|cohort):\*")


# --- arguments ---------------------------------------------------------------------------

def _run_id(run_id: str) -> str:
    try:
        return validate_run_id(run_id)
    except InvalidRunIdError as exc:
        raise InvalidQueryError(str(exc)) from exc


def _page(limit: int, offset: int) -> tuple[int, int]:
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidQueryError(f"limit must be an integer in [1, {MAX_LIMIT}], got {limit!r}")
    if not isinstance(offset, int) or offset < 0:
        raise InvalidQueryError(f"offset must be an integer ≥ 0, got {offset!r}")
    return limit, offset


def parse_time(value: datetime | str | None, what: str) -> int | None:
    """A bucket bound as epoch seconds: an aware datetime or ISO-8601 text; a time without an
    offset is Asia/Tokyo wall clock (the buckets' own zone); a date alone is its midnight."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise InvalidQueryError(
                f"{what}: {value!r} is not an ISO-8601 date or time "
                "(e.g. 2025-10-01, 2025-10-01T09:30 or 2025-10-01T09:30:00+09:00)") from exc
    if not isinstance(value, datetime):
        raise InvalidQueryError(f"{what}: expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=_TZ)
    return int(value.timestamp())


# Orderings that are expressions rather than columns: the number of an iPhone scope, so that
# iphone:9 sorts before iphone:10 (cohort scopes sort as 0, then by the scope tie-breaker).
_ORDER_EXPRESSIONS = {"scope_number": "toUInt32OrZero(substring(scope, 8))"}


def _order(order: str | Sequence[str] | None, allowed: Iterable[str], key: Sequence[str],
           default: str) -> str:
    """`-bucket,scope` → `bucket DESC, scope ASC, <key>`; names outside `allowed` are refused."""
    allowed = tuple(allowed)
    if order is None or order == "" or order == []:
        order = default
    items = order.split(",") if isinstance(order, str) else list(order)
    parts, seen = [], set()
    for item in items:
        item = item.strip()
        name = item.removeprefix("-")
        if name not in allowed:
            raise InvalidQueryError(
                f"cannot order by {item!r}; choose from {', '.join(allowed)} "
                "(prefix '-' for descending)")
        if name in seen:
            continue
        seen.add(name)
        expr = _ORDER_EXPRESSIONS.get(name, name)
        parts.append(f"{expr} {'DESC' if item.startswith('-') else 'ASC'}")
    parts += [f"{k} ASC" for k in key if k not in seen]
    return ", ".join(parts)


def _columns(columns: Sequence[str] | None, allowed: Sequence[str]) -> list[str]:
    if not columns:
        return list(allowed)
    unknown = [c for c in columns if c not in allowed]
    if unknown:
        raise InvalidQueryError(
            f"unknown column(s) {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(allowed)}")
    return list(dict.fromkeys(columns))


def _scope_filter(scope: str | Sequence[str] | None, params: dict[str, Any]) -> str:
    """An exact scope, several, or every scope of a kind (`iphone:*`, `cohort:*`)."""
    if scope is None or scope == "" or scope == []:
        return ""
    if isinstance(scope, str) and _SCOPE_KIND.fullmatch(scope):
        params["scope_prefix"] = scope[:-1]
        return " AND startsWith(scope, {scope_prefix:String})"
    scopes = [scope] if isinstance(scope, str) else list(scope)
    bad = [s for s in scopes if not isinstance(s, str) or not _SCOPE.fullmatch(s)]
    if bad:
        raise InvalidQueryError(
            f"invalid scope {bad[0]!r}: expected iphone:<id>, cohort:<slug>, iphone:* or cohort:*")
    params["scopes"] = scopes
    return " AND scope IN {scopes:Array(String)}"


def _range_filter(bucket_gte, bucket_lte, params: dict[str, Any]) -> str:
    where = ""
    gte, lte = parse_time(bucket_gte, "bucket__gte"), parse_time(bucket_lte, "bucket__lte")
    if gte is not None:
        params["gte"] = gte
        where += " AND bucket >= toDateTime({gte:Int64})"
    if lte is not None:
        params["lte"] = lte
        where += " AND bucket <= toDateTime({lte:Int64})"
    return where


def _ids(values: Iterable[int] | None, what: str) -> list[int] | None:
    if values is None:
        return None
    try:
        ids = [int(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise InvalidQueryError(f"{what}: expected integer ids, got {values!r}") from exc
    if any(not 0 <= i < 2**32 for i in ids):
        raise InvalidQueryError(f"{what}: ids must be in [0, 2^32)")
    return ids


# --- rows --------------------------------------------------------------------------------

def iso(epoch: int | None) -> str | None:
    """Epoch seconds → ISO-8601 in Asia/Tokyo with its offset."""
    return None if epoch is None else datetime.fromtimestamp(epoch, _TZ).isoformat()


def is_final(bucket: str | datetime, now: datetime | None = None) -> bool:
    """Whether a bucket's window closed more than FINAL_AFTER ago (later data can no longer
    land in it)."""
    start = datetime.fromisoformat(bucket) if isinstance(bucket, str) else bucket
    now = now or datetime.now(_TZ)
    return start + timedelta(seconds=BUCKET_SECONDS) + FINAL_AFTER < now


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _select(columns: Sequence[str]) -> str:
    """Times leave ClickHouse as epoch seconds (no session time zone can shift them), under
    aliases that do not shadow the columns the WHERE clause reads."""
    return ", ".join(f"toUnixTimestamp({c}) AS __t_{c}" if c in _TIME_COLUMNS else c
                     for c in columns)


def _rows(client: Client, sql: str, params: dict[str, Any], columns: Sequence[str]
          ) -> list[dict[str, Any]]:
    result = client.query(sql, parameters=params)
    times = [c in _TIME_COLUMNS for c in columns]
    return [
        {c: iso(v) if t else _json_value(v) for c, t, v in zip(columns, times, row, strict=True)}
        for row in result.result_rows
    ]


def _final(table: str, where: str) -> str:
    """`FROM table FINAL PREWHERE …`: the filter runs before the versions of a row are merged,
    which reads only the granules it selects (p95 of a page on 10M rows: ~60 → ~10 ms). That is
    correct only because every filter here is on sorting-key columns — all versions of a row
    share them, so a row is kept or dropped whole; a filter on another column would have to
    stay in WHERE, after FINAL."""
    return f"FROM {table} FINAL PREWHERE {where}"


def _count(client: Client, sql: str, params: dict[str, Any]) -> int:
    return int(client.query(sql, parameters=params).result_rows[0][0])


def _exists(client: Client, table: str, where: str, params: dict[str, Any]) -> bool:
    """Any row at all (no FINAL needed to know that), by the key's prefix."""
    return bool(client.query(f"SELECT 1 FROM {table} WHERE {where} LIMIT 1",
                             parameters=params).result_rows)


def _not_found(client: Client, ch: ClickHouseResource, table: str, run_id: str,
               scope: str | Sequence[str] | None) -> None:
    """After an empty answer: raise NotFoundError when the run, or an exact scope, has no
    rows at all — an empty page of a known run and scope is just an empty page."""
    name = ch.table(table)
    if not _exists(client, name, "run_id = {run:String}", {"run": run_id}):
        runs = ", ".join(r["run_id"] for r in _runs(client, ch)) or "none"
        raise NotFoundError(f"run {run_id!r} has no data in {table} (runs with data: {runs})")
    if table != "features_wide" or scope is None or (isinstance(scope, str) and (
            scope == "" or _SCOPE_KIND.fullmatch(scope))):
        return
    for s in [scope] if isinstance(scope, str) else scope:
        if not _exists(client, name, "run_id = {run:String} AND scope = {scope:String}",
                       {"run": run_id, "scope": s}):
            raise NotFoundError(f"scope {s!r} has no data in run {run_id!r}")


# --- runs and scopes ---------------------------------------------------------------------

def _runs(client: Client, ch: ClickHouseResource) -> list[dict[str, Any]]:
    runs: dict[str, dict[str, Any]] = {}
    for part in all_partitions(client, ch.db):
        run = runs.setdefault(part.run_id, {"run_id": part.run_id, "months": set(),
                                            "rows": dict.fromkeys(PRICE_TABLES, 0)})
        run["months"].add(f"{int(part.values[1]) // 100:04d}-{int(part.values[1]) % 100:02d}")
        run["rows"][part.table] += part.rows
    return [{**r, "months": sorted(r["months"])} for _, r in sorted(runs.items())]


def list_runs(clickhouse: ClickHouseResource) -> list[dict[str, Any]]:
    """Every run with data: `{run_id, months: ['2025-10', …], rows: {table: n}}` (row counts
    of stored parts, before FINAL; read from metadata, never from the rows)."""
    with clickhouse.client() as client:
        return _runs(client, clickhouse)


def list_scopes(clickhouse: ClickHouseResource, run_id: str = LIVE) -> list[dict[str, Any]]:
    """The scopes of a run with their first and last bucket, `iphone:*` first."""
    run_id = _run_id(run_id)
    with clickhouse.client() as client:
        rows = _rows(client,
                     "SELECT scope, toUnixTimestamp(min(bucket)) AS __t_first_bucket, "
                     "toUnixTimestamp(max(bucket)) AS __t_last_bucket "
                     f"FROM {clickhouse.table('features_wide')} WHERE run_id = {{run:String}} "
                     "GROUP BY scope ORDER BY splitByChar(':', scope)[1] DESC, "
                     "length(scope), scope",
                     {"run": run_id}, ["scope", "first_bucket", "last_bucket"])
        if not rows:
            _not_found(client, clickhouse, "features_wide", run_id, None)
    return rows


# --- features_wide -----------------------------------------------------------------------

def _features_where(clickhouse: ClickHouseResource, run_id: str, scope, bucket_gte,
                    bucket_lte) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {"run": _run_id(run_id)}
    where = "run_id = {run:String}" + _scope_filter(scope, params)
    return where + _range_filter(bucket_gte, bucket_lte, params), params


@dataclass(frozen=True)
class Page:
    """One page of rows and how many rows all pages hold (the DRF `count`)."""

    count: int
    rows: list[dict[str, Any]]


def _fetch(clickhouse: ClickHouseResource, table: str, source: str, select: str,
           cols: Sequence[str], params: dict[str, Any], order_sql: str, limit: int,
           offset: int, count_sql: str, scope=None, with_count: bool = False) -> Page:
    """Run a page query; with `with_count`, the total comes along in the same query
    (`count() OVER ()`, computed before LIMIT), which saves a round trip per HTTP request.
    An empty first page raises NotFoundError if the run (or an exact scope) has no data."""
    total = ", count() OVER () AS __total" if with_count else ""
    sql = (f"SELECT {select}{total} {source} ORDER BY {order_sql} "
           "LIMIT {limit:UInt32} OFFSET {offset:UInt64}")
    with clickhouse.client() as client:
        rows = _rows(client, sql, {**params, "limit": limit, "offset": offset},
                     [*cols, "__total"] if with_count else cols)
        count = -1
        if rows and with_count:
            count = rows[0]["__total"]
            for r in rows:
                del r["__total"]
        elif not rows and offset == 0:
            _not_found(client, clickhouse, table, params["run"], scope)
            count = 0
        elif with_count:  # past the last page: the total needs its own query
            count = _count(client, count_sql, params)
    return Page(count, rows)


def _features_args(clickhouse, run_id, scope, bucket_gte, bucket_lte, columns, order, limit,
                   offset) -> dict[str, Any]:
    cols = _columns(columns, FEATURES_COLUMNS)
    order_sql = _order(order, (*FEATURES_COLUMNS, "scope_number"), _FEATURES_KEY, "-bucket")
    limit, offset = _page(limit, offset)
    where, params = _features_where(clickhouse, run_id, scope, bucket_gte, bucket_lte)
    table = clickhouse.table("features_wide")
    return dict(table="features_wide", source=_final(table, where),
                select=_select(cols), cols=cols, params=params, order_sql=order_sql,
                limit=limit, offset=offset, scope=scope,
                count_sql=f"SELECT count() {_final(table, where)}")


def query_features(
    clickhouse: ClickHouseResource, run_id: str = LIVE, *,
    scope: str | Sequence[str] | None = None, bucket_gte: datetime | str | None = None,
    bucket_lte: datetime | str | None = None, columns: Sequence[str] | None = None,
    order: str | Sequence[str] | None = "-bucket", limit: int = DEFAULT_LIMIT, offset: int = 0,
) -> list[dict[str, Any]]:
    """Wide rows of features_wide (one per scope × bucket) of a run; `scope` is exact
    (`iphone:12`, `cohort:pro-latest`), a list, or a kind (`iphone:*`, `cohort:*`).
    Raises NotFoundError when nothing matches because the run or an exact scope has no data."""
    return _fetch(clickhouse, **_features_args(clickhouse, run_id, scope, bucket_gte,
                                               bucket_lte, columns, order, limit, offset)).rows


def features_page(
    clickhouse: ClickHouseResource, run_id: str = LIVE, *,
    scope: str | Sequence[str] | None = None, bucket_gte: datetime | str | None = None,
    bucket_lte: datetime | str | None = None, columns: Sequence[str] | None = None,
    order: str | Sequence[str] | None = "-bucket", limit: int = DEFAULT_LIMIT, offset: int = 0,
) -> Page:
    """`query_features` and `count_features` in one query."""
    return _fetch(clickhouse, with_count=True, **_features_args(
        clickhouse, run_id, scope, bucket_gte, bucket_lte, columns, order, limit, offset))


def count_features(
    clickhouse: ClickHouseResource, run_id: str = LIVE, *,
    scope: str | Sequence[str] | None = None, bucket_gte: datetime | str | None = None,
    bucket_lte: datetime | str | None = None,
) -> int:
    """How many rows `query_features` pages through with the same filters."""
    where, params = _features_where(clickhouse, run_id, scope, bucket_gte, bucket_lte)
    with clickhouse.client() as client:
        return _count(client, f"SELECT count() {_final(clickhouse.table('features_wide'), where)}",
                      params)


def _long_sql(clickhouse: ClickHouseResource, names: Sequence[str] | None, where: str) -> str:
    """features_wide unpivoted by `arrayJoin` over (name, value) pairs of whitelisted
    columns, rows without a finite value left out."""
    chosen = _columns(names, FEATURE_VALUE_NAMES)
    pairs = ", ".join(f"('{n}', CAST({n}, 'Nullable(Float64)'))" for n in chosen)
    return (f"SELECT run_id, bucket, scope, kv.1 AS name, kv.2 AS value FROM ("
            f"SELECT run_id, bucket, scope, arrayJoin([{pairs}]) AS kv "
            f"{_final(clickhouse.table('features_wide'), where)}) "
            "WHERE isFinite(value)")


def _long_args(clickhouse, run_id, scope, names, bucket_gte, bucket_lte, order, limit,
               offset) -> dict[str, Any]:
    order_sql = _order(order, ("bucket", "scope", "name", "value"),
                       (*_FEATURES_KEY, "name"), "-bucket")
    limit, offset = _page(limit, offset)
    where, params = _features_where(clickhouse, run_id, scope, bucket_gte, bucket_lte)
    long = _long_sql(clickhouse, names, where)
    return dict(table="features_wide", source=f"FROM ({long})",
                select="toUnixTimestamp(bucket) AS __t_bucket, scope, name, value, run_id",
                cols=["bucket", "scope", "name", "value", "version"], params=params,
                order_sql=order_sql, limit=limit, offset=offset, scope=scope,
                count_sql=f"SELECT count() FROM ({long})")


def query_feature_values(
    clickhouse: ClickHouseResource, run_id: str = LIVE, *,
    scope: str | Sequence[str] | None = None, names: Sequence[str] | None = None,
    bucket_gte: datetime | str | None = None, bucket_lte: datetime | str | None = None,
    order: str | Sequence[str] | None = "-bucket", limit: int = DEFAULT_LIMIT, offset: int = 0,
) -> list[dict[str, Any]]:
    """The long format `{bucket, scope, name, value, version}`: features_wide unpivoted in
    ClickHouse (arrayJoin over the chosen columns), one row per scope × bucket × name with a
    value (NULL and NaN are left out). `names` defaults to every numeric column."""
    return _fetch(clickhouse, **_long_args(clickhouse, run_id, scope, names, bucket_gte,
                                           bucket_lte, order, limit, offset)).rows


def feature_values_page(
    clickhouse: ClickHouseResource, run_id: str = LIVE, *,
    scope: str | Sequence[str] | None = None, names: Sequence[str] | None = None,
    bucket_gte: datetime | str | None = None, bucket_lte: datetime | str | None = None,
    order: str | Sequence[str] | None = "-bucket", limit: int = DEFAULT_LIMIT, offset: int = 0,
) -> Page:
    """`query_feature_values` and `count_feature_values` in one query."""
    return _fetch(clickhouse, with_count=True, **_long_args(
        clickhouse, run_id, scope, names, bucket_gte, bucket_lte, order, limit, offset))


def count_feature_values(
    clickhouse: ClickHouseResource, run_id: str = LIVE, *,
    scope: str | Sequence[str] | None = None, names: Sequence[str] | None = None,
    bucket_gte: datetime | str | None = None, bucket_lte: datetime | str | None = None,
) -> int:
    where, params = _features_where(clickhouse, run_id, scope, bucket_gte, bucket_lte)
    with clickhouse.client() as client:
        return _count(client, f"SELECT count() FROM ({_long_sql(clickhouse, names, where)})",
                      params)


# --- price_aligned -----------------------------------------------------------------------

def _aligned_where(run_id: str, bucket_gte, bucket_lte, shop_ids, iphone_ids
                   ) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {"run": _run_id(run_id)}
    where = "run_id = {run:String}"
    for name, ids in (("iphone_id", _ids(iphone_ids, "iphone")),
                      ("shop_id", _ids(shop_ids, "shop"))):
        if ids is not None:
            params[name] = ids
            where += f" AND {name} IN {{{name}:Array(UInt32)}}"
    return where + _range_filter(bucket_gte, bucket_lte, params), params


def _aligned_args(clickhouse, run_id, bucket_gte, bucket_lte, shop_ids, iphone_ids, columns,
                  order, limit, offset) -> dict[str, Any]:
    cols = _columns(columns, PRICE_ALIGNED_COLUMNS)
    order_sql = _order(order, PRICE_ALIGNED_COLUMNS, _ALIGNED_KEY, "-bucket")
    limit, offset = _page(limit, offset)
    where, params = _aligned_where(run_id, bucket_gte, bucket_lte, shop_ids, iphone_ids)
    table = clickhouse.table("price_aligned")
    return dict(table="price_aligned", source=_final(table, where),
                select=_select(cols), cols=cols, params=params, order_sql=order_sql,
                limit=limit, offset=offset,
                count_sql=f"SELECT count() {_final(table, where)}")


def query_price_aligned(
    clickhouse: ClickHouseResource, run_id: str = LIVE, *,
    bucket_gte: datetime | str | None = None, bucket_lte: datetime | str | None = None,
    shop_ids: Iterable[int] | None = None, iphone_ids: Iterable[int] | None = None,
    columns: Sequence[str] | None = None, order: str | Sequence[str] | None = "-bucket",
    limit: int = DEFAULT_LIMIT, offset: int = 0,
) -> list[dict[str, Any]]:
    """Rows of price_aligned of a run, filtered by bucket range, shops and iPhones."""
    return _fetch(clickhouse, **_aligned_args(clickhouse, run_id, bucket_gte, bucket_lte,
                                              shop_ids, iphone_ids, columns, order, limit,
                                              offset)).rows


def price_aligned_page(
    clickhouse: ClickHouseResource, run_id: str = LIVE, *,
    bucket_gte: datetime | str | None = None, bucket_lte: datetime | str | None = None,
    shop_ids: Iterable[int] | None = None, iphone_ids: Iterable[int] | None = None,
    columns: Sequence[str] | None = None, order: str | Sequence[str] | None = "-bucket",
    limit: int = DEFAULT_LIMIT, offset: int = 0,
) -> Page:
    """`query_price_aligned` and `count_price_aligned` in one query."""
    return _fetch(clickhouse, with_count=True, **_aligned_args(
        clickhouse, run_id, bucket_gte, bucket_lte, shop_ids, iphone_ids, columns, order,
        limit, offset))


def count_price_aligned(
    clickhouse: ClickHouseResource, run_id: str = LIVE, *,
    bucket_gte: datetime | str | None = None, bucket_lte: datetime | str | None = None,
    shop_ids: Iterable[int] | None = None, iphone_ids: Iterable[int] | None = None,
) -> int:
    where, params = _aligned_where(run_id, bucket_gte, bucket_lte, shop_ids, iphone_ids)
    with clickhouse.client() as client:
        return _count(client, f"SELECT count() {_final(clickhouse.table('price_aligned'), where)}",
                      params)


# --- names from PostgreSQL ---------------------------------------------------------------

@dataclass(frozen=True)
class Names:
    iphone: dict[int, str]
    shop: dict[int, str]
    cohort: dict[str, tuple[int, str]]  # slug → (id, name)


class CatalogNames:
    """iPhone, shop and cohort names from PostgreSQL, read in one round trip and kept for
    `ttl_s`: a page of rows costs no query per row, and a renamed shop shows within a minute."""

    def __init__(self, postgres: PostgresResource, ttl_s: float = 60.0) -> None:
        self.postgres, self.ttl_s = postgres, ttl_s
        self._lock = threading.Lock()
        self._names: Names | None = None
        self._at = 0.0

    def get(self) -> Names:
        with self._lock:
            if self._names is None or time.monotonic() - self._at > self.ttl_s:
                self._names, self._at = self._load(), time.monotonic()
            return self._names

    def _load(self) -> Names:
        q = pgsql.SQL
        try:
            with self.postgres.connect() as conn:
                iphone = conn.execute(q("SELECT id, name FROM {}").format(
                    table_ident(IPHONE_TABLE))).fetchall()
                shop = conn.execute(q("SELECT id, name FROM {}").format(
                    table_ident(SHOP_TABLE))).fetchall()
                cohort = conn.execute(q("SELECT slug, id, name FROM {}").format(
                    table_ident(COHORT_TABLE))).fetchall()
        except psycopg.errors.UndefinedTable as exc:
            raise StoreUnavailable(
                f"PostgreSQL at {self.postgres.address} lacks the catalogue tables "
                f"({exc.diag.message_primary}); create them with `kline init`",
                store="PostgreSQL", address=self.postgres.address) from exc
        return Names(dict(iphone), dict(shop), {slug: (i, n) for slug, i, n in cohort})
