"""Column lists read from the DDL files in `sql/`, so what the Dagster UI shows of a table
(its column schema) is declared once, where the table is created, and cannot drift from it.

Only what a column schema needs is read: each column's name and its type as written, without
constraints (`NOT NULL`, `DEFAULT …`, `PRIMARY KEY`, `REFERENCES …`) or comments.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from dagster import TableColumn, TableSchema

_CONSTRAINT = re.compile(
    r"\s+(?:NOT\s+NULL|NULL|DEFAULT|PRIMARY\s+KEY|REFERENCES|UNIQUE|CHECK|CODEC|COMMENT)\b.*$",
    re.I | re.S)
_TABLE_CONSTRAINT = re.compile(r"(?:PRIMARY\s+KEY|UNIQUE|CONSTRAINT|FOREIGN\s+KEY|CHECK)\b", re.I)


def _split_top_level(body: str) -> list[str]:
    """Split on commas outside parentheses and quotes (`DateTime('Asia/Tokyo')` is one type)."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(body):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    return [p.strip() for p in parts if p.strip()]


@cache
def ddl_columns(path: Path, table: str) -> tuple[tuple[str, str], ...]:
    """(name, type) of each column of `CREATE TABLE [IF NOT EXISTS] <table> (…)` in `path`,
    in order; `table` as written there (a placeholder such as `{view}` too)."""
    text = "\n".join(line.split("--", 1)[0] for line in path.read_text().splitlines())
    head = re.search(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?" + re.escape(table) + r"\s*\(",
                     text, re.I)
    if head is None:
        raise LookupError(f"{path} creates no table {table}")
    depth, i = 1, head.end()
    while depth:
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        i += 1
    columns = []
    for item in _split_top_level(text[head.end():i - 1]):
        if _TABLE_CONSTRAINT.match(item):
            continue
        name, kind = item.split(None, 1)
        columns.append((name, _CONSTRAINT.sub("", kind).strip()))
    return tuple(columns)


def ddl_schema(path: Path, table: str, descriptions: Mapping[str, str] | None = None
               ) -> TableSchema:
    """The Dagster column schema of a table as its DDL creates it, with descriptions by name."""
    descriptions = descriptions or {}
    return TableSchema(columns=[TableColumn(name, kind, description=descriptions.get(name))
                                for name, kind in ddl_columns(path, table)])
