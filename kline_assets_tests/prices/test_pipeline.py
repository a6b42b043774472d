"""`kline pipeline` end to end on a small demo window, on real PostgreSQL and embedded
ClickHouse, through a Dagster instance the way the UI sees it."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner
from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    RunsFilter,
    job,
    materialize,
    op,
    resource,
)

from kline_assets.cli import cli
from kline_assets.lib.errors import KlineError
from kline_assets.prices.assets import (
    cohorts,
    cross_shop_agg,
    features_wide,
    price_aligned,
    raw_price_records,
)
from kline_assets.prices.compare import compare_runs, differing
from kline_assets.prices.partitions import create_run
from kline_assets.prices.pipeline import (
    PIPELINE_TAG,
    PipelinePlan,
    failure_message,
    month_range,
    parse_steps,
    run_pipeline,
    was_interrupted,
)
from kline_assets.prices.run_config import PriceRun
from kline_assets.prices.runs import asset_month_counts
from kline_assets.resources.clickhouse.sql import read_frame

pytestmark = pytest.mark.slow  # whole pipelines, `kline pipeline` and its Ctrl-C in subprocesses

MONTHS = ["2025-10-01", "2025-11-01"]


def _frame(ch, table: str, run_id: str):
    with ch.client() as client:
        return read_frame(client, ch.table(table), f"run_id = '{run_id}'")


def _materialized(instance: DagsterInstance, asset: str, run_id: str) -> list[str]:
    keys = [f"{m}|{run_id}" for m in MONTHS]
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=keys), limit=100).records
    return sorted(r.partition_key for r in records)


def test_month_range_and_steps_are_checked_before_anything_runs():
    assert month_range("2025-10-01", "2025-11-30") == MONTHS
    assert month_range("2025-10", "2025-10") == ["2025-10-01"]
    with pytest.raises(KlineError, match="--from is after --to"):
        month_range("2025-11", "2025-10")
    with pytest.raises(KlineError, match="not price partitions"):
        month_range("2024-12", "2025-01")
    with pytest.raises(KlineError, match="--to '2025-13'"):
        month_range("2025-10", "2025-13")
    assert parse_steps("cohorts,align") == ["align", "cohorts"]  # dependency order
    with pytest.raises(KlineError, match="unknown step"):
        parse_steps("align,features_wide")


def test_pipeline_equals_materializing_each_asset(demo_source, instance):
    ch = demo_source["clickhouse"]
    seen = []
    outcome = run_pipeline(instance, demo_source, PipelinePlan("pipe", MONTHS, parse_steps("")),
                           progress=lambda i, n, m, s, done: seen.append((i, m[:7], s, done)))
    assert outcome.registered and not outcome.failed and not outcome.interrupted
    assert [(m, s) for _, m, s, d in seen if d is not None] == [
        ("2025-10", "align"), ("2025-10", "aggregate"), ("2025-10", "features"),
        ("2025-10", "cohorts"), ("2025-11", "align"), ("2025-11", "aggregate"),
        ("2025-11", "features"), ("2025-11", "cohorts")]

    create_run(instance, "per_asset")
    for month in MONTHS:  # the reference: every asset materialized directly, month by month
        assert materialize([raw_price_records, price_aligned, cross_shop_agg, features_wide,
                            cohorts], selection=[price_aligned, cross_shop_agg, features_wide,
                                                 cohorts],
                           partition_key=f"{month}|per_asset", resources=demo_source,
                           instance=instance).success
    report = compare_runs(ch, "per_asset", "pipe")
    assert not report.empty and differing(report).empty
    counts = asset_month_counts(ch, "pipe")
    assert all(counts[a].get(m) for a in counts for m in ("2025-10", "2025-11")), counts

    # The UI's view: one Dagster run per month × step, tagged, with the run's config; every
    # asset partition materialized.
    runs = instance.get_runs(RunsFilter(tags={PIPELINE_TAG: outcome_tag(instance)}))
    assert len(runs) == 8 and all(r.job_name == "price_assets" for r in runs)
    assert all("price_run" in r.run_config["resources"] for r in runs)
    for asset in ("price_aligned", "cross_shop_agg", "features_wide", "cohorts"):
        assert _materialized(instance, asset, "pipe") == [f"{m}|pipe" for m in MONTHS]


def outcome_tag(instance: DagsterInstance) -> str:
    tags = {r.tags.get(PIPELINE_TAG) for r in instance.get_runs() if PIPELINE_TAG in r.tags}
    assert len(tags) == 1
    return tags.pop()


def test_subset_run_touches_only_its_iphones(demo_source, instance):
    ch = demo_source["clickhouse"]
    plan = PipelinePlan("subset", ["2025-10-01"], parse_steps(""),
                        PriceRun(iphone_ids=[1, 2], shop_ids=[1, 2, 3]))
    outcome = run_pipeline(instance, demo_source, plan)
    assert not outcome.failed, outcome.failed
    aligned = _frame(ch, "price_aligned", "subset")
    assert set(aligned["iphone_id"]) == {1, 2} and set(aligned["shop_id"]) <= {1, 2, 3}
    assert set(_frame(ch, "cross_shop_agg", "subset")["iphone_id"]) == {1, 2}
    scopes = set(_frame(ch, "features_wide", "subset")["scope"])
    assert {s for s in scopes if s.startswith("iphone:")} == {"iphone:1", "iphone:2"}
    # Cohorts are over the subset's members only: each cohort row's shop count is the sum of
    # its members' in the subset, never more than 2 iPhones × 3 shops.
    cohort_rows = _frame(ch, "features_wide", "subset")
    cohort_rows = cohort_rows[cohort_rows["scope"].str.startswith("cohort:")]
    assert len(cohort_rows) and cohort_rows["shop_count"].max() <= 6


def test_steps_run_only_those_assets_and_a_failure_names_the_cause(demo_source, instance):
    ch = demo_source["clickhouse"]
    outcome = run_pipeline(instance, demo_source,
                           PipelinePlan("steps", ["2025-10-01"], parse_steps("align")))
    assert not outcome.failed and [d.step for d in outcome.written] == ["align"]
    counts = asset_month_counts(ch, "steps")
    assert counts["price_aligned"]["2025-10"] > 0
    assert counts["cross_shop_agg"] == counts["features_wide"] == counts["cohorts"] == {}
    assert _materialized(instance, "price_aligned", "steps") == ["2025-10-01|steps"]
    assert _materialized(instance, "cross_shop_agg", "steps") == []

    # November's features without November's cross_shop_agg: the step fails, the pipeline
    # stops there and says why.
    outcome = run_pipeline(instance, demo_source,
                           PipelinePlan("steps", ["2025-11-01"], parse_steps("features")))
    assert outcome.failed is not None and outcome.written == []
    assert "cross_shop_agg" in outcome.failed.error


def test_ctrl_c_stops_between_steps_saying_what_was_written(demo_source, instance):
    def interrupt(i, total, month, step, done):
        if done is None and i == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # raised by the progress callback itself
        run_pipeline(instance, demo_source,
                     PipelinePlan("stop", ["2025-10-01"], parse_steps("")), interrupt)

    def interrupt_in_run(i, total, month, step, done):
        if done is None and i == 2:
            import signal
            import threading

            def once_the_step_computes() -> None:
                # Ctrl-C inside the step's body, not while Dagster writes its events (where
                # it delays interrupts): wait for the step to start.
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    runs = instance.get_runs(limit=1)
                    if runs and any(e.step_key == "cross_shop_agg" and e.is_step_start for e in
                                    instance.all_logs(runs[0].run_id) if e.is_dagster_event
                                    for e in [e.dagster_event]):
                        signal.raise_signal(signal.SIGINT)
                        return
                    time.sleep(0.01)

            threading.Thread(target=once_the_step_computes, daemon=True).start()

    outcome = run_pipeline(instance, demo_source,
                           PipelinePlan("stop", ["2025-10-01"], parse_steps("")),
                           interrupt_in_run)
    assert outcome.interrupted
    assert [d.step for d in outcome.written] == ["align"]


def test_a_ctrl_c_while_a_run_sets_up_its_resources_counts_as_interrupted(instance):
    """Dagster fails the run itself ("Execution was interrupted"), with no failed step: the
    pipeline must still stop as interrupted, not as a failure."""
    @resource
    def opening(_):
        raise KeyboardInterrupt

    @op(required_resource_keys={"store"})
    def step(_):
        return 1

    @job(resource_defs={"store": opening})
    def one_step():
        step()

    result = one_step.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    assert was_interrupted(result, failure_message(result))


def test_cli_pipeline(demo_source, clickhouse_dsn, monkeypatch, tmp_path):
    ch = demo_source["clickhouse"]
    monkeypatch.setenv("KLINE_PG_DSN", demo_source["postgres"].dsn)
    monkeypatch.setenv("KLINE_CLICKHOUSE_DSN", clickhouse_dsn)
    monkeypatch.setenv("KLINE_CLICKHOUSE_DATABASE", ch.db)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    runner = CliRunner()
    out = runner.invoke(cli, ["pipeline", "--run-id", "cli_run", "--from", "2025-11",
                              "--to", "2025-10"])
    assert out.exit_code == 2 and "--from is after --to" in out.output
    out = runner.invoke(cli, ["pipeline", "--run-id", "Bad-Name", "--from", "2025-10",
                              "--to", "2025-10"])
    assert out.exit_code == 2 and "malformed run id" in out.output

    out = runner.invoke(cli, ["pipeline", "--run-id", "cli_run", "--from", "2025-10-01",
                              "--to", "2025-10-31", "--steps", "align,aggregate",
                              "--device", "cpu", "--iphone-ids", "1,3"])
    assert out.exit_code == 0, out.output
    assert "[2/2] 2025-10 aggregate" in out.output and "price_aligned" in out.output
    assert "seconds per step: align" in out.output and "device cpu" in out.output
    assert set(_frame(ch, "cross_shop_agg", "cli_run")["iphone_id"]) == {1, 3}

    out = runner.invoke(cli, ["pipeline", "--run-id", "cli_other", "--from", "2025-11",
                              "--to", "2025-11", "--steps", "features"])
    assert out.exit_code == 1 and "error: 2025-11 features failed" in out.output
    assert "cross_shop_agg" in out.output and "Traceback" not in out.output


def test_a_malformed_run_id_added_in_the_ui_is_refused_by_the_assets(price_resources, instance):
    from kline_assets.prices.tables import all_partitions

    instance.add_dynamic_partitions("run_id", ["Bad-Name"])  # the UI's "Add a partition"
    result = materialize([raw_price_records, price_aligned], selection=[price_aligned],
                         partition_key="2025-10-01|Bad-Name", resources=price_resources,
                         instance=instance, raise_on_error=False)
    assert not result.success
    assert "malformed run id 'Bad-Name': use 1–64 characters of [a-z0-9_]" in \
        failure_message(result)
    ch = price_resources["clickhouse"]
    with ch.client() as client:
        assert all_partitions(client, ch.db) == []
