"""The 1-minute bar tables in PostgreSQL read back as `Bars`: the vendors' history
(`stock_1min_qfq`) and our archive (`stock_1min_synth`), for the merged query and the
hand-over's comparison."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pyarrow as pa
from psycopg import sql

from kline_assets.kernels.bars import Bars
from kline_assets.resources.postgres import PostgresResource, table_ident

from . import STOCK_TABLE


def minute_bars(postgres: PostgresResource, table: str, first: date, last: date,
                symbol: str | None = None) -> Bars:
    """1-minute bars of days first…last from a bar table (time, code, OHLCV), of one symbol or
    all, sorted by (symbol, frame). A table that does not exist holds no bars."""
    where = sql.SQL("time >= {} AND time < {}").format(
        sql.Literal(datetime.combine(first, datetime.min.time())),
        sql.Literal(datetime.combine(last + timedelta(days=1), datetime.min.time())))
    if symbol is not None:
        where = sql.SQL("code = {} AND ").format(sql.Literal(symbol)) + where
    query = sql.SQL(
        "SELECT code, (extract(epoch FROM time) * 1000000)::bigint AS us, open, high, low, "
        "close, volume, amount FROM {} WHERE {} ORDER BY code, time"
    ).format(table_ident(table), where)
    types = {"code": pa.string(), "us": pa.int64(), **{c: pa.float64() for c in Bars.COLUMNS}}
    with postgres.connect() as conn:
        if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
            return Bars.empty(1)
        data = postgres.copy_out(query, column_types=types, conn=conn)
    frame = (data.column("us").to_numpy() // 1_000_000).astype("datetime64[s]")
    cols = [data.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
            for c in Bars.COLUMNS]
    codes = np.asarray(data.column("code").to_pylist(), dtype=object)
    return Bars(1, codes, frame, *cols)


def vendor_minute_bars(postgres: PostgresResource, symbol: str, first: date, last: date) -> Bars:
    """The vendors' 1-minute bars of `symbol` on days first…last from stock_1min_qfq."""
    return minute_bars(postgres, STOCK_TABLE, first, last, symbol)
