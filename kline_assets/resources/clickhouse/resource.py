"""ClickHouse through clickhouse-connect: embedded chdb by default, a server by DSN.

The embedded engine lets one process hold a data path at a time (and one path per process),
so in embedded mode every operation takes a file lock next to the data and opens the engine
for its duration. Nested `client()` calls in one process reuse the open engine. That makes
Dagster's multiprocess executor, the webserver and the daemon take turns instead of failing.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from dagster import ConfigurableResource
from filelock import FileLock, Timeout
from pydantic import Field

from kline_assets.errors import ServiceUnavailableError
from kline_assets.processes import pid_alive
from kline_assets.resources.clickhouse import cluster
from kline_assets.resources.clickhouse.features import require_server_features
from kline_assets.resources.dsn import check_url, host_port, redact
from kline_assets.settings import DEFAULT_CLICKHOUSE_DATABASE, DEFAULT_CLICKHOUSE_DSN, SQL_DIR

log = logging.getLogger(__name__)

INIT_SQL = SQL_DIR / "clickhouse" / "init.sql"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# The table named by a statement of init.sql, to qualify with the configured database.
_CREATE = re.compile(
    r"^(\s*(?:CREATE\s+(?:TABLE|VIEW)\s+IF\s+NOT\s+EXISTS|ALTER\s+TABLE)\s+)(\w+)", re.I | re.M)


class _EmbeddedEngine:
    """One per process: the open chdb client, the cross-process lock and a nesting depth."""

    def __init__(self) -> None:
        self.guard = threading.RLock()
        self.client: Client | None = None
        self.lock: FileLock | None = None
        self.path: str | None = None
        self.depth = 0
        self.opens = 0  # engine opens in this process's life: each leaves ~5 threads behind


_ENGINE = _EmbeddedEngine()


def engine_opens() -> int:
    """How often this process has opened the embedded engine (chdb leaves ~5 threads and
    ~2 MiB behind each time): what a long-lived process watches to know when to retire."""
    return _ENGINE.opens


def holds_engine() -> bool:
    """Whether this process has the embedded engine open (an operation or a hold under way)."""
    return _ENGINE.depth > 0


def is_embedded(dsn: str) -> bool:
    return dsn.startswith("chdb://")


def embedded_path(dsn: str) -> Path:
    return Path(dsn[len("chdb://") :])


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


def _owner_file(path: Path) -> Path:
    return Path(str(path) + ".lock.owner")


def lock_owner(path: Path) -> str:
    """Who holds the embedded engine's lock, as the holder wrote it (pid and command)."""
    try:
        return _owner_file(path).read_text().strip() or "an unknown process"
    except OSError:
        return "an unknown process"


def _waiting_dir(path: Path) -> Path:
    return Path(str(path) + ".lock.waiting")


def waiting_pids(path: Path) -> list[int]:
    """Other live processes waiting for the engine's lock: a long-lived holder (the HTTP
    service) lets go when this is not empty, so a Dagster run never waits out a busy reader."""
    pids = []
    with suppress(OSError):
        for marker in _waiting_dir(path).iterdir():
            with suppress(ValueError):
                pid = int(marker.name)
                if pid != os.getpid() and pid_alive(pid):
                    pids.append(pid)
    return pids


def _acquire(path: Path, timeout_s: float) -> FileLock:
    """Take the cross-process lock; a wait is announced to the holder (a marker file it
    watches) and to the user (the holder's pid and command), never silent."""
    lock = FileLock(str(path) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        marker = _waiting_dir(path) / str(os.getpid())
        with suppress(OSError):
            marker.parent.mkdir(exist_ok=True)
            marker.touch()
        try:
            _acquire_waiting(lock, path, timeout_s)
        finally:
            with suppress(OSError):
                marker.unlink()
    with suppress(OSError):
        _owner_file(path).write_text(f"pid {os.getpid()} ({' '.join(sys.argv)[:200]})")
    return lock


def _acquire_waiting(lock: FileLock, path: Path, timeout_s: float) -> None:
    try:
        lock.acquire(timeout=min(2.0, timeout_s))
    except Timeout:
        # A warning reaches stderr even where logging is not configured (the CLI).
        log.warning("waiting for embedded ClickHouse at %s, held by %s (up to %.0f s)",
                    path, lock_owner(path), timeout_s)
        try:
            lock.acquire(timeout=timeout_s)
        except Timeout as exc:
            raise ServiceUnavailableError(
                f"embedded ClickHouse at {path} stayed locked by {lock_owner(path)} for "
                f"{timeout_s:.0f}s", store="ClickHouse", address=f"embedded chdb at {path}",
            ) from exc


def _shut_engine() -> None:
    """Close this process's embedded engine and free the file lock (caller holds the guard)."""
    try:
        if _ENGINE.client is not None:
            _ENGINE.client.close()
    finally:
        _ENGINE.client = None
        lock, _ENGINE.lock = _ENGINE.lock, None
        if lock is not None:
            lock.release()


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
    lock_timeout_s: float = 900.0

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
            with self._embedded_client() as client:
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
    def _embedded_client(self) -> Iterator[Client]:
        with _ENGINE.guard:  # one operation at a time in this process
            client = self._open_embedded()
            try:
                yield client
            finally:
                self._close_embedded()

    def _open_embedded(self) -> Client:
        """Under the guard: open the engine (taking the file lock) unless open; count a user."""
        path = embedded_path(self.dsn)
        with _ENGINE.guard:
            if _ENGINE.depth == 0:
                if _ENGINE.lock is not None:
                    # A close cut short (Ctrl-C between the count and the release) left the
                    # engine open: finish it, or this process would wait on its own lock.
                    _shut_engine()
                path.parent.mkdir(parents=True, exist_ok=True)
                lock = _acquire(path, self.lock_timeout_s)
                try:
                    _ENGINE.client = clickhouse_connect.get_client(dsn=self.dsn)
                except BaseException as exc:  # Ctrl-C too: never keep the lock unaccounted
                    lock.release()
                    if not isinstance(exc, Exception):
                        raise
                    raise ServiceUnavailableError(
                        f"cannot open embedded ClickHouse at {path}: {exc}",
                        store="ClickHouse", address=self.address,
                    ) from exc
                _ENGINE.lock, _ENGINE.path = lock, str(path)
                _ENGINE.opens += 1
            elif _ENGINE.path != str(path):
                raise ServiceUnavailableError(
                    f"this process already holds embedded ClickHouse at {_ENGINE.path}; "
                    f"chdb cannot open a second path ({path}) in the same process",
                    store="ClickHouse", address=self.address,
                )
            _ENGINE.depth += 1
            assert _ENGINE.client is not None
            return _ENGINE.client

    def _close_embedded(self) -> None:
        """Under the guard: one user fewer; the last one closes the engine and frees the lock."""
        with _ENGINE.guard:
            _ENGINE.depth -= 1
            if _ENGINE.depth <= 0:
                _ENGINE.depth = 0
                _shut_engine()

    @contextmanager
    def held(self) -> Iterator[None]:
        """Keep the embedded engine open until the block ends, for a long-lived reader such as
        the HTTP service: its operations still take turns in this process but skip the reopen
        (~40 ms each). Other processes (Dagster runs) wait for the file lock while it is held,
        so a holder lets go when idle. Without effect for a server DSN. May be left from
        another thread than the one that entered it."""
        if not is_embedded(self.dsn):
            yield
            return
        self._open_embedded()
        try:
            yield
        finally:
            self._close_embedded()

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
