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
    `ttl_s`: a page of rows costs no query per row, and a renamed shop shows within a minute.

    `generation` counts the catalogues that differed from the one before, so a body encoded
    with names in it is kept only while the names read the same."""

    def __init__(self, postgres: PostgresResource, ttl_s: float = 60.0) -> None:
        self.postgres, self.ttl_s = postgres, ttl_s
        self._lock = threading.Lock()
        self._names: Names | None = None
        self._at = 0.0
        self.generation = 0

    def known_generation(self) -> int | None:
        """`generation` while the names are fresh (None: the next `get()` reads them)."""
        if self._names is None or time.monotonic() - self._at > self.ttl_s:
            return None
        return self.generation

    def get(self) -> Names:
        names = self._names
        if names is not None and time.monotonic() - self._at <= self.ttl_s:
            return names
        may_block()
        with self._lock:
            if self._names is None or time.monotonic() - self._at > self.ttl_s:
                names = self._load()
                if names != self._names:
                    self._names, self.generation = names, self.generation + 1
                self._at = time.monotonic()
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
