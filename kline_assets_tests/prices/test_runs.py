"""Drop, promote and compare runs on real embedded ClickHouse, against hand-built rows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from kline_assets.cli import cli
from kline_assets.lib.errors import InvalidRunIdError
from kline_assets.prices import runs as runs_module
from kline_assets.prices.compare import compare_runs, sort_scopes
from kline_assets.prices.partitions import create_run, registered_run_ids
from kline_assets.prices.runs import (
    PAUSE_ENV,
    RunOperationRefused,
    backup_name,
    backups,
    drop_run,
    list_runs,
    promote_run,
    prune_backups,
    run_partitions,
)
from kline_assets.prices.tables import PRICE_TABLES
from kline_assets.resources import ClickHouseResource
from kline_assets.resources.clickhouse.sql import read_frame, replace_partitions
from kline_assets_tests.support.runs import load_runs

TZ = "Asia/Tokyo"
KEYS = {"price_aligned": ["iphone_id", "shop_id", "bucket"],
        "cross_shop_agg": ["iphone_id", "bucket"],
        "features_wide": ["scope", "bucket"]}
BACKUP = "backup_20251121"


@pytest.fixture
def loaded(clickhouse):
    load_runs(clickhouse)
    with clickhouse.client():  # keep the engine open: nested client() calls reuse it
        yield clickhouse


def _rows(ch, table: str, run: str, where: str = "1") -> pd.DataFrame:
    with ch.client() as client:
        df = read_frame(client, ch.table(table), f"run_id = '{run}' AND {where}")
    return (df.drop(columns="run_id").sort_values(KEYS[table]).reset_index(drop=True))


def _count(ch, sql: str) -> int:
    with ch.client() as client:
        return int(client.command(sql))


def test_run_partitions_lists_the_runs_tuples(loaded):
    parts = run_partitions(loaded, "backfill_v3")
    assert parts["cross_shop_agg"] == [("backfill_v3", 202510), ("backfill_v3", 202511)]
    assert parts["features_wide"] == [("backfill_v3", 202510, "cohort"),
                                      ("backfill_v3", 202510, "iphone"),
                                      ("backfill_v3", 202511, "iphone")]
    assert run_partitions(loaded, "nothing_here") == {t: [] for t in PRICE_TABLES}


def test_drop_removes_only_that_run_without_mutations(loaded):
    before = {run: {t: len(_rows(loaded, t, run)) for t in PRICE_TABLES}
              for run in ("live", "backfill_v2")}
    expected = {t: len(p) for t, p in run_partitions(loaded, "backfill_v3").items()}
    started = time.perf_counter()
    dropped = drop_run(loaded, "backfill_v3")
    elapsed = time.perf_counter() - started
    assert dropped == expected == {"price_aligned": 2, "cross_shop_agg": 2, "features_wide": 3}
    assert run_partitions(loaded, "backfill_v3") == {t: [] for t in PRICE_TABLES}
    assert {run: {t: len(_rows(loaded, t, run)) for t in PRICE_TABLES}
            for run in ("live", "backfill_v2")} == before
    assert _count(loaded, f"SELECT count() FROM system.mutations "
                          f"WHERE database = '{loaded.db}'") == 0
    assert elapsed < 5
    assert drop_run(loaded, "backfill_v3") == dict.fromkeys(PRICE_TABLES, 0)

    with pytest.raises(RunOperationRefused, match="allow_live"):
        drop_run(loaded, "live")
    assert len(_rows(loaded, "features_wide", "live")) == before["live"]["features_wide"]
    assert drop_run(loaded, "live", allow_live=True)["features_wide"] == 5
    assert len(_rows(loaded, "features_wide", "live")) == 0


def test_promote_swaps_the_sources_partitions_and_keeps_a_backup(loaded):
    live_before = {t: _rows(loaded, t, "live") for t in PRICE_TABLES}
    result = promote_run(loaded, "backfill_v3", "live", backup=BACKUP)
    assert result["promoted"]["features_wide"]["partitions"] == 3
    assert result["backed_up"]["features_wide"]["partitions"] == 5
    for table in PRICE_TABLES:
        in_source = "toYYYYMM(bucket) IN (202510, 202511)"
        if table == "features_wide":  # live's 2025-11 cohort partition: not in the source
            in_source += " AND NOT (toYYYYMM(bucket) = 202511 AND scope LIKE 'cohort:%')"
        pd.testing.assert_frame_equal(_rows(loaded, table, "live", in_source),
                                      _rows(loaded, table, "backfill_v3"))
        untouched = _rows(loaded, table, "live", f"NOT ({in_source})")
        before = live_before[table]
        month = before["bucket"].dt.year * 100 + before["bucket"].dt.month
        keep = ~month.isin([202510, 202511])
        if table == "features_wide":
            keep |= (month == 202511) & before["scope"].str.startswith("cohort:")
        assert len(untouched) > 0
        pd.testing.assert_frame_equal(untouched, before[keep].reset_index(drop=True))
        pd.testing.assert_frame_equal(_rows(loaded, table, BACKUP), before)
    assert _count(loaded, f"SELECT count() FROM system.tables WHERE database = '{loaded.db}' "
                          "AND name LIKE '%staging%'") == 0

    # Another promote the same day: the backup is never overwritten, a suffixed one is taken.
    second = promote_run(loaded, "backfill_v2", "live", backup=BACKUP)
    assert second["backup"] == f"{BACKUP}_2" and not second["resumed"]
    pd.testing.assert_frame_equal(_rows(loaded, "price_aligned", BACKUP),
                                  live_before["price_aligned"])
    promote_run(loaded, "backfill_v2", "live")
    pd.testing.assert_frame_equal(
        _rows(loaded, "cross_shop_agg", "live", "toYYYYMM(bucket) = 202510"),
        _rows(loaded, "cross_shop_agg", "backfill_v2"))


def _reference(ch, table: str, base: str, target: str) -> pd.DataFrame:
    """compare_runs in pandas, on rows pulled from the (small) tables."""
    b, t = _rows(ch, table, base), _rows(ch, table, target)
    values = [c for c in b.columns if c not in KEYS[table] and c != "record_time"
              and c != "bucket"]
    m = b.merge(t, on=KEYS[table], how="outer", suffixes=("_b", "_t"), indicator=True)
    m["sc"] = m["scope"] if "scope" in m else "iphone:" + m["iphone_id"].astype(str)
    out = []
    for scope, g in m.groupby("sc"):
        both = g[g["_merge"] == "both"]
        for col in values:
            vb, vt = both[f"{col}_b"].astype("float64"), both[f"{col}_t"].astype("float64")
            diff = (vb - vt).abs().dropna()
            out.append({"table": table, "scope": scope, "column": col,
                        "rows_base": int((g["_merge"] != "right_only").sum()),
                        "rows_target": int((g["_merge"] != "left_only").sum()),
                        "only_in_base": int((g["_merge"] == "left_only").sum()),
                        "only_in_target": int((g["_merge"] == "right_only").sum()),
                        "max_abs_diff": diff.max() if len(diff) else np.nan,
                        "mean_abs_diff": diff.mean() if len(diff) else np.nan,
                        "null_mismatches": int((vb.isna() != vt.isna()).sum())})
    return pd.DataFrame(out)


def test_compare_matches_a_pandas_reference(loaded):
    report = compare_runs(loaded, "live", "backfill_v3")
    assert list(report["table"].unique()) == list(PRICE_TABLES)
    for table in PRICE_TABLES:
        got = report[report["table"] == table].reset_index(drop=True)
        want = _reference(loaded, table, "live", "backfill_v3")
        want = want.set_index(["scope", "column"]).loc[
            list(zip(got["scope"], got["column"], strict=True))].reset_index()
        pd.testing.assert_frame_equal(got, want[got.columns], check_exact=False, rtol=1e-9)
    assert set(report.loc[report["table"] == "price_aligned", "column"]) == {
        "price_new", "price_a", "price_b", "alignment_diff_sec"}

    fw = report[report["table"] == "features_wide"].set_index(["scope", "column"])
    # iphone:10: live 3 months × 4 buckets; backfill_v3 2 × 3 (one skipped) + 1 extra
    assert fw.loc[("iphone:10", "mean"), ["rows_base", "rows_target"]].tolist() == [12, 7]
    assert fw.loc[("iphone:10", "mean"), "only_in_base"] == 6  # 2025-09 and the skipped ones
    assert fw.loc[("iphone:10", "mean"), "only_in_target"] == 1
    assert fw.loc[("iphone:10", "ema_120"), "max_abs_diff"] > 2.5 - 1e-9
    assert fw.loc[("iphone:11", "mean"), "rows_target"] == 0
    assert np.isnan(fw.loc[("iphone:11", "mean"), "max_abs_diff"])
    assert fw.loc[("cohort:pro", "mean"), "null_mismatches"] == 0
    assert fw.loc[("iphone:10", "boll_up_900"), "null_mismatches"] == 0
    pa_ = report[report["table"] == "price_aligned"].set_index("column")
    assert pa_.loc["price_a", "null_mismatches"] == 0  # same pattern in both runs
    agg = report[report["table"] == "cross_shop_agg"].set_index("column")
    assert agg.loc["std", "max_abs_diff"] == pytest.approx(2.5)

    only = compare_runs(loaded, "live", "backfill_v3", tables=["cross_shop_agg"])
    assert set(only["table"]) == {"cross_shop_agg"}


def test_compare_counts_null_on_one_side_as_mismatch(clickhouse):
    rows = pd.DataFrame({
        "run_id": ["live", "live", "exp", "exp"],
        "bucket": pd.to_datetime(["2025-10-01 00:00", "2025-10-01 00:15"] * 2).tz_localize(TZ),
        "iphone_id": [1, 1, 1, 1], "mean": [1.0, None, None, 4.0], "shop_count": [1, 0, 0, 3],
        "quorum_met": [0, 0, 0, 0], "std": [None, None, None, None],
    })
    with clickhouse.client() as client:
        replace_partitions(client, clickhouse.table("cross_shop_agg"), rows,
                           [("live", 202510), ("exp", 202510)])
    report = compare_runs(clickhouse, "live", "exp", tables=["cross_shop_agg"])
    r = report.set_index("column")
    assert r.loc["mean", "null_mismatches"] == 2
    assert np.isnan(r.loc["mean", "max_abs_diff"])
    assert r.loc["std", "null_mismatches"] == 0
    assert r.loc["shop_count", "max_abs_diff"] == 3 and r.loc["shop_count", "mean_abs_diff"] == 2


def test_malformed_run_ids_are_refused(clickhouse):
    for bad in ("Live", "a|b", "", "x" * 65, "back-fill", "live; DROP TABLE x"):
        calls = [(drop_run, (bad,), {}), (run_partitions, (bad,), {}),
                 (promote_run, (bad,), {}), (promote_run, ("backfill_v3", bad), {}),
                 (promote_run, ("backfill_v3",), {"backup": bad}),
                 (compare_runs, ("live", bad), {}), (compare_runs, (bad, "live"), {})]
        for func, args, kwargs in calls:
            with pytest.raises(InvalidRunIdError, match="malformed run id"):
                func(clickhouse, *args, **kwargs)


def test_unknown_runs_are_named_with_the_runs_present(loaded):
    msg = r"'backfill_v9' has no data.*runs present: backfill_v2, backfill_v3, live"
    with pytest.raises(InvalidRunIdError, match=msg):
        promote_run(loaded, "backfill_v9")
    with pytest.raises(InvalidRunIdError, match=msg):
        compare_runs(loaded, "backfill_v9", "live")
    with pytest.raises(InvalidRunIdError, match="same run"):
        promote_run(loaded, "live", "live")


@pytest.mark.slow
def test_cli_compare_drop_and_promote(loaded, clickhouse_dsn, monkeypatch, tmp_path):
    monkeypatch.setenv("KLINE_CLICKHOUSE_DSN", clickhouse_dsn)
    monkeypatch.setenv("KLINE_CLICKHOUSE_DATABASE", loaded.db)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    runner = CliRunner()

    out = runner.invoke(cli, ["runs", "compare", "live", "backfill_v3", "--limit", "3"])
    assert out.exit_code == 0, out.output
    assert "features_wide: 3 scopes" in out.output and "max |base−target|" in out.output
    assert "more rows (--limit 0 shows all)" in out.output and " s\n" in out.output
    out = runner.invoke(cli, ["runs", "compare", "live", "nope"])
    assert out.exit_code == 2 and out.stderr.startswith("error: ") and "'nope'" in out.stderr

    assert runner.invoke(cli, ["runs", "create", "backfill_v2"]).exit_code == 0
    out = runner.invoke(cli, ["runs", "drop", "backfill_v2"], input="n\n")
    assert out.exit_code == 1 and "Aborted" in out.output
    assert run_partitions(loaded, "backfill_v2")["cross_shop_agg"]
    out = runner.invoke(cli, ["runs", "drop", "backfill_v2", "--yes"])
    assert out.exit_code == 0, out.output
    assert "unregistered from Dagster" in out.output
    assert run_partitions(loaded, "backfill_v2") == {t: [] for t in PRICE_TABLES}
    assert "backfill_v2" not in runner.invoke(cli, ["runs", "list"]).output
    out = runner.invoke(cli, ["runs", "drop", "live", "--yes"])
    assert out.exit_code == 2 and "--allow-live" in out.stderr, out.stderr

    out = runner.invoke(cli, ["runs", "promote", "backfill_v3"])
    assert out.exit_code == 0, out.output
    backup = datetime.now(ZoneInfo(TZ)).strftime("backup_%Y%m%d")
    assert f"backed up live to {backup}" in out.output
    assert "promoted backfill_v3 to live" in out.output
    listed = json.loads(runner.invoke(cli, ["runs", "list", "--json"]).output)
    assert {r["run_id"]: r["kind"] for r in listed if r["registered"]} == {
        "live": "live", backup: "backup"}
    assert run_partitions(loaded, backup)["price_aligned"]
    from dagster import AssetKey, DagsterInstance

    with DagsterInstance.get() as instance:  # the promoted partitions show as materialized
        event = instance.get_latest_materialization_event(AssetKey("cohorts"))
        assert event.asset_materialization.partition.endswith("|live")
        assert event.asset_materialization.metadata["promoted_from"].value == "backfill_v3"


# --- promote converges after a crash; readers never see an empty or mixed month -------------

def _promote_process(clickhouse_dsn: str, ch, home, pause_at: str) -> subprocess.Popen:
    env = {**os.environ, "KLINE_CLICKHOUSE_DSN": clickhouse_dsn,
           "KLINE_CLICKHOUSE_DATABASE": ch.db, "DAGSTER_HOME": str(home),
           PAUSE_ENV: pause_at}
    return subprocess.Popen([sys.executable, "-m", "kline_assets.cli", "runs", "promote",
                             "backfill_v3"], env=env, stderr=subprocess.PIPE, text=True)


def _kill_at(proc: subprocess.Popen, point: str) -> None:
    """Wait until the promote announces `point`, then kill -9 it there."""
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if f"paused at {point}" in line:
            break
    else:
        proc.wait()
        pytest.fail(f"promote never reached {point}: {''.join(lines)[-2000:]}")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()


@pytest.mark.slow
@pytest.mark.parametrize("point", ["backed_up", "promote:swap:1"])
def test_promote_killed_at_any_point_converges_when_rerun(clickhouse, clickhouse_dsn, tmp_path,
                                                          monkeypatch, point):
    load_runs(clickhouse)
    original = {t: _rows(clickhouse, t, "live") for t in PRICE_TABLES}
    _kill_at(_promote_process(clickhouse_dsn, clickhouse, tmp_path, point), point)
    backup = backup_name()
    if point == "promote:swap:1":  # the target is half-promoted now
        assert not _rows(clickhouse, "price_aligned", "live").equals(original["price_aligned"])

    monkeypatch.setenv("KLINE_CLICKHOUSE_DSN", clickhouse_dsn)
    monkeypatch.setenv("KLINE_CLICKHOUSE_DATABASE", clickhouse.db)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    out = CliRunner().invoke(cli, ["runs", "promote", "backfill_v3"])
    assert out.exit_code == 0, out.output
    assert "resumed an unfinished promote" in out.output

    # One backup, equal to live before the first attempt; live equals a promote that was
    # never interrupted.
    assert [r for r in list_runs(clickhouse) if r.startswith("backup_")] == [backup]
    for table in PRICE_TABLES:
        pd.testing.assert_frame_equal(_rows(clickhouse, table, backup), original[table])
    reference = ClickHouseResource(dsn=clickhouse_dsn, database=clickhouse.db + "_ref")
    reference.ensure_schema()
    try:
        load_runs(reference)
        promote_run(reference, "backfill_v3", "live")
        for table in PRICE_TABLES:
            pd.testing.assert_frame_equal(
                _rows(clickhouse, table, "live").drop(columns="inserted_at", errors="ignore"),
                _rows(reference, table, "live").drop(columns="inserted_at", errors="ignore"))
    finally:
        reference.drop_database()
    assert _count(clickhouse, f"SELECT count() FROM system.tables WHERE database = "
                              f"'{clickhouse.db}' AND name LIKE '%staging%'") == 0


def _live_months(ch) -> dict[tuple[str, int], tuple[int, float]]:
    """(table, month) → (rows, sum of mean) of live, FINAL, in one query per table."""
    out = {}
    with ch.client() as client:
        for table in ("cross_shop_agg", "features_wide"):
            where = "run_id = 'live'" + (" AND scope LIKE 'iphone:%'"
                                         if table == "features_wide" else "")
            for m, n, total in client.query(
                    f"SELECT toYYYYMM(bucket) AS m, count(), round(sum(mean), 6) "
                    f"FROM {ch.table(table)} FINAL WHERE {where} GROUP BY m").result_rows:
                out[(table, int(m))] = (int(n), float(total))
    return out


@pytest.mark.slow
def test_a_reader_during_a_promote_never_sees_an_empty_or_mixed_month(clickhouse):
    load_runs(clickhouse)
    before = _live_months(clickhouse)
    wanted, served = threading.Event(), threading.Event()
    seen: list[dict] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            if wanted.wait(timeout=0.05):
                wanted.clear()
                seen.append(_live_months(clickhouse))
                served.set()

    def between_swaps(point: str) -> None:  # hand the store to the reader between two swaps
        if point.startswith("promote:swap:"):
            wanted.set()
            assert served.wait(timeout=60)
            served.clear()

    thread = threading.Thread(target=reader)
    thread.start()
    monkey = runs_module.checkpoint_hook
    runs_module.checkpoint_hook = between_swaps
    try:
        promote_run(clickhouse, "backfill_v3", "live")
    finally:
        runs_module.checkpoint_hook = monkey
        stop.set()
        thread.join()
    after = _live_months(clickhouse)
    assert len(seen) >= 5 and before != after
    assert set(after) == set(before)  # the source has every month live had, or it stayed
    for snapshot in seen:
        assert set(snapshot) == set(before), "a live month vanished during the promote"
        for key, value in snapshot.items():
            assert value in (before[key], after[key]), f"{key}: a mix of runs {value}"
    assert any(s != before and s != after for s in seen)  # the reader did read between swaps


# --- runs list / compare for people and machines; malformed ids -----------------------------

def test_runs_list_and_compare_json(loaded, clickhouse_dsn, monkeypatch, tmp_path):
    monkeypatch.setenv("KLINE_CLICKHOUSE_DSN", clickhouse_dsn)
    monkeypatch.setenv("KLINE_CLICKHOUSE_DATABASE", loaded.db)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    runner = CliRunner()
    from kline_assets.lib.instance import get_instance

    instance = get_instance()
    create_run(instance, "live")
    instance.add_dynamic_partitions("run_id", ["Bad-Name"])  # the UI's "Add a partition"

    listed = {r["run_id"]: r for r in json.loads(
        runner.invoke(cli, ["runs", "list", "--json"]).output)}
    assert set(listed) == {"live", "backfill_v3", "backfill_v2", "Bad-Name"}
    live = listed["live"]
    assert live["kind"] == "live" and live["registered"]
    assert live["months"] == ["2025-09", "2025-10", "2025-11"]
    assert live["rows"]["price_aligned"] == 3 * 4 * 2
    assert live["first_bucket"].startswith("2025-09-01T00:00")
    assert listed["backfill_v3"]["registered"] is False
    assert listed["Bad-Name"]["kind"] == "invalid" and listed["Bad-Name"]["rows"] == {
        t: 0 for t in PRICE_TABLES}
    out = runner.invoke(cli, ["runs", "list"])
    assert out.exit_code == 0 and "price_aligned rows" in out.output
    assert "'Bad-Name' is malformed" in out.output

    out = runner.invoke(cli, ["runs", "drop", "Bad-Name", "--yes"])
    assert out.exit_code == 0 and "unregistered malformed run id 'Bad-Name'" in out.output
    assert "Bad-Name" not in registered_run_ids(instance)
    out = runner.invoke(cli, ["runs", "drop", "nosuch", "--yes"])
    assert out.exit_code == 2 and "'nosuch'" in out.stderr

    # rows of live per scope: iphone:10 and iphone:11 12 each, cohort:pro 8
    report = json.loads(runner.invoke(cli, ["runs", "compare", "live", "backfill_v3",
                                            "--json"]).output)
    assert report["tables"]["features_wide"]["rows_base"] == 12 + 12 + 8
    scopes = [r["scope"] for r in report["rows"] if r["table"] == "features_wide"]
    assert scopes == sorted(scopes, key=lambda s: (s.split(":")[0], s))
    same = json.loads(runner.invoke(cli, ["runs", "compare", "live", "live", "--json"]).output)
    assert same["rows"] == [] and same["tables"]["price_aligned"]["scopes_differing"] == 0
    everything = json.loads(runner.invoke(cli, ["runs", "compare", "live", "live", "--json",
                                                "--all"]).output)
    assert len(everything["rows"]) > 0
    out = runner.invoke(cli, ["runs", "compare", "live", "live"])
    assert out.exit_code == 0 and "identical" in out.output and "iphone:10" not in out.output


def test_scopes_sort_numerically():
    report = pd.DataFrame({"table": "features_wide", "scope": ["iphone:10", "cohort:pro",
                                                               "iphone:2", "cohort:air"],
                           "column": "mean"})
    assert sort_scopes(report)["scope"].tolist() == ["cohort:air", "cohort:pro", "iphone:2",
                                                     "iphone:10"]


def test_keep_backups_prunes_the_oldest(loaded):
    for name in ("backup_20251101", "backup_20251120_2", "backup_20251120", "backup_20251009"):
        promote_run(loaded, "backfill_v2", name)
    assert backups(loaded) == ["backup_20251009", "backup_20251101", "backup_20251120",
                               "backup_20251120_2"]
    assert prune_backups(loaded, 2) == ["backup_20251009", "backup_20251101"]
    assert backups(loaded) == ["backup_20251120", "backup_20251120_2"]


def test_an_old_unfinished_promote_is_not_resumed(loaded):
    """Killed two days ago and never re-run: live has moved on, so a new promote backs it up
    afresh instead of trusting the old backup."""
    with loaded.client() as client:
        client.command(
            f"INSERT INTO {loaded.table('promote_journal')} (id, source, target, backup, phase, at)"
            " VALUES ('old', 'backfill_v3', 'live', 'backup_20200101', 'backed_up', "
            "now64(3) - INTERVAL 2 DAY)")
    result = promote_run(loaded, "backfill_v3", "live", backup=BACKUP)
    assert not result["resumed"] and result["backup"] == BACKUP and result["backed_up"]
