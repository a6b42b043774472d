"""Cluster mode of the ClickHouse SQL: one shard × N replicas behind `KLINE_CLICKHOUSE_CLUSTER`.

Unset (the default, and always for the embedded engine) every function here returns the empty
string or None, so the single-node statements stay byte for byte what they were. Set to the
name of a cluster of the servers' `remote_servers`:

* **DDL** goes `ON CLUSTER <name>` (the distributed DDL queue runs it on every replica), and the
  tables are `Replicated*MergeTree('/clickhouse/tables/{shard}/{database}/{table}',
  '{replica}', …)` with the ORDER BY and PARTITION BY of `sql/clickhouse/init.sql`.
* **Staging tables** are created the same way, with the target's engine clause written out:
  `CREATE TABLE … AS <target>` alone would copy the target's Keeper path, and the staging
  table would join the target's replication instead of being a table of its own.
* **Partition swaps, drops and deletes** are issued once, without ON CLUSTER: a Replicated
  table replicates `REPLACE PARTITION`, `DROP PARTITION` and lightweight `DELETE` through its
  Keeper log itself (ON CLUSTER would only queue it so that one replica per shard runs it
  anyway). `alter_sync = 2` / `mutations_sync = 2` make the statement return only once every
  replica has executed it, so when a promote or a write says it is done, every replica serves
  the new month; each replica swaps a partition atomically, so a reader sees the old month or
  the new one, never half of one.
* **Inserts** (staging tables, the live refresh, the promote journal) are quorum writes
  (`insert_quorum = 'auto'`: a majority, i.e. both replicas of two; sequential, so the
  quorum's replicas hold every earlier insert), and **reads** ask for
  `select_sequential_consistency = 1`: a replica that lacks a quorum-written part refuses to
  answer instead of answering from stale data. Reads of the price tables keep their `FINAL`.

Sharding is not implemented: the price data is small (a year of `live` is a few GB), so one
shard with replicas for availability is enough; see the README ("Scaling out").
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from kline_assets.lib.errors import KlineError
from kline_assets.lib.settings import SQL_DIR, load_settings

CLUSTER_ENV = "KLINE_CLICKHOUSE_CLUSTER"
REPLICA_PATH = "/clickhouse/tables/{shard}/{database}/{table}"
REPLICA_NAME = "{replica}"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# The MergeTree family's engine names at the start of an ENGINE clause, with their arguments.
_ENGINE = re.compile(r"^ENGINE\s*=\s*(\w*MergeTree)\b(?:\(([^)]*)\))?", re.I)
_CREATE_TABLE = re.compile(
    r"^(CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+[\w.]+)(\s*\(.*\)\s*)(ENGINE\s*=.*)$", re.I | re.S)
_ALTER_TABLE = re.compile(r"^(ALTER\s+TABLE\s+[\w.]+)(\s)", re.I)
_CREATE_DATABASE = re.compile(r"^(CREATE\s+DATABASE\s+IF\s+NOT\s+EXISTS\s+\w+)$", re.I)
_TABLE_ENGINE = re.compile(
    r"CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\w+)\s*\(.*?\)\s*(ENGINE\s*=.*?);", re.I | re.S)


def cluster_name(environ: dict[str, str] | None = None) -> str | None:
    """The cluster the statements address, or None for a single server / the embedded engine.

    Read at each statement (from the environment, through the settings), so a process needs
    no restart-time wiring and the tests switch it with the environment."""
    name = load_settings(environ).clickhouse_cluster.strip()
    if not name:
        return None
    if not _NAME.fullmatch(name):
        raise KlineError(f"{CLUSTER_ENV}={name!r} is not a ClickHouse cluster name "
                         "(letters, digits, underscores)")
    return name


def require_server(cluster: str | None, embedded: bool, address: str) -> None:
    """A cluster needs servers: the embedded engine is one process with no Keeper."""
    if cluster and embedded:
        raise KlineError(f"{CLUSTER_ENV}={cluster} needs ClickHouse servers, but "
                         f"KLINE_CLICKHOUSE_DSN points at the {address}; unset "
                         f"{CLUSTER_ENV} or point the DSN at a replica of the cluster")


def on_cluster(cluster: str | None) -> str:
    """` ON CLUSTER <name>`, or nothing on a single server."""
    return f" ON CLUSTER {cluster}" if cluster else ""


def replicated_engine(clause: str) -> str:
    """`ENGINE = ReplacingMergeTree(inserted_at) …` → `ENGINE =
    ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}',
    inserted_at) …` (the rest of the clause — PARTITION BY, ORDER BY — unchanged)."""
    match = _ENGINE.match(clause.strip())
    if match is None:
        raise ValueError(f"not a MergeTree engine clause: {clause[:80]!r}")
    engine, args = match.group(1), (match.group(2) or "").strip()
    if engine.lower().startswith("replicated"):
        return clause.strip()
    keeper = f"'{REPLICA_PATH}', '{REPLICA_NAME}'"
    replicated = f"ENGINE = Replicated{engine}({keeper}{', ' + args if args else ''})"
    return replicated + clause.strip()[match.end():]


def schema_statement(statement: str, cluster: str | None) -> str:
    """A statement of init.sql (already qualified with the database) for the cluster: CREATE
    TABLE / ALTER TABLE / CREATE DATABASE gain ON CLUSTER, engines become Replicated."""
    if not cluster:
        return statement
    if match := _CREATE_TABLE.match(statement):
        head, columns, engine = match.groups()
        return f"{head}{on_cluster(cluster)}{columns}{replicated_engine(engine)}"
    if match := _ALTER_TABLE.match(statement):
        return f"{match.group(1)}{on_cluster(cluster)}{statement[match.end(1):]}"
    if _CREATE_DATABASE.match(statement):
        return statement + on_cluster(cluster)
    raise ValueError(f"no cluster form for statement {statement[:80]!r}")


@cache
def _engines() -> dict[str, str]:
    text = "\n".join(line for line in (SQL_DIR / "clickhouse" / "init.sql").read_text()
                     .splitlines() if not line.strip().startswith("--"))
    return {m.group(1): " ".join(m.group(2).split()) for m in _TABLE_ENGINE.finditer(text)}


def engine_clause(table: str) -> str:
    """The ENGINE … PARTITION BY … ORDER BY … clause init.sql gives `table` (bare or
    qualified name): what a staging table must repeat to accept REPLACE PARTITION from it."""
    base = table.split(".", 1)[-1]
    try:
        return _engines()[base]
    except KeyError:
        raise ValueError(f"table {base!r} is not in sql/clickhouse/init.sql") from None


def create_table_as(staging: str, table: str, cluster: str | None) -> str:
    """CREATE TABLE for a staging table with `table`'s structure."""
    if not cluster:
        return f"CREATE TABLE {staging} AS {table}"
    return (f"CREATE TABLE {staging}{on_cluster(cluster)} AS {table} "
            f"{replicated_engine(engine_clause(table))}")


def drop_table_sql(name: str, cluster: str | None) -> str:
    return f"DROP TABLE IF EXISTS {name}{on_cluster(cluster)} SYNC"


def drop_database_sql(name: str, cluster: str | None) -> str:
    return f"DROP DATABASE IF EXISTS {name}{on_cluster(cluster)} SYNC"


def write_settings(cluster: str | None) -> dict[str, Any] | None:
    """Settings of an INSERT: a sequential quorum write on a cluster."""
    return {"insert_quorum": "auto", "insert_quorum_parallel": 0} if cluster else None


def read_settings(cluster: str | None) -> dict[str, Any] | None:
    """Settings of a read: no answer from a replica behind the last quorum write."""
    return {"select_sequential_consistency": 1} if cluster else None


def insert_select_settings(cluster: str | None) -> dict[str, Any] | None:
    """An INSERT … SELECT both reads and writes."""
    if not cluster:
        return None
    return {**(read_settings(cluster) or {}), **(write_settings(cluster) or {})}


def alter_settings(cluster: str | None) -> dict[str, Any] | None:
    """Settings of a partition swap or drop: return once every replica has executed it."""
    return {"alter_sync": 2} if cluster else None


def delete_settings(cluster: str | None) -> dict[str, Any] | None:
    """Settings of a lightweight DELETE: return once every replica has applied it."""
    # mutations_sync covers lightweight deletes up to 24.3; later releases wait on every
    # replica by default (lightweight_deletes_sync = 2), and 23.3 would refuse that name.
    return {"mutations_sync": 2} if cluster else None


def merged(*parts: dict[str, Any] | None) -> dict[str, Any] | None:
    """Settings dicts merged; None when all are empty (the call then sends none, as before)."""
    out: dict[str, Any] = {}
    for part in parts:
        out.update(part or {})
    return out or None


def reads() -> dict[str, Any] | None:
    """`read_settings` of the configured cluster (None on a single server)."""
    return read_settings(cluster_name())


def writes() -> dict[str, Any] | None:
    """`write_settings` of the configured cluster (None on a single server)."""
    return write_settings(cluster_name())
