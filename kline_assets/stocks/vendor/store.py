"""One batch of vendor bars → PostgreSQL, in one transaction, exactly once.

In the transaction, in this order:

1. lock the group's row of `stock_vendor_ingest` (FOR UPDATE) and read its committed stream
   position: entries at or before it were committed by an earlier transaction whose XACK never
   happened (a kill between COMMIT and XACK), so they are dropped here — a redelivery adds
   nothing, and its counters are not counted twice. Batches of a group commit in stream order
   (the consumer waits for older pending entries of other consumers), so one position per
   group is exact;
2. the fast path, for a batch of bars that are all new (a live feed's usual batch): binary
   COPY (the project's one encoder, `resources.pgcopy`) straight into the bar tables under a
   savepoint. When the unique index refuses it (a bar exists already), the savepoint is rolled
   back and the batch — and the next FAST_RETRY ones — take the general path: binary COPY into
   a temporary staging table, then `INSERT … ON CONFLICT DO UPDATE … WHERE … IS DISTINCT FROM`
   into stock_1min_qfq (period 1) and stock_bars_vendor (other periods): an identical re-send
   touches no row and counts as a duplicate; a re-send with other values replaces the bar and
   is recorded in `stock_vendor_corrections` with the values before and after (the old values
   come from the statement's own snapshot, which does not see its own update; the look-ups
   are LATERAL, so they run per corrected row through the index, never as a join over the
   whole table). Copies of one bar within a batch go in successive rounds, so each is
   compared with the copy before it, as if they had come in separate batches;
3. the new position and the counters (entries, inserted, duplicates, corrections, rejected by
   reason) are written to the group's row.

Only after COMMIT does the consumer acknowledge the entries.
"""

from __future__ import annotations

import json
import weakref
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from kline_assets.lib.settings import SQL_DIR
from kline_assets.resources.pgcopy import copy_table
from kline_assets.resources.postgres import PostgresResource
from kline_assets.resources.postgres_io import ensure_hypertable

from .. import STOCK_TABLE
from . import CORRECTIONS_TABLE, INGEST_TABLE, VENDOR_TABLE
from .screen import VALUES

DDL = SQL_DIR / "postgres" / "stock_vendor.sql"
STAGE = "vendor_stage"
STAGE_TYPES = {"entry_id": "text", "code": "text", "period": "int2", "time": "timestamp",
               "name": "text", **{c: "float8" for c in VALUES}}
CORRECTIONS_SHOWN = 50
FAST_RETRY = 20
"""After a batch whose bars were not all new, the next this many batches go straight to the
upsert (a feed re-sending history would otherwise pay for a refused COPY each time)."""
_FAST_SKIP: weakref.WeakKeyDictionary[psycopg.Connection, int] = weakref.WeakKeyDictionary()
_MINUTE_TYPES = {"time": "timestamp", "code": "text", "name": "text",
                 **{c: "float8" for c in VALUES}}
_VENDOR_TYPES = {"time": "timestamp", "code": "text", "period": "int2",
                 **{c: "float8" for c in VALUES}}
_STAGED: weakref.WeakSet[psycopg.Connection] = weakref.WeakSet()
"""Connections whose session holds the staging table (created by a transaction that
committed, so it lives as long as the connection)."""


def ensure_schema(postgres: PostgresResource) -> None:
    """The vendor tables (idempotent), and hypertables of both bar tables on TimescaleDB."""
    with postgres.connect() as conn:
        postgres.execute_file(SQL_DIR / "postgres" / "source.sql", conn)
        postgres.execute_file(DDL, conn)
        ensure_hypertable(conn, STOCK_TABLE, "time")
        ensure_hypertable(conn, VENDOR_TABLE, "time")


def entry_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def entry_keys(ids: list[str]) -> np.ndarray:
    """(ms, seq) of stream ids as an (n, 2) int64 array."""
    if not ids:
        return np.zeros((0, 2), dtype=np.int64)
    halves = pc.list_flatten(pc.split_pattern(pa.array(ids, pa.string()), "-", max_splits=1))
    if len(halves) == 2 * len(ids):
        return pc.cast(halves, pa.int64()).to_numpy().reshape(-1, 2)
    return np.array([entry_key(i) for i in ids], dtype=np.int64)  # an id without its "-seq"


@dataclass
class Batch:
    """What the consumer hands the store: every entry id of the batch (stream order), the bars
    that passed the rules (with `pos`, their batch position), and the rejected positions with
    their reason."""

    ids: list[str]
    rows: pd.DataFrame
    rejected: dict[int, tuple[str, str]] = field(default_factory=dict)


@dataclass
class Written:
    """What one committed transaction changed."""

    fresh: int = 0            # entries after the committed position
    redelivered: int = 0      # entries at or before it: committed earlier, dropped
    inserted: int = 0
    duplicates: int = 0
    corrections: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    by_month: dict[str, dict[str, int]] = field(default_factory=dict)
    corrected: list[dict] = field(default_factory=list)
    # (symbols, their newest 1-minute frame as YYYY-MM-DDTHH:MM:SS), both object arrays
    last_frames: tuple[np.ndarray, np.ndarray] | None = None
    last_id: str | None = None
    totals: dict = field(default_factory=dict)  # the group's committed counters after it
    staged: bool = False  # this transaction created the staging table

    @property
    def bars(self) -> int:
        return self.inserted + self.duplicates + self.corrections


_UPSERT = """
WITH up AS (
    INSERT INTO {target} AS t ({cols})
    SELECT {cols} FROM {stage} WHERE {which}
    ON CONFLICT ({key}) DO UPDATE SET {assign}
    WHERE ({old}) IS DISTINCT FROM ({new}){name_changed}
    RETURNING {key_ret}, t.time, (t.xmax::text::bigint = 0) AS inserted, {ret}
), cor AS (
    INSERT INTO {corrections} (stream, grp, entry_id, code, period, time, {old_cols}, {val_cols})
    SELECT {stream}, {grp}, s.entry_id, up.code, {period}, up.time, {o_vals}, {up_vals}
    FROM up
    CROSS JOIN LATERAL (SELECT * FROM {target} o WHERE {join_o}) o
    CROSS JOIN LATERAL (SELECT entry_id FROM {stage} s WHERE {join_s} LIMIT 1) s
    WHERE NOT up.inserted
)
SELECT to_char(date_trunc('month', time), 'YYYY-MM'), count(*) FILTER (WHERE inserted),
       count(*) FILTER (WHERE NOT inserted)
FROM up GROUP BY 1
"""


def _upsert(conn: psycopg.Connection, stream: str, group: str, minute: bool
            ) -> dict[str, tuple[int, int]]:
    """Upsert the staged bars of one target; month → (inserted, corrected)."""
    target = STOCK_TABLE if minute else VENDOR_TABLE
    key = ["code", "time"] if minute else ["code", "period", "time"]
    cols = ["time", "code", *(["name"] if minute else ["period"]), *VALUES]
    ident = sql.Identifier

    def listed(names, prefix: str = "") -> sql.Composable:
        return sql.SQL(", ").join(sql.SQL(prefix) + ident(n) for n in names)

    assign = [sql.SQL("{} = EXCLUDED.{}").format(ident(c), ident(c)) for c in VALUES]
    name_changed = sql.SQL("")
    if minute:
        assign.append(sql.SQL("name = COALESCE(EXCLUDED.name, t.name)"))
        name_changed = sql.SQL(" OR (EXCLUDED.name IS NOT NULL AND EXCLUDED.name IS DISTINCT "
                               "FROM t.name)")
    query = sql.SQL(_UPSERT).format(
        target=ident(target), stage=ident(STAGE), cols=listed(cols), key=listed(key),
        which=sql.SQL("period = 1" if minute else "period <> 1"),
        assign=sql.SQL(", ").join(assign), old=listed(VALUES, "t."),
        new=listed(VALUES, "EXCLUDED."), name_changed=name_changed,
        key_ret=listed([k for k in key if k != "time"], "t."), ret=listed(VALUES, "t."),
        corrections=ident(CORRECTIONS_TABLE),
        old_cols=listed([f"old_{c}" for c in VALUES]), val_cols=listed(VALUES),
        stream=sql.Literal(stream), grp=sql.Literal(group),
        period=sql.SQL("1") if minute else sql.SQL("up.period"),
        o_vals=listed(VALUES, "o."), up_vals=listed(VALUES, "up."),
        join_o=sql.SQL(" AND ").join(sql.SQL("o.{k} = up.{k}").format(k=ident(k)) for k in key),
        join_s=sql.SQL(" AND ").join(
            [sql.SQL("s.{k} = up.{k}").format(k=ident(k)) for k in key]
            + ([sql.SQL("s.period = 1")] if minute else [])),
    )
    return {m: (int(i), int(c)) for m, i, c in conn.execute(query).fetchall()}


def _corrections(conn: psycopg.Connection, stream: str, group: str) -> list[dict]:
    """The corrections this transaction recorded (now() is the transaction's start)."""
    rows = conn.execute(
        sql.SQL("SELECT entry_id, code, period, time, {} FROM {} WHERE stream = %s AND grp = %s "
                "AND corrected_at = now() ORDER BY entry_id LIMIT %s").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in
                               [*(f"old_{v}" for v in VALUES), *VALUES]),
            sql.Identifier(CORRECTIONS_TABLE)),
        (stream, group, CORRECTIONS_SHOWN)).fetchall()
    names = ["entry_id", "code", "period", "time", *(f"old_{v}" for v in VALUES), *VALUES]
    return [{k: (v.isoformat() if isinstance(v, datetime) else v)
             for k, v in zip(names, r, strict=True)} for r in rows]


def _texts(column: pd.Series) -> pa.Array:
    """A text column as Arrow, without a Python string per row when it is Arrow already."""
    return pc.cast(pa.array(column.array, from_pandas=True), pa.string())


def _copy_new(conn: psycopg.Connection, part: pd.DataFrame) -> bool:
    """The fast path for bars that are all new (a live feed's usual batch): binary COPY
    straight into the bar tables, under a savepoint. True when it went in; False when a bar
    already existed (the unique index refuses it), and the savepoint is rolled back."""
    time = pa.array(part["time"].to_numpy().astype("datetime64[us]"), pa.timestamp("us"))
    code = _texts(part["code"])
    values = {c: pa.array(part[c].to_numpy(), pa.float64()) for c in VALUES}
    minute = part["period"].to_numpy() == 1
    try:
        with conn.transaction():
            if minute.all():
                copy_table(conn, STOCK_TABLE, pa.table({
                    "time": time, "code": code,
                    "name": _texts(part["name"]),
                    **values}), _MINUTE_TYPES)
                return True
            mask = pa.array(minute)
            if minute.any():
                copy_table(conn, STOCK_TABLE, pa.table({
                    "time": time, "code": code,
                    "name": _texts(part["name"]),
                    **values}).filter(mask), _MINUTE_TYPES)
            copy_table(conn, VENDOR_TABLE, pa.table({
                "time": time, "code": code,
                "period": pa.array(part["period"].to_numpy(), pa.int16()),
                **values}).filter(pc.invert(mask)), _VENDOR_TYPES)
        return True
    except psycopg.errors.UniqueViolation:
        return False


def _write_rows(conn: psycopg.Connection, stream: str, group: str, rows: pd.DataFrame,
                ids: np.ndarray, out: Written) -> None:
    """Stage and upsert the bars, in rounds: copies of one bar within the batch go in
    successive rounds (first copies first), so each copy is compared with what stood before
    it, exactly as if the copies had come in separate batches. Almost every batch is one
    round."""
    key = ["code", "period", "time"]
    rank = (rows.groupby(key, sort=False).cumcount().to_numpy()
            if rows.duplicated(key).any() else np.zeros(len(rows), dtype=np.int64))
    schema = pa.schema([("entry_id", pa.string()), ("code", pa.string()),
                        ("period", pa.int16()), ("time", pa.timestamp("us")),
                        ("name", pa.string()), *((c, pa.float64()) for c in VALUES)])
    skip = _FAST_SKIP.get(conn, 0)
    if skip:
        _FAST_SKIP[conn] = skip - 1
    for r in range(int(rank.max()) + 1):
        part = rows[rank == r]
        month_of = part["time"].to_numpy().astype("datetime64[M]")
        labels, counts = np.unique(month_of, return_counts=True)
        labels = np.datetime_as_string(labels, unit="M").tolist()
        if r == 0 and not skip and rank.max() == 0:
            if _copy_new(conn, part):  # every bar new: inserted, nothing else to count
                for m, count in zip(labels, counts.tolist(), strict=True):
                    into = out.by_month.setdefault(m, {"inserted": 0, "corrections": 0,
                                                       "duplicates": 0})
                    into["inserted"] += int(count)
                continue
            _FAST_SKIP[conn] = FAST_RETRY
        if conn not in _STAGED and not out.staged:
            conn.execute(sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS {} (entry_id text, code text, period int2, "
                "time timestamp, name text, open float8, high float8, low float8, "
                "close float8, volume float8, amount float8) ON COMMIT DELETE ROWS"
            ).format(sql.Identifier(STAGE)))
            out.staged = True
        if r:
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(STAGE)))
        stage = pa.table({
            "entry_id": pa.array(ids[part["pos"].to_numpy()], pa.string()),
            "code": _texts(part["code"]),
            "period": pa.array(part["period"].to_numpy(), pa.int16()),
            "time": pa.array(part["time"].to_numpy().astype("datetime64[us]"),
                             pa.timestamp("us")),
            "name": _texts(part["name"]),
            **{c: pa.array(part[c].to_numpy(), pa.float64()) for c in VALUES}}, schema=schema)
        copy_table(conn, STAGE, stage, STAGE_TYPES)
        months: dict[str, tuple[int, int]] = {}
        periods = part["period"].to_numpy()
        for minute in (True, False):
            if (periods == 1).any() if minute else (periods != 1).any():
                for m, (i, c) in _upsert(conn, stream, group, minute).items():
                    pi, pc_ = months.get(m, (0, 0))
                    months[m] = (pi + i, pc_ + c)
        for m, count in zip(labels, counts.tolist(), strict=True):
            ins, cor = months.get(m, (0, 0))
            into = out.by_month.setdefault(m, {"inserted": 0, "corrections": 0,
                                               "duplicates": 0})
            into["inserted"] += ins
            into["corrections"] += cor
            into["duplicates"] += int(count) - ins - cor
    out.inserted = sum(v["inserted"] for v in out.by_month.values())
    out.corrections = sum(v["corrections"] for v in out.by_month.values())
    out.duplicates = sum(v["duplicates"] for v in out.by_month.values())
    if out.corrections:
        out.corrected = _corrections(conn, stream, group)
    minute_rows = rows[rows["period"] == 1]
    if len(minute_rows):
        latest = minute_rows.groupby("code", sort=False)["time"].max()
        out.last_frames = (latest.index.to_numpy(dtype=object), np.datetime_as_string(
            latest.to_numpy().astype("datetime64[s]"), unit="s").astype(object))


def write_batch(conn: psycopg.Connection, stream: str, group: str, batch: Batch) -> Written:
    """Commit `batch` (see the module docstring); `conn` is in autocommit mode, the
    transaction is this call's."""
    out = Written()
    if not batch.ids:
        return out
    keys = entry_keys(batch.ids)
    with conn.transaction():
        # One round trip: the group's row, created if new, locked, its position read.
        last_ms, last_seq = conn.execute(
            sql.SQL("INSERT INTO {} AS g (stream, grp) VALUES (%s, %s) ON CONFLICT (stream, grp) "
                    "DO UPDATE SET stream = g.stream RETURNING g.last_ms, g.last_seq").format(
                sql.Identifier(INGEST_TABLE)), (stream, group)).fetchone()
        fresh = (keys[:, 0] > last_ms) | ((keys[:, 0] == last_ms) & (keys[:, 1] > last_seq))
        out.fresh = int(fresh.sum())
        out.redelivered = len(batch.ids) - out.fresh
        if out.fresh == 0:
            return out
        rows = batch.rows[fresh[batch.rows["pos"].to_numpy()]] if len(batch.rows) else batch.rows
        for pos, (reason, _) in batch.rejected.items():
            if fresh[pos]:
                out.rejected[reason] = out.rejected.get(reason, 0) + 1
        if len(rows):
            _write_rows(conn, stream, group, rows, np.asarray(batch.ids, dtype=object), out)

        newest = batch.ids[int(np.flatnonzero(fresh)[-1])]
        out.last_id = newest
        ms, seq = entry_key(newest)
        last_frame = rows["time"].max() if len(rows) else None
        row = conn.execute(sql.SQL(
            "UPDATE {} SET last_ms = %s, last_seq = %s, entries = entries + %s, "
            "inserted = inserted + %s, duplicates = duplicates + %s, "
            "corrections = corrections + %s, rejected = (SELECT coalesce(jsonb_object_agg("
            "k, coalesce((rejected ->> k)::bigint, 0) + coalesce((%s::jsonb ->> k)::bigint, 0)),"
            " '{{}}') FROM (SELECT jsonb_object_keys(rejected || %s::jsonb) AS k) keys), "
            "last_frame = GREATEST(last_frame, %s), updated_at = now() "
            "WHERE stream = %s AND grp = %s RETURNING entries, inserted, duplicates, "
            "corrections, rejected").format(sql.Identifier(INGEST_TABLE)),
            (ms, seq, out.fresh, out.inserted, out.duplicates, out.corrections,
             json.dumps(out.rejected), json.dumps(out.rejected),
             None if last_frame is None or pd.isna(last_frame) else last_frame.to_pydatetime(),
             stream, group)).fetchone()
        out.totals = dict(zip(("entries", "inserted", "duplicates", "corrections", "rejected"),
                              row, strict=True))
    if out.staged:
        _STAGED.add(conn)  # committed: the session keeps the staging table
    return out


def group_totals(conn: psycopg.Connection, stream: str, group: str | None = None) -> list[dict]:
    """The committed counters of the stream's groups (all, or one)."""
    query = sql.SQL("SELECT grp, last_ms, last_seq, entries, inserted, duplicates, corrections, "
                    "rejected, last_frame, updated_at FROM {} WHERE stream = %s{} ORDER BY grp"
                    ).format(sql.Identifier(INGEST_TABLE),
                             sql.SQL(" AND grp = %s") if group else sql.SQL(""))
    if conn.execute("SELECT to_regclass(%s)", (INGEST_TABLE,)).fetchone()[0] is None:
        return []
    rows = conn.execute(query, (stream, group) if group else (stream,)).fetchall()
    names = ["group", "last_ms", "last_seq", "entries", "inserted", "duplicates",
             "corrections", "rejected", "last_frame", "updated_at"]
    return [dict(zip(names, r, strict=True)) for r in rows]


def recent_corrections(conn: psycopg.Connection, stream: str, limit: int = 20) -> list[dict]:
    """The newest corrections of the stream, newest first."""
    if conn.execute("SELECT to_regclass(%s)", (CORRECTIONS_TABLE,)).fetchone()[0] is None:
        return []
    cols = ["grp", "entry_id", "code", "period", "time", *(f"old_{v}" for v in VALUES),
            *VALUES, "corrected_at"]
    rows = conn.execute(sql.SQL("SELECT {} FROM {} WHERE stream = %s "
                                "ORDER BY corrected_at DESC, entry_id DESC LIMIT %s").format(
        sql.SQL(", ").join(map(sql.Identifier, cols)), sql.Identifier(CORRECTIONS_TABLE)),
        (stream, limit)).fetchall()
    return [dict(zip(cols, r, strict=True)) for r in rows]
