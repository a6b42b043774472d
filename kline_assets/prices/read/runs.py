"""Which runs hold data, in one listing with two modes, because its two readers need
different costs:

* **fast** (the HTTP service, on every page load): from the parts' metadata — months and row
  counts of stored parts, before FINAL — without reading a row;
* **exact** (`kline runs list`, a person deciding what to promote or drop): rows after FINAL
  and the first and last bucket, read from the tables.

`summarize_runs` adds what Dagster knows (registration, last materialization) to the exact
listing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from clickhouse_connect.driver.client import Client
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

from kline_assets.lib.months import key_of_yyyymm
from kline_assets.prices.partitions import (
    LIVE,
    RUN_ID_PATTERN,
    month_partitions,
    registered_run_ids,
    run_kind,
)
from kline_assets.prices.tables import PRICE_ASSETS, PRICE_TABLES, all_partitions
from kline_assets.resources.clickhouse import ClickHouseResource
from kline_assets.resources.clickhouse import cluster as cl
from kline_assets.resources.clickhouse.sql import quote_literal

from .args import iso


def _month(yyyymm: int) -> str:
    return key_of_yyyymm(int(yyyymm))[:7]


def _fast(client: Client, ch: ClickHouseResource) -> list[dict[str, Any]]:
    runs: dict[str, dict[str, Any]] = {}
    for part in all_partitions(client, ch.db):
        run = runs.setdefault(part.run_id, {"run_id": part.run_id, "months": set(),
                                            "rows": dict.fromkeys(PRICE_TABLES, 0)})
        run["months"].add(_month(part.values[1]))
        run["rows"][part.table] += part.rows
    return [{**r, "months": sorted(r["months"])} for _, r in sorted(runs.items())]


def _exact(client: Client, ch: ClickHouseResource) -> list[dict[str, Any]]:
    stats: dict[str, dict[str, Any]] = {}
    present = {name for (name,) in client.query(
        f"SELECT name FROM system.tables WHERE database = {quote_literal(ch.db)}"
    ).result_rows}
    for table in (t for t in PRICE_TABLES if t in present):  # none before `kline init`
        rows = client.query(
            "SELECT run_id, count(), toUnixTimestamp(min(bucket)), toUnixTimestamp(max(bucket)), "
            f"arraySort(groupUniqArray(toYYYYMM(bucket))) FROM {ch.table(table)} FINAL "
            "GROUP BY run_id", settings=cl.reads()).result_rows
        for run_id, n, first, last, months in rows:
            entry = stats.setdefault(run_id, {"run_id": run_id,
                                              "rows": dict.fromkeys(PRICE_TABLES, 0),
                                              "first": first, "last": last, "months": set()})
            entry["rows"][table] = int(n)
            entry["first"], entry["last"] = min(entry["first"], first), max(entry["last"], last)
            entry["months"].update(int(m) for m in months)
    return [{"run_id": e["run_id"], "rows": e["rows"], "first_bucket": iso(e["first"]),
             "last_bucket": iso(e["last"]), "months": [_month(m) for m in sorted(e["months"])]}
            for _, e in sorted(stats.items())]


def runs_with_data(client: Client, ch: ClickHouseResource, *, exact: bool = False
                   ) -> list[dict[str, Any]]:
    """`list_runs` on a client already open (an answer that names the runs with data)."""
    return _exact(client, ch) if exact else _fast(client, ch)


def list_runs(clickhouse: ClickHouseResource, *, exact: bool = False) -> list[dict[str, Any]]:
    """Every run with data, by run id: `{run_id, months: ['2025-10', …], rows: {table: n}}`;
    fast: row counts of stored parts (before FINAL) from metadata; `exact`: rows after FINAL,
    plus `first_bucket` and `last_bucket` (ISO-8601, Asia/Tokyo)."""
    with clickhouse.client() as client:
        return runs_with_data(client, clickhouse, exact=exact)


def _last_materialization(instance: DagsterInstance, run_id: str) -> float | None:
    keys = [f"{month}|{run_id}" for month in month_partitions.get_partition_keys()]
    newest = None
    for asset in PRICE_ASSETS:
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=keys),
            limit=1, ascending=False).records
        if records and (newest is None or records[0].timestamp > newest):
            newest = records[0].timestamp
    return newest


def summarize_runs(ch: ClickHouseResource, instance: DagsterInstance) -> list[dict]:
    """Per run id (registered in Dagster or holding ClickHouse data): kind, whether registered,
    rows per table (FINAL), first and last bucket, months, last materialization (UTC ISO)."""
    stats = {r["run_id"]: r for r in list_runs(ch, exact=True)}
    registered = set(registered_run_ids(instance))
    out = []
    for run_id in sorted(registered | set(stats), key=lambda r: (r != LIVE, r)):
        entry = stats.get(run_id)
        stamp = _last_materialization(instance, run_id) if RUN_ID_PATTERN.fullmatch(run_id) \
            else None
        out.append({
            "run_id": run_id, "kind": run_kind(run_id), "registered": run_id in registered,
            "rows": entry["rows"] if entry else dict.fromkeys(PRICE_TABLES, 0),
            "first_bucket": entry["first_bucket"] if entry else None,
            "last_bucket": entry["last_bucket"] if entry else None,
            "months": entry["months"] if entry else [],
            "last_materialization": (datetime.fromtimestamp(stamp, ZoneInfo("UTC")).isoformat(
                timespec="seconds") if stamp else None),
        })
    return out
