"""ClickHouse through clickhouse-connect: embedded chdb by default, a server by DSN.

The embedded engine lets one process hold a data path at a time (and one path per process),
so in embedded mode every operation takes a file lock next to the data and opens the engine
for its duration. Nested `client()` calls in one process reuse the open engine. That makes
Dagster's multiprocess executor, the webserver and the daemon take turns instead of failing.
How the engine is opened, held and yielded is `engine`'s: the resource only says which need
an operation has.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from dagster import ConfigurableResource
from pydantic import Field

from kline_assets.lib.errors import ServiceUnavailableError
from kline_assets.lib.settings import DEFAULT_CLICKHOUSE_DATABASE, DEFAULT_CLICKHOUSE_DSN, SQL_DIR
from kline_assets.resources.clickhouse import cluster, engine
from kline_assets.resources.clickhouse.engine import embedded_path, is_embedded
from kline_assets.resources.clickhouse.features import require_server_features
from kline_assets.resources.dsn import check_url, host_port, redact

INIT_SQL = SQL_DIR / "clickhouse" / "init.sql"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# The table named by a statement of init.sql, to qualify with the configured database.
_CREATE = re.compile(
    r"^(\s*(?:CREATE\s+(?:TABLE|VIEW)\s+IF\s+NOT\s+EXISTS|ALTER\s+TABLE)\s+)(\w+)", re.I | re.M)


def split_statements(text: str) -> list[str]:
    """Split a DDL file on ';' at line ends, dropping comments-only chunks."""
    out = []
    for chunk in re.split(r";\s*(?:\n|$)", text):
        body = "\n".join(
            line for line in chunk.splitlines() if not line.strip().startswith("--")
        ).strip()
        if body:
            out.append(body)
    return out


class ClickHouseResource(ConfigurableResource):
    """The analytical store, embedded (chdb) or a server; tables come from init.sql."""

    dsn: str = Field(
        default=DEFAULT_CLICKHOUSE_DSN,
        description="chdb:///path for the embedded engine, http(s)://user:pass@host:8123/db",
    )
    database: str = Field(
        default=DEFAULT_CLICKHOUSE_DATABASE,
        description="database for the tables; a server DSN's path overrides it",
    )
    lock_timeout_s: float = engine.WRITE_WAIT_S

    @property
    def db(self) -> str:
        name = self.database
        if not is_embedded(self.dsn):
            path = urlparse(self.dsn).path.strip("/")
            name = path or name
        if not _IDENT.fullmatch(name):
            raise ValueError(f"invalid ClickHouse database name {name!r}")
        return name

    @property
    def address(self) -> str:
        if is_embedded(self.dsn):
            return f"embedded chdb at {embedded_path(self.dsn)}"
        return host_port(self.dsn, 8123)

    @contextmanager
    def client(self) -> Iterator[Client]:
        if is_embedded(self.dsn):
            with engine.operation(self.dsn, self.lock_timeout_s, self.address) as client:
                yield client
            return
        check_url(self.dsn, store="ClickHouse", variable="KLINE_CLICKHOUSE_DSN",
                  schemes=("http", "https"))
        try:
            client = clickhouse_connect.get_client(dsn=self.dsn, database="default")
        except Exception as exc:  # the driver raises several types for one failure
            raise ServiceUnavailableError(
                f"ClickHouse unreachable at {self.address} (KLINE_CLICKHOUSE_DSN): "
                f"{redact(str(exc))}", store="ClickHouse", address=self.address,
            ) from exc
        try:
            yield client
        finally:
            client.close()

    @contextmanager
    def held(self) -> Iterator[None]:
        """Keep the embedded engine open until the block ends (`engine.hold`): what a
        long-lived reader (`engine.EngineKeeper`) and a run's write (`writing`) build on.
        Without effect for a server DSN."""
        if not is_embedded(self.dsn):
            yield
            return
        with engine.hold(self.dsn, self.lock_timeout_s, self.address):
            yield

    @contextmanager
    def writing(self) -> Iterator[None]:
        """A run's write: every read and write inside shares one open of the engine (reopening
        costs ~40 ms each), which is released as soon as the write is done."""
        with self.held():
            yield

    def short_look(self) -> ClickHouseResource:
        """This store for a look that would rather skip than queue behind a run (a sensor
        tick): see `engine.short_look`."""
        return engine.short_look(self)

    def check_server(self, client: Client) -> str:
        """The engine's version, or ServerVersionError when it lacks a feature the SQL relies
        on (no round trip: the driver read the version when it connected)."""
        return require_server_features(client.server_version, self.address)

    def ensure_schema(self, client: Client | None = None) -> None:
        """Create the database and every table of sql/clickhouse/init.sql (idempotent), on an
        engine recent enough for the project's SQL. With KLINE_CLICKHOUSE_CLUSTER set, on every
        replica of that cluster, with replicated engines (cluster.py)."""
        on = cluster.cluster_name()
        cluster.require_server(on, is_embedded(self.dsn), self.address)
        if client is None:
            with self.client() as own:
                self.ensure_schema(own)
            return
        self.check_server(client)
        client.command(cluster.schema_statement(f"CREATE DATABASE IF NOT EXISTS {self.db}", on))
        for stmt in split_statements(INIT_SQL.read_text()):
            client.command(cluster.schema_statement(
                _CREATE.sub(lambda m: f"{m.group(1)}{self.db}.{m.group(2)}", stmt), on))

    def tables(self, client: Client) -> list[str]:
        return [r[0] for r in client.query(
            "SELECT name FROM system.tables WHERE database = {db:String}",
            parameters={"db": self.db}).result_rows]

    def table(self, name: str) -> str:
        if not _IDENT.fullmatch(name):
            raise ValueError(f"invalid table name {name!r}")
        return f"{self.db}.{name}"

    def drop_database(self) -> None:
        with self.client() as client:
            # SYNC: see sql.drop_table; a dropped database's tables would otherwise stay queued.
            client.command(cluster.drop_database_sql(self.db, cluster.cluster_name()))
