"""Comparing two runs in ClickHouse: per table, scope and numeric column, row counts, keys in
only one run, max/mean absolute difference and NULL mismatches — computed month by month in
SQL, never by pulling rows into Python."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from clickhouse_connect.driver.client import Client

from kline_assets.lib.errors import KlineError
from kline_assets.prices.partitions import validate_run_id
from kline_assets.prices.runs import KEYS, SCOPE_EXPR, require_data
from kline_assets.prices.tables import PRICE_TABLES
from kline_assets.resources.clickhouse import ClickHouseResource
from kline_assets.resources.clickhouse import cluster as cl
from kline_assets.resources.clickhouse.sql import describe_columns, quote_literal

_NOT_VALUES = {"run_id", "inserted_at"}
_NUMERIC = ("Int", "UInt", "Float", "Decimal")
COMPARE_COLUMNS = ["table", "scope", "column", "rows_base", "rows_target", "only_in_base",
                   "only_in_target", "max_abs_diff", "mean_abs_diff", "null_mismatches"]
def _value_columns(client: Client, full_table: str, keys: Sequence[str]) -> list[str]:
    return [
        name for name, ch_type in describe_columns(client, full_table)
        if name not in _NOT_VALUES and name not in keys
        and ch_type.removeprefix("Nullable(").startswith(_NUMERIC)
    ]


def _compare_sql(full: str, table: str, values: Sequence[str], base: str, target: str,
                 month: int) -> str:
    """Per scope of one month: counts, and per value column max/sum/count of |b − t| and NULL
    mismatches. One row per key and run after FINAL, so a key's values are anyIf(…, run)."""
    keys = ", ".join(k for k in KEYS[table] if k != "scope")
    is_b, is_t = f"run_id = {quote_literal(base)}", f"run_id = {quote_literal(target)}"
    # NaN counts as missing, like NULL; v/b/t{i} aliases never collide with column names.
    cleaned = [f"if(isNaN(toFloat64({c})), NULL, toFloat64({c})) AS v{i}"
               for i, c in enumerate(values)]
    per_key = [f"anyIf(v{i}, {is_b}) AS b{i}, anyIf(v{i}, {is_t}) AS t{i}"
               for i in range(len(values))]
    per_scope = [f"max(abs(b{i} - t{i})) AS max{i}, sum(ifNull(abs(b{i} - t{i}), 0)) AS sum{i}, "
                 f"count(abs(b{i} - t{i})) AS n{i}, "
                 f"countIf(pb AND pt AND (isNull(b{i}) != isNull(t{i}))) AS nm{i}"
                 for i in range(len(values))]
    return f"""
        SELECT {", ".join(["sc AS scope", "countIf(pb) AS rows_base", "countIf(pt) AS rows_target",
                           "countIf(pb AND NOT pt) AS only_in_base",
                           "countIf(pt AND NOT pb) AS only_in_target", *per_scope])}
        FROM (
            SELECT {", ".join(["sc", keys, f"countIf({is_b}) > 0 AS pb",
                               f"countIf({is_t}) > 0 AS pt", *per_key])}
            FROM (
                SELECT {", ".join(["run_id", f"{SCOPE_EXPR[table]} AS sc", keys, *cleaned])}
                FROM {full} FINAL
                WHERE run_id IN ({quote_literal(base)}, {quote_literal(target)})
                  AND toYYYYMM(bucket) = {month}
            )
            GROUP BY sc, {keys}
        )
        GROUP BY sc
    """


def _compare_table(client: Client, ch: ClickHouseResource, table: str, base: str, target: str,
                   months: Sequence[int]) -> pd.DataFrame:
    """Long-form rows of one table; month by month, so memory stays that of one month."""
    full = ch.table(table)
    values = _value_columns(client, full, KEYS[table])
    per_month = [client.query_df(_compare_sql(full, table, values, base, target, m),
                                 settings=cl.reads()) for m in months]
    per_month = [df for df in per_month if not df.empty]
    if not per_month:
        return pd.DataFrame(columns=COMPARE_COLUMNS)
    wide = pd.concat(per_month, ignore_index=True)
    numbers = wide.drop(columns="scope").apply(pd.to_numeric, errors="coerce")
    wide = pd.concat([wide["scope"].astype(str), numbers.astype("float64")], axis=1)
    maxes = [c for c in numbers.columns if c.startswith("max")]
    grouped = wide.groupby("scope", sort=True)
    wide = pd.concat([grouped[maxes].max(), grouped[numbers.columns.drop(maxes)].sum()],
                     axis=1).reset_index()
    counts = ["rows_base", "rows_target", "only_in_base", "only_in_target"]
    frames = []
    for i, column in enumerate(values):
        part = wide[["scope", *counts]].copy()
        part.insert(0, "table", table)
        part.insert(2, "column", column)
        part["max_abs_diff"] = wide[f"max{i}"]
        n = wide[f"n{i}"]
        part["mean_abs_diff"] = (wide[f"sum{i}"] / n).where(n > 0)
        part["null_mismatches"] = wide[f"nm{i}"]
        part["_order"] = i
        frames.append(part)
    out = pd.concat(frames, ignore_index=True).sort_values(["scope", "_order"], kind="stable")
    for col in (*counts, "null_mismatches"):
        out[col] = out[col].astype("int64")
    return out[COMPARE_COLUMNS].reset_index(drop=True)


def compare_runs(ch: ClickHouseResource, base: str, target: str,
                 tables: Sequence[str] | None = None) -> pd.DataFrame:
    """Per table × scope × numeric column: rows in each run, keys in only one, |base − target|.

    Keys: price_aligned (iphone_id, shop_id, bucket) and cross_shop_agg (iphone_id, bucket)
    under scope `iphone:<id>`; features_wide (scope, bucket). `only_in_*` count keys (for
    price_aligned a key is a shop's bucket). Differences are over keys present in both runs
    with a value on both sides (NaN = NULL); a value on one side and NULL on the other counts
    in `null_mismatches`. No common values → NaN differences. Columns: COMPARE_COLUMNS.
    """
    validate_run_id(base)
    validate_run_id(target)
    chosen = list(tables) if tables else list(PRICE_TABLES)
    unknown = sorted(set(chosen) - set(PRICE_TABLES))
    if unknown:
        raise KlineError(f"unknown table(s) {unknown}; choose from {', '.join(PRICE_TABLES)}")
    with ch.client() as client:
        parts = [*require_data(client, ch, base, "base"),
                 *require_data(client, ch, target, "target")]
        frames = [
            _compare_table(client, ch, table, base, target,
                           sorted({int(p.values[1]) for p in parts if p.table == table}))
            for table in PRICE_TABLES if table in chosen
        ]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=COMPARE_COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    for col in ("table", "scope", "column"):
        out[col] = out[col].astype(str)
    return out


def _scope_order(scope: str) -> tuple[str, int, str]:
    """iphone:2 before iphone:10: the kind, then the id as a number (slugs by name)."""
    kind, _, rest = scope.partition(":")
    return (kind, int(rest), "") if rest.isdigit() else (kind, -1, rest)


def sort_scopes(report: pd.DataFrame) -> pd.DataFrame:
    """The report with tables in pipeline order and scopes in numeric order (columns keep
    their table order)."""
    if report.empty:
        return report
    order = report["scope"].map(_scope_order)
    keyed = report.assign(
        _t=report["table"].map({t: i for i, t in enumerate(PRICE_TABLES)}),
        _k=order.str[0], _n=order.str[1], _s=order.str[2], _i=range(len(report)))
    return (keyed.sort_values(["_t", "_k", "_n", "_s", "_i"], kind="stable")
            .drop(columns=["_t", "_k", "_n", "_s", "_i"]).reset_index(drop=True))


def differing(report: pd.DataFrame) -> pd.DataFrame:
    """Rows where the runs differ: row counts, keys in one run only, a value or a NULL."""
    diff = ((report["rows_base"] != report["rows_target"]) | (report["only_in_base"] > 0)
            | (report["only_in_target"] > 0) | (report["max_abs_diff"].fillna(0) > 0)
            | (report["null_mismatches"] > 0))
    return report[diff].reset_index(drop=True)


def summarize(report: pd.DataFrame) -> dict[str, dict]:
    """Per table: scopes, scopes that differ, rows and keys in one run only (per scope, not per
    column), the largest |difference| (None when no common value) and NULL mismatches."""
    out = {}
    diff_scopes = differing(report).groupby("table")["scope"].nunique()
    for table, part in report.groupby("table", sort=False):
        scopes = part.drop_duplicates("scope")
        biggest = part["max_abs_diff"].max()
        out[str(table)] = {
            "scopes": len(scopes), "scopes_differing": int(diff_scopes.get(table, 0)),
            "rows_base": int(scopes["rows_base"].sum()),
            "rows_target": int(scopes["rows_target"].sum()),
            "only_in_base": int(scopes["only_in_base"].sum()),
            "only_in_target": int(scopes["only_in_target"].sum()),
            "max_abs_diff": None if pd.isna(biggest) else float(biggest),
            "null_mismatches": int(part["null_mismatches"].sum()),
        }
    return out


def compare_markdown(report: pd.DataFrame, base: str, target: str, limit: int = 50) -> str:
    """The report as markdown (for run metadata): a summary per table, then the rows that
    differ (at most `limit`)."""
    summary = pd.DataFrame.from_dict(summarize(report), orient="index")
    rows = differing(sort_scopes(report))
    text = [f"**base** `{base}` → **target** `{target}`", "",
            summary.to_markdown() if not summary.empty else "no rows in either run", ""]
    if rows.empty:
        text.append("No differences.")
    else:
        first = f", first {limit}" if len(rows) > limit else ""
        text.append(f"Differences ({len(rows)} rows{first}):")
        text += ["", rows.head(limit).to_markdown(index=False)]
    return "\n".join(text)
