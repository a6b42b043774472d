"""Where the tests make their databases: the PostgreSQL server's admin DSN (each test worker
creates and drops databases of its own there)."""

from __future__ import annotations

import os

ADMIN_DSN = os.environ.get("KLINE_TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
