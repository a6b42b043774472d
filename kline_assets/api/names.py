"""The catalogue names the HTTP service puts beside ids (iPhones, shops, cohorts), read from
PostgreSQL and kept for a while: only the service shows names, so only it holds the cache."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import psycopg
from psycopg import sql as pgsql

from kline_assets.api.inline import may_block
from kline_assets.lib.errors import StoreUnavailable
from kline_assets.prices.read import COHORT_TABLE, IPHONE_TABLE, SHOP_TABLE
from kline_assets.resources.postgres import PostgresResource, table_ident


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
        names = self._names
        if names is not None and time.monotonic() - self._at <= self.ttl_s:
            return names
        may_block()
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
