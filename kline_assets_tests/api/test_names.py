"""The catalogue-name cache of the HTTP service against real PostgreSQL: one read per ttl, and
a store that is down named with its address."""

from __future__ import annotations

import pytest

from kline_assets.api.names import CatalogNames
from kline_assets.lib.errors import StoreUnavailable
from kline_assets.resources import PostgresResource
from kline_assets_tests.support.ports import closed_port


def test_catalogue_names_are_read_once_per_ttl(read_store):
    names = CatalogNames(read_store.postgres, ttl_s=3600)
    first = names.get()
    assert first.shop[1] == "Akihabara Mobile Kaitori"
    assert first.cohort["pro-latest"][1] == "iPhone 17 Pro (all storage)"
    with read_store.postgres.connect() as conn:
        conn.execute("UPDATE shop SET name = 'renamed' WHERE id = 1")
    try:
        assert names.get() is first  # cached: no query per row, nor per page
        assert CatalogNames(read_store.postgres, ttl_s=0).get().shop[1] == "renamed"
    finally:
        with read_store.postgres.connect() as conn:
            conn.execute("UPDATE shop SET name = 'Akihabara Mobile Kaitori' WHERE id = 1")


def test_a_closed_postgres_port_is_store_unavailable_with_its_address():
    port = closed_port()
    pg = PostgresResource(dsn=f"postgresql://postgres:pw@127.0.0.1:{port}/x", connect_timeout_s=2)
    with pytest.raises(StoreUnavailable) as info:
        CatalogNames(pg).get()
    assert info.value.store == "PostgreSQL" and info.value.address == f"127.0.0.1:{port}/x"
