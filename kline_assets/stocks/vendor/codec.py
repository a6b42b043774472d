"""Vendor bars on the stream: one entry per bar with named fields

    symbol, period (1/5/15/30/60), frame (bar end: ISO-8601, or Beijing wall clock without an
    offset), open, high, low, close, volume, amount[, name]

— the contract other tools script (the users' QMT-style subscriber). Field names are matched
without regard to case.

Reading: the consumer reads XREADGROUP's reply as bytes (`reader`): a batch whose entries all
carry the same fields in the same order (what `publish-vendor` and most tools send, a `name` or
not, any order and case) becomes columns in one pass; any other batch is parsed by hiredis and
`decode` matches each entry's fields by name.

Writing (`kline bars publish-vendor`): rows → tab-separated lines (Arrow's CSV writer), sent as
XADD commands built in Arrow (`publish`), one round trip per chunk; the Lua script below adds
the same entries from lines of any shape.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

FIELDS = ("symbol", "period", "frame", "open", "high", "low", "close", "volume", "amount")
OPTIONAL = ("name",)

# KEYS: stream. ARGV: tab-separated lines in FIELDS (+ name) order. XADD with named fields;
# an empty name is left out.
PUBLISH = r"""
local names = {'symbol', 'period', 'frame', 'open', 'high', 'low', 'close', 'volume', 'amount',
               'name'}
for i = 1, #ARGV do
  local args = {}
  local j = 0
  for value in string.gmatch(ARGV[i] .. '\t', '([^\t]*)\t') do
    j = j + 1
    if j <= 10 and (j < 10 or value ~= '') then
      args[#args + 1] = names[j]
      args[#args + 1] = value
    end
  end
  redis.call('XADD', KEYS[1], '*', unpack(args))
end
return #ARGV
"""

_ORDER = np.array([f.encode() for f in FIELDS], dtype=object)
_WIDTH = 2 * len(FIELDS)


def strings(values: pa.Array | np.ndarray | list[bytes]) -> pa.Array:
    """Bytes → an Arrow string array; bytes that are not UTF-8 are replaced (such a value
    breaks a rule anyway, and the dead-letter stream keeps the raw fields)."""
    arr = values if isinstance(values, pa.Array) else pa.array(values, pa.binary())
    try:
        return pc.cast(arr, pa.string())
    except pa.ArrowInvalid:
        return pa.array([v.decode(errors="replace") for v in arr.to_pylist()], pa.string())


def decode(entries: list) -> pa.Table:
    """A batch of raw entries ([id, [field, value, …]], or [id, None] for an entry deleted
    while pending) → a table of strings: id, nfields, the FIELDS and name, in stream order
    (a missing field is empty)."""
    n = len(entries)
    names = (*FIELDS, *OPTIONAL)
    ids = [e[0] for e in entries]
    fields = [e[1] or [] for e in entries]
    counts = np.fromiter(map(len, fields), dtype=np.int64, count=n)
    cols = {name: np.full(n, b"", dtype=object) for name in names}
    fast = np.flatnonzero(counts == _WIDTH)
    if len(fast):
        grid = np.array([fields[i] for i in fast.tolist()], dtype=object)
        ordered = (grid[:, 0::2] == _ORDER).all(axis=1)
        rows = fast[ordered]
        for j, name in enumerate(FIELDS):
            cols[name][rows] = grid[ordered, 2 * j + 1]
        slow = np.setdiff1d(np.arange(n), rows)
    else:
        slow = np.arange(n)
    for i in slow.tolist():
        got = {k.decode(errors="replace").strip().lower(): v
               for k, v in zip(fields[i][::2], fields[i][1::2], strict=False)}
        for name in names:
            if name in got:
                cols[name][i] = got[name]
    table = {"id": strings(ids), "nfields": pa.array(counts // 2)}
    table |= {name: strings(cols[name]) for name in names}
    return pa.table(table)


def encode(table: pa.Table) -> list[bytes]:
    """Tab-separated lines of vendor bars (columns FIELDS, optional name; frame as text or a
    naive Beijing timestamp) for the PUBLISH script."""
    cols = {}
    for name in (*FIELDS, *OPTIONAL):
        if name not in table.column_names:
            cols[name] = pa.array([""] * table.num_rows, pa.string())
            continue
        col = table.column(name).combine_chunks()
        if name == "frame" and pa.types.is_timestamp(col.type):
            col = pc.strftime(pc.cast(col, pa.timestamp("s")), format="%Y-%m-%dT%H:%M:%S")
        # Arrow prints a double as the shortest text that reads back to it: what is sent is
        # what lands.
        col = pc.cast(col, pa.string())
        cols[name] = pc.replace_substring_regex(pc.fill_null(col, ""), r"[\t\r\n]", " ")
    buf = io.BytesIO()
    pacsv.write_csv(pa.table(cols), buf, pacsv.WriteOptions(
        include_header=False, delimiter="\t", quoting_style="none"))
    return buf.getvalue().splitlines()

