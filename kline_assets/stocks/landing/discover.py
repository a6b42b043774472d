"""Which landing files belong to a month.

A file belongs to the month named by the newest date token in its path relative to the landing
directory — `YYYY-MM`, `YYYY_MM`, `YYYY-MM-DD` or `YYYYMMDD` (a directory `2024-03/` or a file
`20240305.csv`) — so vendors can lay files out by month or by day. Files without one are read
for every month and filtered to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from kline_assets.lib.months import MonthWindow, month_label

CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")

_DATE_TOKEN = re.compile(
    r"(?<!\d)(?P<y>(?:19|20)\d{2})(?:[-_](?P<m1>0[1-9]|1[0-2])(?:[-_]\d{2})?"
    r"|(?P<m2>0[1-9]|1[0-2])\d{2})(?!\d)"
)


@dataclass(frozen=True)
class LandingFile:
    path: Path
    rel: str
    month: str | None  # "YYYY-MM" from the path, or None: read for every month

    @property
    def is_csv(self) -> bool:
        return self.path.name.lower().endswith(CSV_SUFFIXES)

    def where(self, index: int) -> str:
        """Human position of data row `index` (0-based): CSV line (header = 1) or Parquet row."""
        return f"line {index + 2}" if self.is_csv else f"row {index + 1}"


def month_of_path(rel: str) -> str | None:
    """The month named by the last date token of a relative path, or None."""
    found = None
    for m in _DATE_TOKEN.finditer(rel):
        found = f"{m['y']}-{m['m1'] or m['m2']}"
    return found


def discover(root: Path, window: MonthWindow) -> list[LandingFile]:
    """Landing files for the window's months (plus undated files), sorted by relative path:
    that order decides which copy of a duplicated bar wins."""
    if not root.is_dir():
        return []
    wanted = {month_label(m) for m in window.month_starts()}
    found = []
    for path in root.rglob("*"):
        name = path.name.lower()
        if not path.is_file() or name.startswith("."):
            continue
        if not name.endswith(CSV_SUFFIXES + PARQUET_SUFFIXES):
            continue
        rel = path.relative_to(root).as_posix()
        month = month_of_path(rel)
        if month is None or month in wanted:
            found.append(LandingFile(path, rel, month))
    return sorted(found, key=lambda f: f.rel)
