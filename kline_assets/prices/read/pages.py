"""Pages of the price tables for people: features (wide and long) and aligned prices of a
run, and a run's scopes.

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
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from kline_assets.lib.errors import NotFoundError
from kline_assets.prices.partitions import LIVE
from kline_assets.resources.clickhouse import ClickHouseResource

from .args import (
    DEFAULT_LIMIT,
    FEATURE_VALUE_NAMES,
    FEATURES_COLUMNS,
    PRICE_ALIGNED_COLUMNS,
    columns_arg,
    ids_arg,
    is_kind,
    iso,
    order_by,
    page_args,
    range_filter,
    run_id_arg,
    scope_filter,
)
from .runs import runs_with_data

_TIME_COLUMNS = {"bucket", "record_time", "inserted_at", "first_bucket", "last_bucket"}
_FEATURES_KEY = ("scope", "bucket")  # within a run: tie-breaker, so pages never overlap
_ALIGNED_KEY = ("iphone_id", "shop_id", "bucket")


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
        runs = ", ".join(r["run_id"] for r in runs_with_data(client, ch)) or "none"
        raise NotFoundError(f"run {run_id!r} has no data in {table} (runs with data: {runs})")
    if table != "features_wide" or scope is None or scope == "" or is_kind(scope):
        return
    for s in [scope] if isinstance(scope, str) else scope:
        if not _exists(client, name, "run_id = {run:String} AND scope = {scope:String}",
                       {"run": run_id, "scope": s}):
            raise NotFoundError(f"scope {s!r} has no data in run {run_id!r}")


# --- runs and scopes ---------------------------------------------------------------------

def list_scopes(clickhouse: ClickHouseResource, run_id: str = LIVE) -> list[dict[str, Any]]:
    """The scopes of a run with their first and last bucket, `iphone:*` first."""
    run_id = run_id_arg(run_id)
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
    params: dict[str, Any] = {"run": run_id_arg(run_id)}
    where = "run_id = {run:String}" + scope_filter(scope, params)
    return where + range_filter(bucket_gte, bucket_lte, params), params


class Page:
    """One page of rows and how many rows all pages hold (the DRF `count`), held as its rows
    (a ClickHouse answer) or as its columns (a month slice's, `memory`): an endpoint that
    reshapes every row reads the columns, so a page from memory never makes a dict per row
    only to take it apart again. Either form is made from the other on demand, once."""

    __slots__ = ("_columns", "_rows", "count")

    def __init__(self, count: int, rows: list[dict[str, Any]] | None = None, *,
                 columns: dict[str, list[Any]] | None = None) -> None:
        if (rows is None) == (columns is None):
            raise TypeError("a Page is made of its rows or of its columns")
        self.count, self._rows, self._columns = count, rows, columns

    @property
    def rows(self) -> list[dict[str, Any]]:
        if self._rows is None:
            assert self._columns is not None
            names = list(self._columns)
            self._rows = [dict(zip(names, r, strict=True))
                          for r in zip(*self._columns.values(), strict=True)]
        return self._rows

    def column(self, name: str) -> list[Any]:
        """The values of one column, in row order."""
        if self._columns is not None:
            return self._columns[name]
        return [r[name] for r in self._rows]  # type: ignore[union-attr]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Page) and (self.count, self.rows) == (other.count, other.rows)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Page(count={self.count}, rows={self.rows!r})"


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
    cols = columns_arg(columns, FEATURES_COLUMNS)
    order_sql = order_by(order, (*FEATURES_COLUMNS, "scope_number"), _FEATURES_KEY, "-bucket")
    limit, offset = page_args(limit, offset)
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
    chosen = columns_arg(names, FEATURE_VALUE_NAMES)
    pairs = ", ".join(f"('{n}', CAST({n}, 'Nullable(Float64)'))" for n in chosen)
    return (f"SELECT run_id, bucket, scope, kv.1 AS name, kv.2 AS value FROM ("
            f"SELECT run_id, bucket, scope, arrayJoin([{pairs}]) AS kv "
            f"{_final(clickhouse.table('features_wide'), where)}) "
            "WHERE isFinite(value)")


def _long_args(clickhouse, run_id, scope, names, bucket_gte, bucket_lte, order, limit,
               offset) -> dict[str, Any]:
    order_sql = order_by(order, ("bucket", "scope", "name", "value"),
                       (*_FEATURES_KEY, "name"), "-bucket")
    limit, offset = page_args(limit, offset)
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
    params: dict[str, Any] = {"run": run_id_arg(run_id)}
    where = "run_id = {run:String}"
    for name, ids in (("iphone_id", ids_arg(iphone_ids, "iphone")),
                      ("shop_id", ids_arg(shop_ids, "shop"))):
        if ids is not None:
            params[name] = ids
            where += f" AND {name} IN {{{name}:Array(UInt32)}}"
    return where + range_filter(bucket_gte, bucket_lte, params), params


def _aligned_args(clickhouse, run_id, bucket_gte, bucket_lte, shop_ids, iphone_ids, columns,
                  order, limit, offset) -> dict[str, Any]:
    cols = columns_arg(columns, PRICE_ALIGNED_COLUMNS)
    order_sql = order_by(order, PRICE_ALIGNED_COLUMNS, _ALIGNED_KEY, "-bucket")
    limit, offset = page_args(limit, offset)
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
