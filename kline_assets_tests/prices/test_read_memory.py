"""Pages from month slices in memory equal the pages ClickHouse gives, value for value:
counts, rows, orderings with their tie-breakers, NULL/NaN as None, ISO times."""

from __future__ import annotations

import itertools

import pytest

from kline_assets.lib.errors import InvalidQueryError
from kline_assets.prices import read
from kline_assets.prices.read.memory import page_from_slices, read_month, slice_request

RANGES = [("2025-10-01", "2025-10-31T23:45"), ("2025-10-03T09:00", "2025-10-05"),
          ("2025-09-20", "2025-11-01T00:00"), ("2025-10-10T10:00", "2025-10-10T10:00")]
SCOPES = ["iphone:1", ["iphone:2", "iphone:1", "iphone:2"], "iphone:*", "cohort:*", None]
ORDERS = ["-bucket", "bucket", ["scope", "-bucket"], ["-scope_number", "bucket"],
          ["-inserted_at"], ["shop_count", "-scope"]]
COLUMNS = [None, ["bucket", "scope", "mean", "median", "std", "shop_count", "dispersion",
                  "inserted_at"], ["bucket", "scope", "n_models", "ema_120"]]


def _from_memory(ch, **kwargs):
    req = slice_request(**kwargs)
    assert req is not None
    slices = [read_month(ch, req.run_id, m, req.stored) for m in req.months]
    return page_from_slices(req, slices)


@pytest.mark.parametrize("bounds", RANGES)
def test_memory_pages_equal_clickhouse_pages(read_store, bounds):
    ch = read_store.clickhouse
    with ch.held():  # one engine open for the ~270 pages, as the service holds it
        _compare_all(ch, bounds)


def _compare_all(ch, bounds) -> None:
    for scope, order, columns, (limit, offset) in itertools.product(
            SCOPES, ORDERS, COLUMNS, [(100, 0), (7, 5), (50, 4000)]):
        kwargs = dict(scope=scope, bucket_gte=bounds[0], bucket_lte=bounds[1], order=order,
                      columns=columns, limit=limit, offset=offset)
        expected = read.features_page(ch, **kwargs)
        got = _from_memory(ch, **kwargs)
        if got is None:  # nothing matches at all
            assert expected.count == 0 and not expected.rows, kwargs
        else:
            assert got == expected, kwargs  # its rows, made from its columns
            for name in expected.rows[0] if expected.rows else ():
                assert got.column(name) == expected.column(name), (name, kwargs)


def test_what_memory_cannot_answer_exactly_is_left_to_clickhouse(read_store):
    assert slice_request(scope="iphone:1") is None  # no bounds: the whole run
    assert slice_request(bucket_gte="2025-01-01", bucket_lte="2025-10-01") is None  # 10 months
    assert slice_request(bucket_gte="2025-10-01", bucket_lte="2025-10-02",
                         order="-mean") is None  # NULL/NaN placement is ClickHouse's
    with read_store.clickhouse.held():
        assert _from_memory(read_store.clickhouse, scope="iphone:999", bucket_gte="2025-10-01",
                            bucket_lte="2025-10-02") is None  # NotFound comes from ClickHouse
    with pytest.raises(InvalidQueryError):
        slice_request(scope="iphone;drop", bucket_gte="2025-10-01", bucket_lte="2025-10-02")
