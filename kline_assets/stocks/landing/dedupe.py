"""The duplicate rule, on the (code, time) keys alone so a month never has to be in memory.

Bars sharing (code, time), within a file or across files: the copy that comes last in
(relative path, line) order wins, so a re-delivered file whose name sorts later corrects an
earlier one. Identical copies are dropped and counted as duplicates; copies with different
values are conflicts — a stray file can silently replace a real bar, so they are reported with
every copy's file, line and values. A bar is never loaded twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from .parse import NUMERIC
from .validate import REPORT_LIMIT, FileStats

VALUES = ["name", *NUMERIC]


@dataclass
class Dedupe:
    """Positions (into each file's kept bars) to drop, and what the rule found."""

    drops: list[np.ndarray]
    duplicates: int = 0
    conflicts: int = 0  # (code, time) keys whose copies differ
    conflict_rows: list[dict[str, object]] = field(default_factory=list)


def dedupe(
    keys: Sequence[pa.Table | None],
    stats: Sequence[FileStats],
    wheres: Sequence[Callable[[int], str]],
    values: Callable[[int, np.ndarray], pd.DataFrame],
) -> Dedupe:
    """Apply the rule to per-file key tables (code, time, _row: the row in the file).

    `values(file, positions)` returns the value columns of those kept bars of a file; it is
    only asked for the files holding duplicates.
    """
    empty = np.zeros(0, dtype=np.int64)
    result = Dedupe(drops=[empty] * len(keys))
    parts = [
        pd.DataFrame({
            "code": k["code"].to_numpy(zero_copy_only=False),
            "time": k["time"].to_numpy(zero_copy_only=False),
            "_file": np.full(k.num_rows, i, dtype=np.int32),
            "_pos": np.arange(k.num_rows, dtype=np.int64),
            "_row": k["_row"].to_numpy(zero_copy_only=False),
        })
        for i, k in enumerate(keys) if k is not None and k.num_rows
    ]
    if not parts:
        return result
    frame = pd.concat(parts, ignore_index=True)
    frame["code"] = frame["code"].astype("category")
    involved = frame.duplicated(["code", "time"], keep=False).to_numpy()
    if not involved.any():
        return result
    dups = frame[involved].copy()
    dups["code"] = dups["code"].astype(object)
    del frame, parts
    filled = []
    for file_index, group in dups.groupby("_file", sort=False):
        vals = values(int(file_index), group["_pos"].to_numpy())
        filled.append(vals.set_axis(group.index))
    dups = dups.join(pd.concat(filled))
    grouped = dups.groupby(["code", "time"], sort=True)
    differs = grouped[VALUES].nunique(dropna=False).max(axis=1) > 1
    conflict_keys = differs[differs].index
    dups["_conflict"] = pd.MultiIndex.from_frame(dups[["code", "time"]]).isin(conflict_keys)
    dropped = dups[dups.duplicated(["code", "time"], keep="last")]
    for file_index, group in dropped.groupby("_file"):
        s = stats[int(file_index)]
        s.conflicts += int(group["_conflict"].sum())
        s.duplicates += int((~group["_conflict"]).sum())
        result.drops[int(file_index)] = np.sort(group["_pos"].to_numpy())
    conflicts_dropped = int(dropped["_conflict"].sum())
    result.duplicates = len(dropped) - conflicts_dropped
    result.conflicts = len(conflict_keys)
    shown = set(conflict_keys[:REPORT_LIMIT])
    for (code, ts), group in dups[dups["_conflict"]].groupby(["code", "time"], sort=True):
        if (code, ts) not in shown:
            continue
        last = len(group) - 1
        for n, (_, row) in enumerate(group.iterrows()):
            result.conflict_rows.append({
                "code": code, "time": str(ts),
                "copy": f"{wheres[int(row['_file'])](int(row['_row']))}",
                "kept": n == last,
                **{c: row[c] for c in VALUES},
            })
    return result
